"""The journal of ``lambda_entry(journal=None)``: in memory, for one invocation only.

Steps run and return as usual, but nothing survives the invocation: there is no hand-over,
no replay after a crash and no duplicate detection.
"""

from __future__ import annotations

import time
from typing import Any

from .._errors import JournalError
from ._schema import OperationItem, OperationStatus, StepItem, op_pk
from .claims import Claim, ClaimOutcome, ClaimRequest, first_claim


class EphemeralJournal:
    """A :class:`~asynccfn.journal.protocol.RuntimeJournal` that keeps nothing."""

    durable = False
    requests = 0

    async def claim(self, req: ClaimRequest) -> Claim:
        op = first_claim(req, time.time())
        return Claim(outcome=ClaimOutcome.CLAIMED, operation=op)

    async def load_steps(self, op_id: str) -> dict[str, StepItem]:
        return {}

    async def load_operation(self, op_id: str) -> OperationItem | None:
        return None

    def new_step(self, op_id: str, position: str, **attrs: Any) -> StepItem:
        return StepItem(pk=op_pk(op_id), sk="step#" + position, **attrs)

    async def write_step(self, step: StepItem, *, previous: StepItem | None) -> StepItem:
        return step

    async def renew_lease(self, op_id: str, fence: int, lease_until: float) -> None:
        return None

    async def release_lease(self, op_id: str, fence: int) -> None:
        return None

    async def record_physical_id(self, op_id: str, fence: int, physical_id: str) -> None:
        return None

    async def record_handover(
        self,
        current: OperationItem,
        *,
        token: str,
        state: str | None,
        positions: list[str],
        physical_id: str | None,
        wake_at: float | None,
        stalled: int,
        note: str,
    ) -> None:
        """Refused: no successor could replay what this journal does not keep (the runtime
        asks :attr:`durable` before it hands over).

        Raises:
            JournalError: always.
        """
        raise JournalError("a function without a journal cannot hand over")

    async def record_response(
        self,
        current: OperationItem,
        *,
        body: str,
        response_status: str,
        status: OperationStatus,
        physical_id: str,
        reason: str | None,
    ) -> None:
        return None

    async def mark_posted(
        self,
        op_id: str,
        attempt: str,
        *,
        undeliverable: str | None = None,
        kept: str | None = None,
    ) -> None:
        return None

    async def note_delivery(self, op_id: str, attempt: str, what: str) -> None:
        return None
