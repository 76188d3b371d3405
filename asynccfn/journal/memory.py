"""A durable journal in memory: :class:`~asynccfn.journal.store.JournalStore`'s rules on a dict.

Every write takes the same condition as the DynamoDB store's, evaluated here in Python, and a
write that loses returns or raises exactly what the store's would (the winner's item, like
``ReturnValuesOnConditionCheckFailure=ALL_OLD``; ``FenceLost``). Items are copied in and out,
as a round trip through DynamoDB would, so a caller's record never aliases the journal's.

``tests/journal/test_contract.py`` runs one suite against both, so the two cannot drift. It is
durable for the life of the object: the executor's and the lease's tests run on it in
milliseconds, with DynamoDB Local left to prove the store behaves the same.
"""

from __future__ import annotations

import copy
import hashlib
import time
from typing import TYPE_CHECKING, Any

from .._errors import FenceLost, JournalError, PayloadTooLarge
from ._codec import ItemCodec
from ._events import (
    bounded,
    claimed_event,
    handed_over_event,
    new_attempt_event,
    not_delivered_event,
    posted_event,
    response_event,
    undeliverable_event,
)
from ._schema import (
    STEP_PREFIX,
    STEP_SCHEMA,
    OperationItem,
    OperationStatus,
    StepItem,
    op_id_of,
    op_pk,
)
from .claims import (
    LEASE_SKEW,
    NEW_ATTEMPT_CLEARS,
    Claim,
    ClaimOutcome,
    ClaimRequest,
    answer_owed,
    first_claim,
    new_attempt_deadline,
    refusal,
    unanswered_after,
)
from .size import ITEM_CAP, json_size

if TYPE_CHECKING:
    from .protocol import RuntimeJournal

_RUNNING = OperationStatus.RUNNING.value


