"""Keeping an operation's lease while an invocation runs (DESIGN.md invariant 4)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ._errors import FenceLost
from .journal.models import op_id_of
from .journal.store import LEASE_SKEW

if TYPE_CHECKING:
    from ._steps import Execution
    from .journal.models import OperationEntry
    from .journal.store import JournalStore


class Lease:
    """The lease of ``op`` held by this invocation (fence ``op.fence``), ``length`` seconds."""

    __slots__ = ("_execution", "_length", "_op", "_store")

    def __init__(
        self, store: JournalStore, op: OperationEntry, length: float, execution: Execution
    ) -> None:
        self._store = store
        self._op = op
        self._length = length
        self._execution = execution

    async def heartbeat(self, task: asyncio.Task[Any]) -> None:
        """Renew every third of the lease; cancel the handler's ``task`` if it is lost.

        Raises:
            FenceLost: a newer invocation holds the operation.
        """
        while True:
            await asyncio.sleep(self._length / 3)
            try:
                await self.renew()
            except FenceLost:
                task.cancel()
                raise

    async def renew(self) -> None:
        """Extend the lease, and tell the executor until when it is surely held.

        Raises:
            FenceLost: a newer invocation holds the operation.
            JournalError: DynamoDB failed.
        """
        sent = asyncio.get_running_loop().time()
        until = time.time() + self._length
        await self._store.renew_lease(op_id_of(self._op), self._op.fence, until)
        self._execution.lease_held_until = sent + self._length - LEASE_SKEW
