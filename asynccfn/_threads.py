"""Worker threads for sync step bodies, counted: a thread cannot be cancelled, so the runtime
must know whether one is still running when its invocation ends (DESIGN.md invariant 6).

asynccfn keeps its own few workers rather than the loop's default executor: a body's round
trip through ``asyncio.to_thread`` chains a concurrent future to an asyncio one and back, and
its bookkeeping kept the loop thread busy after the hand-off and the worker busy after the
answer, so that each side woke to find the other still holding the GIL (about 0.1 ms more a
step on a two-vCPU VM: ``benchmarks/step_overhead.py``).

Here the loop thread puts the body on a queue and first waits for it briefly
(:data:`QUICK`, with the GIL released): a quick body's outcome is then taken at once, without
waking the loop through its self-pipe and a turn of the loop (about 20 µs of a 60 µs round
trip on that VM). A body still running then is awaited: the worker's last act is the one
wake-up of the loop. The loop is held up to QUICK per sync body that way, far below what the
loop watchdog reports. The workers are daemon threads: a body that never returns does not
hold the interpreter's exit (the runtime ends the process itself when it must).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

MAX_WORKERS = min(32, (os.cpu_count() or 1) + 4)  # as the loop's default executor has
QUICK = 0.0001  # seconds the loop thread waits for a body before it awaits it instead

_lock = threading.Lock()
_running = 0  # bodies handed to a worker (queued or running) and not yet ended
_workers = 0  # threads started
_idle = 0  # workers waiting for a body and not yet claimed


class _Job:
    """One body handed to a worker, and its outcome once ``ended`` (under ``_lock``)."""

    __slots__ = ("context", "ended", "fn", "ok", "outcome", "released", "waiter")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.context = contextvars.copy_context()
        self.ended = False
        self.ok = False
        self.outcome: Any = None
        self.released = threading.Lock()  # held until the body ends
        self.released.acquire()
        # the caller's loop and future, once it stopped waiting in its thread and awaits
        self.waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    def result(self) -> Any:
        if self.ok:
            return self.outcome
        raise self.outcome


_jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()


def busy_threads() -> int:
    """How many step bodies are running in worker threads, or queued for one, right now: a
    queued body starts once a worker is free, whatever happened to its caller meanwhile, so
    it counts as running from the moment it is handed over."""
    return _running


async def run_in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a worker thread with a copy of the caller's context, counting it while it
    runs. Cancelling the caller abandons the result; the body runs on to its end.

    At most :data:`MAX_WORKERS` bodies run at once; more wait for a worker.
    """
    global _running, _idle
    loop = asyncio.get_running_loop()  # raises before anything is queued, off a loop
    job = _Job(fn)
    with _lock:
        _running += 1
        claimed = _idle > 0
        if claimed:
            _idle -= 1
    _jobs.put(job)
    if not claimed:
        _start_worker()
    if not job.released.acquire(timeout=QUICK):
        done: asyncio.Future[None] = loop.create_future()
        with _lock:
            if not job.ended:
                job.waiter = (loop, done)
        if job.waiter is not None:
            await done
    return cast(T, job.result())


def _start_worker() -> None:
    global _workers
    with _lock:
        if _workers >= MAX_WORKERS:
            return  # the body waits on the queue for the next free worker
        _workers += 1
        number = _workers
    threading.Thread(target=_work, name=f"asynccfn-step-{number}", daemon=True).start()


def _work() -> None:
    global _running, _idle
    while True:
        job = _jobs.get()
        try:
            job.ok, job.outcome = True, job.context.run(job.fn)
        except StopIteration as exc:  # a coroutine cannot raise one (PEP 479)
            job.outcome = RuntimeError("the step body raised StopIteration")
            job.outcome.__cause__ = exc
        except BaseException as exc:  # every outcome goes back to the caller
            job.outcome = exc
        finally:
            with _lock:
                _running -= 1
                _idle += 1
                job.ended = True
                waiter = job.waiter
        job.released.release()
        if waiter is not None:
            try:
                waiter[0].call_soon_threadsafe(_settle, waiter[1])
            except RuntimeError:
                pass  # the loop is closed: nobody awaits the body any more
        del job, waiter  # hold nothing of the body while waiting


def _settle(done: asyncio.Future[None]) -> None:
    if not done.cancelled():  # a cancelled caller abandoned the result
        done.set_result(None)
