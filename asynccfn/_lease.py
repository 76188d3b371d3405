"""Keeping an operation's lease while an invocation runs (DESIGN.md invariant 4).

::

    claim/renewal sent ─────────── held_until = sent + length - skew ──── lease end
        │  renew every length/3       │
        │  a failed renewal is retried with backoff while held_until is ahead;
        │  only when it has passed (or a newer fence shows) is the lease lost,
        │  and then the handler is cancelled: another invocation may hold it now.

``held_until`` is on the event loop's clock and counts from when the renewal was *sent*, so a
slow reply never makes the lease look longer than it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ._errors import FenceLost, JournalError, LeaseLost

if TYPE_CHECKING:
    from .journal.protocol import LeaseJournal

log = logging.getLogger("asynccfn.runtime")

_FIRST_RETRY = 0.2  # seconds before retrying a failed renewal; doubles up to a sixth of the lease


class Lease:
    """The lease of operation ``op_id`` held under ``fence``, ``length`` seconds at a time,
    trusted until ``skew`` seconds before it ends; ``started`` is the loop time of the claim."""

    __slots__ = ("_fence", "_length", "_op_id", "_skew", "_store", "held_until", "renewals")

    def __init__(
        self,
        store: LeaseJournal,
        *,
        op_id: str,
        fence: int,
        length: float,
        skew: float,
        started: float,
    ) -> None:
        self._store = store
        self._op_id = op_id
        self._fence = fence
        self._length = length
        self._skew = skew
        self.held_until = started + length - skew
        self.renewals = 0

    async def heartbeat(self, task: asyncio.Task[Any]) -> None:
        """Renew every third of the lease until cancelled; cancel the handler's ``task`` when
        the lease is lost.

        Raises:
            FenceLost: a newer invocation holds the operation.
            LeaseLost: no renewal succeeded before the lease ran out.
        """
        while True:
            await asyncio.sleep(self._length / 3)
            try:
                await self._renew_while_held()
            except JournalError:
                task.cancel()
                raise

    async def ensure_held(self) -> None:
        """Before live work: if the heartbeat could not renew in time (the event loop was
        blocked, the container frozen), renew now, so that work a newer invocation has taken
        over is not done again here.

        Raises:
            FenceLost, LeaseLost: as :meth:`heartbeat`.
        """
        if asyncio.get_running_loop().time() >= self.held_until:
            await self._renew_while_held(late=True)

    async def _renew_while_held(self, *, late: bool = False) -> None:
        """Renew, retrying failures with backoff while the lease is surely still held (or, when
        ``late``, once: then only the fence can tell whether it is still ours)."""
        loop = asyncio.get_running_loop()
        delay = _FIRST_RETRY
        while True:
            try:
                await self.renew()
                return
            except FenceLost:
                raise
            except JournalError as exc:
                if late or loop.time() + delay >= self.held_until:
                    raise LeaseLost(
                        f"the lease of operation {self._op_id} ran out before a renewal "
                        f"succeeded: {exc}"
                    ) from exc
                log.warning("lease renewal failed, retrying in %.1f s: %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._length / 6)

    async def renew(self) -> None:
        """Extend the lease once; on success it is surely held for ``length - skew`` from
        when the request was sent.

        Raises:
            FenceLost: a newer invocation holds the operation.
            JournalError: DynamoDB failed.
        """
        sent = asyncio.get_running_loop().time()
        await self._store.renew_lease(self._op_id, self._fence, time.time() + self._length)
        self.held_until = sent + self._length - self._skew
        self.renewals += 1