class MemoryJournal:
    """One journal table's operations and steps, in memory."""

    __slots__ = ("_operations", "_step_codec", "_steps", "lease_skew", "requests", "retention")

    durable = True

    def __init__(self, *, retention: float = 30 * 86400, lease_skew: float = LEASE_SKEW) -> None:
        self.retention = retention
        self.lease_skew = lease_skew
        self.requests = 0  # requests the DynamoDB store would have sent
        self._operations: dict[str, OperationItem] = {}
        self._steps: dict[str, dict[str, StepItem]] = {}  # by op id, then sort key
        # Sizes are counted as the store counts them, by the step model's codec.
        self._step_codec = ItemCodec(STEP_SCHEMA, StepItem)

    # -- for tests -------------------------------------------------------------------------

    def operation(self, op_id: str) -> OperationItem | None:
        """A copy of the operation item, None when there is none."""
        return copy.deepcopy(self._operations.get(op_id))

    # -- the operation item ------------------------------------------------------------------

    async def claim(self, req: ClaimRequest) -> Claim:
        """As :meth:`JournalStore.claim`.

        Raises:
            nothing: a journal in memory does not fail.
        """
        self.requests += 1
        now = time.time()
        old = self._operations.get(req.op_id)
        if old is None:
            op = first_claim(req, now, expires_at=int(now + self.retention))
            self._operations[req.op_id] = op
            return Claim(outcome=ClaimOutcome.CLAIMED, operation=copy.deepcopy(op))
        released = _before(old.lease_until, now - self.lease_skew) or (
            req.token is not None and old.handover_token == req.token
        )
        if old.attempt == req.attempt and old.status == _RUNNING and released:
            old.fence += 1
            old.invocations += 1
            old.owner = req.owner
            old.lease_until = now + req.lease
            old.status = _RUNNING
            old.updated_at = now
            old.handover_token = None
            old.events = [*(old.events or []), claimed_event(now, req.invocation_note)]
            return Claim(outcome=ClaimOutcome.CLAIMED, operation=copy.deepcopy(old))
        seen = copy.deepcopy(old)
        why = refusal(req, seen, now=now, lease_skew=self.lease_skew)
        if why.outcome is not None:
            return Claim(outcome=why.outcome, operation=seen)
        return await self._claim_new_attempt(req, seen, supersede=why.supersede)

    async def _claim_new_attempt(
        self, req: ClaimRequest, seen: OperationItem, *, supersede: bool
    ) -> Claim:
        self.requests += 1
        now = time.time()
        op = self._operations[req.op_id]
        done_or_expired = op.status != _RUNNING or _before(op.lease_until, now - self.lease_skew)
        changed = op.fence != seen.fence or answer_owed(op, now)
        if changed or not (supersede or done_or_expired):
            return await self.claim(req)
        op.fence += 1
        op.invocations += 1
        op.attempt_no += 1
        op.past_attempts = [*(seen.past_attempts or []), seen.attempt]
        op.unanswered_attempts = unanswered_after(seen)
        op.events = bounded(seen, new_attempt_event(now))
        op.attempt = req.attempt
        op.request_digest = req.request_digest
        op.owner = req.owner
        op.lease_until = now + req.lease
        op.status = _RUNNING
        op.issued_at = req.issued_at
        op.deadline = new_attempt_deadline(req, seen)
        op.updated_at = now
        op.stalled = 0
        for name in NEW_ATTEMPT_CLEARS:
            setattr(op, name, None)
        return Claim(outcome=ClaimOutcome.CLAIMED, operation=copy.deepcopy(op))

    async def renew_lease(self, op_id: str, fence: int, lease_until: float) -> None:
        """As :meth:`JournalStore.renew_lease`.

        Raises:
            FenceLost: a newer invocation holds the operation.
        """
        self._fenced(op_id, fence).lease_until = lease_until

    async def release_lease(self, op_id: str, fence: int) -> None:
        """As :meth:`JournalStore.release_lease`.

        Raises:
            FenceLost: as :meth:`renew_lease`.
        """
        self._fenced(op_id, fence).lease_until = 0

    async def record_physical_id(self, op_id: str, fence: int, physical_id: str) -> None:
        """As :meth:`JournalStore.record_physical_id`.

        Raises:
            FenceLost: as :meth:`renew_lease`.
        """
        self._fenced(op_id, fence).physical_id = physical_id

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
        """As :meth:`JournalStore.record_handover`.

        Raises:
            FenceLost: as :meth:`renew_lease`.
        """
        now = time.time()
        op = self._fenced(op_id_of(current), current.fence)
        op.handover_token = token
        op.stalled = stalled
        op.updated_at = now
        op.handover_state = state
        op.handover_at = ",".join(positions) or None
        op.physical_id = physical_id or None
        op.wake_at = wake_at
        op.events = bounded(current, handed_over_event(now, note, current.invocations))

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
        """As :meth:`JournalStore.record_response`.

        Raises:
            FenceLost: as :meth:`renew_lease`.
        """
        now = time.time()
        op = self._fenced(op_id_of(current), current.fence)
        op.response = body
        op.response_digest = hashlib.sha256(body.encode()).hexdigest()
        op.response_status = response_status
        op.status = status.value
        op.physical_id = physical_id
        op.updated_at = now
        op.owner = op.lease_until = None
        op.reason = reason or None
        op.handover_token = None
        op.events = bounded(current, response_event(now, response_status, current.invocations))

    async def mark_posted(
        self,
        op_id: str,
        attempt: str,
        *,
        undeliverable: str | None = None,
        kept: str | None = None,
    ) -> None:
        """As :meth:`JournalStore.mark_posted`.

        Raises:
            nothing: a journal in memory does not fail.
        """
        self.requests += 1
        op = self._operations.get(op_id)
        if op is None or op.attempt != attempt or op.response is None:
            return
        now = time.time()
        op.posted_at = now
        op.updated_at = now
        if kept is not None:
            op.response = kept
        if undeliverable:
            op.status = OperationStatus.UNDELIVERABLE.value
            op.reason = undeliverable
        news = undeliverable_event(now, undeliverable) if undeliverable else posted_event(now)
        op.events = [*(op.events or []), news]

    async def note_delivery(self, op_id: str, attempt: str, what: str) -> None:
        """As :meth:`JournalStore.note_delivery`.

        Raises:
            nothing: a journal in memory does not fail.
        """
        self.requests += 1
        op = self._operations.get(op_id)
        if op is None or op.attempt != attempt or op.response is None:
            return
        now = time.time()
        op.updated_at = now
        op.events = [*(op.events or []), not_delivered_event(now, what)]

    # -- steps -----------------------------------------------------------------------------

    async def load_operation(self, op_id: str) -> OperationItem | None:
        """As :meth:`JournalStore.load_operation`.

        Raises:
            nothing: a journal in memory does not fail.
        """
        self.requests += 1
        op = self._operations.get(op_id)
        return copy.deepcopy(op) if op is not None else None

    async def load_steps(self, op_id: str) -> dict[str, StepItem]:
        """As :meth:`JournalStore.load_steps`: by position, in sort key order.

        Raises:
            nothing: a journal in memory does not fail.
        """
        self.requests += 1
        slots = self._steps.get(op_id, {})
        # DynamoDB orders a string sort key by its UTF-8 bytes.
        ordered = sorted(slots, key=str.encode)
        return {sk[len(STEP_PREFIX) :]: copy.deepcopy(slots[sk]) for sk in ordered}

    def new_step(self, op_id: str, position: str, **attrs: Any) -> StepItem:
        """A step item for ``position`` (``<scope>#<seq>``), with the table's TTL."""
        return StepItem(
            pk=op_pk(op_id),
            sk=STEP_PREFIX + position,
            expires_at=int(time.time() + self.retention),
            **attrs,
        )

    async def write_step(self, step: StepItem, *, previous: StepItem | None) -> StepItem:
        """As :meth:`JournalStore.write_step`.

        Raises:
            PayloadTooLarge: the item would exceed what a journal item may hold.
            JournalError: the slot ``previous`` names is gone.
        """
        _, size = self._step_codec.encode(step)
        if size > ITEM_CAP:
            raise PayloadTooLarge(
                f"step {step.name!r} would journal {size} bytes (result "
                f"{json_size(step.result)} bytes); a journal item holds at most {ITEM_CAP} bytes"
            )
        self.requests += 1
        slots = self._steps.setdefault(op_id_of(step), {})
        old = slots.get(step.sk)
        if previous is None:
            if old is not None:
                return copy.deepcopy(old)
        elif old is None:
            raise JournalError(f"step slot {step.sk} vanished during a write")
        elif old.attempt != previous.attempt or old.status != previous.status:
            return copy.deepcopy(old)
        slots[step.sk] = copy.deepcopy(step)
        return step

    # -- plumbing ---------------------------------------------------------------------------

    def _fenced(self, op_id: str, fence: int) -> OperationItem:
        """The operation item, for a write under ``fence``.

        Raises:
            FenceLost: the item holds another fence, or there is none.
        """
        self.requests += 1
        op = self._operations.get(op_id)
        if op is None or op.fence != fence:
            newer = op.fence if op is not None else "none"
            raise FenceLost(
                f"operation {op_id} is held by fence {newer}; this invocation had {fence}"
            )
        return op


def _before(value: float | None, limit: float) -> bool:
    """``#attr < :limit`` as DynamoDB evaluates it: false when the attribute is absent."""
    return value is not None and value < limit


def _conforms(journal: MemoryJournal) -> RuntimeJournal:
    """mypy proves here that the memory journal is a runtime journal."""
    return journal
