"""Worker threads for sync step bodies, counted: a thread cannot be cancelled, so the runtime
must know whether one is still running when its invocation ends (DESIGN.md invariant 6)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_running = 0


def busy_threads() -> int:
    """How many step bodies are running in worker threads right now."""
    return _running


async def run_in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in the loop's default executor, counting it while it runs."""

    def counted() -> T:
        global _running
        with _lock:
            _running += 1
        try:
            return fn()
        finally:
            with _lock:
                _running -= 1

    result: Any = await asyncio.to_thread(counted)
    return result  # type: ignore[no-any-return]
