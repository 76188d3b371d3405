"""The worker threads sync step bodies run in (asynccfn._threads): results, errors, context,
parallelism, counting, and a caller that goes away (cancelled, or its loop closed)."""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import time
from typing import Any

import pytest

from asynccfn import _threads
from asynccfn._threads import busy_threads, run_in_thread

_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_a_body_runs_in_another_thread_with_the_callers_context_and_returns_its_result() -> None:
    async def scenario() -> tuple[str, str, int]:
        _who.set("the caller")

        def body() -> tuple[str, str, int]:
            return _who.get(), threading.current_thread().name, threading.get_ident()

        return await run_in_thread(body)

    who, name, ident = asyncio.run(scenario())
    assert who == "the caller"
    assert name.startswith("asynccfn-step-") and ident != threading.get_ident()


def test_a_bodys_exception_reaches_the_caller_as_it_was_raised() -> None:
    class Refused(Exception):
        pass

    def refuse() -> None:
        raise Refused("no")

    def stop() -> None:
        raise StopIteration

    def leave() -> None:
        raise KeyboardInterrupt

    async def scenario() -> None:
        with pytest.raises(Refused, match="no"):
            await run_in_thread(refuse)
        # an asyncio future cannot carry StopIteration: it arrives as a RuntimeError (PEP 479)
        with pytest.raises(RuntimeError, match="StopIteration") as caught:
            await run_in_thread(stop)
        assert isinstance(caught.value.__cause__, StopIteration)
        with pytest.raises(KeyboardInterrupt):
            await run_in_thread(leave)
        assert await run_in_thread(lambda: "still serving") == "still serving"

    asyncio.run(scenario())


def test_bodies_run_in_parallel_up_to_the_limit() -> None:
    n = min(4, _threads.MAX_WORKERS)
    barrier = threading.Barrier(n, timeout=10)

    async def scenario() -> list[int]:
        # Each body waits until all n are running at once: serialised, the barrier breaks.
        return await asyncio.gather(*(run_in_thread(barrier.wait) for _ in range(n)))

    assert sorted(asyncio.run(scenario())) == list(range(n))


def test_a_cancelled_caller_abandons_the_result_and_the_body_is_counted_to_its_end() -> None:
    release = threading.Event()
    finished = threading.Event()

    def body() -> str:
        release.wait(10)
        finished.set()
        return "late"

    async def scenario() -> None:
        task = asyncio.ensure_future(run_in_thread(body))
        while busy_threads() == 0:  # noqa: ASYNC110 - the worker has no event to wait on
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert busy_threads() == 1  # cancelling cannot stop a thread: it still runs
        release.set()
        assert finished.wait(10)
        for _ in range(1000):
            if busy_threads() == 0:
                break
            await asyncio.sleep(0.001)
        assert busy_threads() == 0
        await asyncio.sleep(0.01)  # the abandoned result is dropped without an error

    asyncio.run(scenario())


def test_a_body_queued_for_a_worker_counts_as_running_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Invariant 6: a body handed over while every worker is busy starts later, whatever
    becomes of its caller; the runtime reads busy_threads() to know it must end the process,
    so the body counts from the moment it is queued."""
    limit = max(_threads._workers, 2)
    monkeypatch.setattr(_threads, "MAX_WORKERS", limit)
    release = threading.Event()
    started: list[str] = []

    def blocker() -> None:
        release.wait(10)

    def queued() -> None:
        started.append("queued")

    async def scenario() -> None:
        held = [asyncio.ensure_future(run_in_thread(blocker)) for _ in range(limit)]
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(run_in_thread(queued))
        await asyncio.sleep(0.05)
        assert started == [] and busy_threads() == limit + 1
        waiting.cancel()  # its caller goes away: the body still starts once a worker is free
        release.set()
        await asyncio.gather(*held)
        for _ in range(1000):
            if busy_threads() == 0:
                break
            await asyncio.sleep(0.001)
        assert started == ["queued"] and busy_threads() == 0

    asyncio.run(scenario())


def test_a_body_that_outlives_its_loop_leaves_the_worker_serving_the_next_loop() -> None:
    release = threading.Event()
    started = threading.Event()

    def body() -> None:
        started.set()
        release.wait(10)

    loop = asyncio.new_event_loop()
    task = loop.create_task(run_in_thread(body))
    loop.run_until_complete(asyncio.sleep(0))
    assert started.wait(10)
    task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    release.set()  # the worker now answers a closed loop
    deadline = time.monotonic() + 10
    while busy_threads() and time.monotonic() < deadline:
        time.sleep(0.001)
    # a worker that died answering the closed loop would leave this body waiting forever
    assert asyncio.run(asyncio.wait_for(run_in_thread(lambda: "served"), 10)) == "served"
    assert busy_threads() == 0


def test_a_quick_body_is_answered_without_a_turn_of_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop thread waits up to QUICK for the body, in its own thread: a body done by then
    is answered at once, without waking the loop through its self-pipe."""
    monkeypatch.setattr(_threads, "QUICK", 10.0)
    turns: list[str] = []

    async def scenario() -> str:
        asyncio.get_running_loop().call_soon(turns.append, "turned")
        answer = await run_in_thread(lambda: "quick")
        assert turns == []  # the caller never suspended
        return answer

    assert asyncio.run(scenario()) == "quick"


