"""A loop-lag watchdog: says, once per invocation, when synchronous work blocks the event loop.

A handler that calls ``time.sleep`` or a blocking client on the loop stops everything asynccfn
does meanwhile: the lease heartbeat, the deadline, the hand-over. The loop cannot notice that
itself while it is blocked, so a daemon thread watches a heartbeat the loop sets four times a
second; when it is older than the threshold, the thread reads the loop thread's stack and logs
which of the user's functions was running, and that sync work belongs in ``ctx.step``. Cheap:
one timer callback every 0.25 s on the loop and one mostly sleeping thread per invocation.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from typing import Any

from ._traceback import is_user_file, shown_path

__all__ = ["LoopWatchdog"]

log = logging.getLogger("asynccfn.runtime")

_TICK = 0.25


class LoopWatchdog:
    """Watches the running loop from ``start`` to ``stop`` (both called on the loop)."""

    def __init__(self, *, threshold: float = 1.0, extra: dict[str, Any] | None = None) -> None:
        self.threshold = threshold
        self.warned: str | None = None
        """The warning logged, if the loop was found blocked."""
        self.blocked: tuple[float, float, str] | None = None
        """When (epoch) the loop was found blocked, for how long so far, and by what."""
        self._extra = extra or {}
        self._beat = time.monotonic()
        self._done = threading.Event()
        self._loop_thread = threading.get_ident()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._tick()
        threading.Thread(target=self._watch, name="asynccfn-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._done.set()
        if self._timer is not None:
            self._timer.cancel()

    def _tick(self) -> None:
        self._beat = time.monotonic()
        self._timer = asyncio.get_running_loop().call_later(_TICK, self._tick)

    def _watch(self) -> None:
        while not self._done.wait(_TICK):
            blocked = time.monotonic() - self._beat
            if blocked > self.threshold:
                self._warn(blocked)
                return  # once per invocation

    def _warn(self, blocked: float) -> None:
        frame = sys._current_frames().get(self._loop_thread)
        where = "asynccfn's own code"
        if frame is not None:
            for summary in reversed(traceback.extract_stack(frame)):
                if is_user_file(summary.filename):
                    where = f"{summary.name} at {shown_path(summary.filename)}:{summary.lineno}"
                    break
        self.blocked = (time.time(), blocked, where)
        self.warned = (
            f"the event loop has been blocked for {blocked:.1f} s by {where}: nothing else runs "
            "meanwhile (the lease, the deadline, the hand-over); synchronous work belongs in "
            "ctx.step(name, fn, ...), which runs a plain function in a worker thread"
        )
        log.warning("%s", self.warned, extra={**self._extra, "loop_blocked": round(blocked, 1)})
