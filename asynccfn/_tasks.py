"""Small task helpers shared by the runtime and the journal store."""

from __future__ import annotations

import asyncio
from typing import Any


def discard(task: asyncio.Future[Any]) -> None:
    """Drop a task whose result is no longer wanted: cancel it if it still runs, else take
    its exception (if any) so that it is not reported as never retrieved."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()