def test_a_body_that_outlasts_the_quick_wait_is_awaited_whenever_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no quick wait, every body ends either before its caller starts awaiting it or
    after: each outcome reaches its caller once, in either order."""
    monkeypatch.setattr(_threads, "QUICK", 0.0)

    class Refused(Exception):
        pass

    def refuse() -> None:
        raise Refused("no")

    release = threading.Event()

    def slow() -> str:
        release.wait(10)
        return "slow"

    async def scenario() -> None:
        for i in range(300):
            assert await run_in_thread(lambda i=i: i) == i
        with pytest.raises(Refused):
            await run_in_thread(refuse)
        waiting = asyncio.ensure_future(run_in_thread(slow))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # awaited, the loop free meanwhile
        release.set()
        assert await asyncio.wait_for(waiting, 10) == "slow"

    asyncio.run(scenario())
    assert busy_threads() == 0


class _Gate:
    """``_threads._lock`` as it is, except at the one moment under test: when the caller,
    its quick wait over, is about to record its waiter, it first lets the body end and waits
    until the worker has marked the job ended and released it."""

    def __init__(self, real: Any, go: threading.Event) -> None:
        self.real = real
        self.go = go
        self.jobs: list[Any] = []

    def __enter__(self) -> None:
        caller = sys._getframe(1)
        if caller.f_code is _threads.run_in_thread.__code__ and "done" in caller.f_locals:
            job = caller.f_locals["job"]
            self.jobs.append(job)
            self.go.set()
            assert job.released.acquire(timeout=10)  # the worker's last act on the job
        self.real.acquire()

    def __exit__(self, *exc: object) -> None:
        self.real.release()


def test_a_body_ending_after_the_quick_wait_but_before_the_waiter_is_answered_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one interleaving the ``ended``/``waiter`` handshake exists for: the worker marks
    the job ended (seeing no waiter, so it wakes nobody) after the caller's quick wait timed
    out and before it records its waiter. The caller must take the outcome then, not await
    a future that nobody will settle."""
    go = threading.Event()
    gate = _Gate(_threads._lock, go)
    monkeypatch.setattr(_threads, "QUICK", 0.0)
    monkeypatch.setattr(_threads, "_lock", gate)

    def body() -> str:
        assert go.wait(10)
        return "ended"

    async def scenario() -> str:
        return await asyncio.wait_for(run_in_thread(body), 10)

    assert asyncio.run(scenario()) == "ended"
    assert len(gate.jobs) == 1 and gate.jobs[0].waiter is None and gate.jobs[0].ended
    assert busy_threads() == 0


def test_a_call_off_a_loop_raises_before_the_body_is_handed_over() -> None:
    release = threading.Event()
    started = threading.Event()

    def body() -> None:
        started.set()
        release.wait(10)

    coroutine = run_in_thread(body)
    try:
        with pytest.raises(RuntimeError, match="no running event loop"):
            coroutine.send(None)
        assert busy_threads() == 0  # a body handed over would count until it ended
        assert not started.is_set()
    finally:
        release.set()
