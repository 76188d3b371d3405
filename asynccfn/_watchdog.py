"""A loop-lag watchdog: says, once per invocation, when synchronous work blocks the event loop.

A handler that calls ``time.sleep`` or a blocking client on the loop stops everything asynccfn
does meanwhile: the lease heartbeat, the deadline, the hand-over. The loop cannot notice that
itself while it is blocked, so a daemon thread watches a heartbeat the loop sets four times a
second; when it is older than the threshold, the thread reads the loop thread's stack and logs
which of the user's functions was running, and that sync work belongs in ``ctx.step``.

One heartbeat and one thread serve every invocation running on a loop (a process serving many
operations at once, as the testing helper and a local run do, pays for one, not one each), and
they beat only while some invocation is running: a warm container's idle loop is not blocked.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
import weakref
from typing import Any

from ._traceback import is_user_file, shown_path

__all__ = ["LoopWatchdog"]

log = logging.getLogger("asynccfn.runtime")

_TICK = 0.25
_IDLE = 5.0  # seconds without an invocation after which the watching thread ends


class LoopWatchdog:
    """Watches the running loop for one invocation, from ``start`` to ``stop`` (both called
    on the loop)."""

    def __init__(self, *, threshold: float = 1.0, extra: dict[str, Any] | None = None) -> None:
        self.threshold = threshold
        self.warned: str | None = None
        """The warning logged, if the loop was found blocked."""
        self.blocked: tuple[float, float, str] | None = None
        """When (epoch) the loop was found blocked, for how long so far, and by what."""
        self._extra = extra or {}
        self._watcher: _LoopWatcher | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        watcher = _watchers.get(loop)
        if watcher is None:
            watcher = _watchers[loop] = _LoopWatcher(loop)
        self._watcher = watcher
        watcher.add(self)

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.remove(self)
            self._watcher = None

    def _warn(self, blocked: float, where: str) -> None:
        self.blocked = (time.time(), blocked, where)
        self.warned = (
            f"the event loop has been blocked for {blocked:.1f} s by {where}: nothing else runs "
            "meanwhile (the lease, the deadline, the hand-over); synchronous work belongs in "
            "ctx.step(name, fn, ...), which runs a plain function in a worker thread"
        )
        log.warning("%s", self.warned, extra={**self._extra, "loop_blocked": round(blocked, 1)})


class _LoopWatcher:
    """The heartbeat of one loop and the thread that watches it, shared by its invocations."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # the loop is this watcher's key: no strong reference
        self._loop_thread = threading.get_ident()
        self._lock = threading.Lock()
        self._watched: set[LoopWatchdog] = set()
        self._active = threading.Event()
        self._beat = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None

    def add(self, watchdog: LoopWatchdog) -> None:
        with self._lock:
            self._watched.add(watchdog)
            if self._timer is None:
                self._loop_thread = threading.get_ident()
                self._tick()
                self._active.set()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="asynccfn-watchdog", daemon=True
                )
                self._thread.start()

    def remove(self, watchdog: LoopWatchdog) -> None:
        with self._lock:
            self._watched.discard(watchdog)
            if not self._watched:
                self._active.clear()
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None

    def _tick(self) -> None:
        self._beat = time.monotonic()
        loop = self._loop()
        if loop is not None:
            self._timer = loop.call_later(_TICK, self._tick)

    def _watch(self) -> None:
        while True:
            if not self._active.wait(_IDLE):
                with self._lock:
                    if not self._watched:  # idle a while: end, a later add starts another
                        self._thread = None
                        return
                continue
            time.sleep(_TICK)
            with self._lock:
                blocked = time.monotonic() - self._beat
                due = [w for w in self._watched if w.warned is None and blocked > w.threshold]
            if due:
                where = self._where()
                for watchdog in due:  # once per invocation
                    watchdog._warn(blocked, where)

    def _where(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is not None:
            for summary in reversed(traceback.extract_stack(frame)):
                if is_user_file(summary.filename):
                    return f"{summary.name} at {shown_path(summary.filename)}:{summary.lineno}"
        return "asynccfn's own code"


_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWatcher] = (
    weakref.WeakKeyDictionary()
)
