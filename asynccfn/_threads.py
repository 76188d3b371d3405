"""Worker threads for sync step bodies, counted: a thread cannot be cancelled, so the runtime
must know whether one is still running when its invocation ends (DESIGN.md invariant 6).

asynccfn keeps its own few workers rather than the loop's default executor: a body's round
trip through ``asyncio.to_thread`` chains a concurrent future to an asyncio one and back, and
its bookkeeping kept the loop thread busy after the hand-off and the worker busy after the
answer, so that each side woke to find the other still holding the GIL (about 0.1 ms more a
step on a two-vCPU VM: ``benchmarks/step_overhead.py``). Here the loop thread puts the body on
a queue and suspends; the worker's last act before waiting again is the one wake-up of the
loop. The workers are daemon threads: a body that never returns does not hold the
interpreter's exit (the runtime ends the process itself when it must).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_WORKERS = min(32, (os.cpu_count() or 1) + 4)  # as the loop's default executor has

_Job = tuple[Callable[[], Any], contextvars.Context, asyncio.AbstractEventLoop, asyncio.Future[Any]]

_lock = threading.Lock()
_running = 0  # bodies handed to a worker (queued or running) and not yet ended
_workers = 0  # threads started
_idle = 0  # workers waiting for a body and not yet claimed
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
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    with _lock:
        _running += 1
        claimed = _idle > 0
        if claimed:
            _idle -= 1
    _jobs.put((fn, contextvars.copy_context(), loop, done))
    if not claimed:
        _start_worker()
    return await done


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
        fn, context, loop, done = _jobs.get()
        try:
            ok, outcome = True, context.run(fn)
        except StopIteration as exc:  # an asyncio future cannot hold one (PEP 479)
            ok, outcome = False, RuntimeError("the step body raised StopIteration")
            outcome.__cause__ = exc
        except BaseException as exc:  # every outcome goes back to the awaiting task
            ok, outcome = False, exc
        finally:
            with _lock:
                _running -= 1
                _idle += 1
        try:
            loop.call_soon_threadsafe(_settle, done, ok, outcome)
        except RuntimeError:
            pass  # the loop is closed: nobody awaits the body any more
        del fn, context, loop, done, outcome  # hold nothing of the body while waiting


def _settle(done: asyncio.Future[Any], ok: bool, outcome: Any) -> None:
    if done.cancelled():
        return  # the caller was cancelled: the result is abandoned
    if ok:
        done.set_result(outcome)
    else:
        done.set_exception(outcome)
