"""Keeping an operation's lease while an invocation runs (DESIGN.md invariant 4).

::

    claim/renewal sent ─────────── held_until = sent + length - skew ──── lease end
        │  renew a third of the way   │
        │  a failed renewal is retried with backoff while held_until is ahead;
        │  only when it has passed (or a newer fence shows) is the lease lost,
        │  and then the handler is cancelled: another invocation may hold it now.

``held_until`` is on the event loop's clock and counts from when the renewal was *sent*, so a
slow reply never makes the lease look longer than it is. No renewal may outlast the lease
either: each try is cut off at ``held_until`` (less a small margin) and counts as failed, so a
request that never answers (botocore retrying its read timeouts) cannot keep the handler
running past the lease beside a newer holder.
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
_MARGIN = 0.5  # seconds (at most a tenth of the held time) before held_until a renewal is cut off
_LATE_TRY = 1.0  # seconds (at most a third of the lease) a renewal may take once it is late


class Lease:
    """The lease of operation ``op_id`` held under ``fence``, ``length`` seconds at a time,
    trusted until ``skew`` seconds before it ends; ``started`` is the loop time of the claim."""

    __slots__ = (
        "_fence",
        "_late_try",
        "_length",
        "_margin",
        "_op_id",
        "_skew",
        "_store",
        "held_until",
        "renewals",
    )

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
        self._margin = min(_MARGIN, (length - skew) / 10)
        self._late_try = min(_LATE_TRY, length / 3)
        self.held_until = started + length - skew
        self.renewals = 0

    async def heartbeat(self, task: asyncio.Task[Any]) -> None:
        """Renew a third into the time each renewal holds the lease, until cancelled; cancel the
        handler's ``task`` when the lease is lost (at the latest as it runs out).

        Raises:
            FenceLost: a newer invocation holds the operation.
            LeaseLost: no renewal succeeded before the lease ran out.
        """
        loop = asyncio.get_running_loop()
        while True:
            # A third into the time the last renewal holds the lease for, counted from when it
            # was *sent* (a slow reply shortens the wait, never lengthens the lease).
            wake = self.held_until - (self._length - self._skew) * 2 / 3
            await asyncio.sleep(max(0.0, wake - loop.time()))
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
        ``late`` or the lease is no longer surely held, once: then only the fence can tell
        whether it is still ours).

        No try outlasts the lease: it is cut off at ``held_until`` less the margin (a late try
        after ``_LATE_TRY``), and a try cut off is a failed try. A failed try alone never ends
        the work, but the lease running out does: the handler may not work on unfenced beside a
        newer holder while a request hangs in botocore's retries.
        """
        loop = asyncio.get_running_loop()
        late = late or loop.time() >= self.held_until - self._margin
        delay = _FIRST_RETRY
        while True:
            ends = loop.time() + self._late_try if late else self.held_until - self._margin
            try:
                async with asyncio.timeout_at(ends):
                    await self.renew()
                return
            except FenceLost:
                raise
            except (JournalError, TimeoutError) as exc:
                why = exc if isinstance(exc, JournalError) else "no answer in time"
                if late or loop.time() + delay >= ends:
                    raise LeaseLost(
                        f"the lease of operation {self._op_id} ran out before a renewal "
                        f"succeeded: {why}"
                    ) from exc
                log.warning("lease renewal failed, retrying in %.1f s: %s", delay, why)
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
