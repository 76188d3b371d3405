"""The journal store: the only runtime code that speaks to DynamoDB (through aiobotocore).

Items are built and read as the pynamodb models of :mod:`asynccfn.journal.models` would (step
items, written once per action and read once per replayed action, through the flat codec of
:mod:`asynccfn.journal._codec` and the models' static attribute tables); pynamodb is never
imported here. botocore errors become asynccfn's in :mod:`asynccfn.journal._dynamo_errors`,
the one place that knows them.

Every write to the operation item is conditional on the writer's fence; a step slot is created
once and then advanced only from the status and attempt the writer last saw.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._errors import FenceLost, JournalError, PayloadTooLarge
from .._tasks import discard
from . import _wire
from ._codec import ItemCodec
from ._dynamo_errors import ConditionFailed, translated
from ._events import (
    bounded,
    claimed_event,
    handed_over_event,
    lean_events,
    new_attempt_event,
    not_delivered_event,
    posted_event,
    replayed_event,
    response_event,
    undeliverable_event,
)
from ._schema import (
    EVENT_SCHEMA,
    OP_SK,
    OPERATION_SCHEMA,
    STEP_PREFIX,
    STEP_SCHEMA,
    EventItem,
    OperationItem,
    OperationStatus,
    StepItem,
    op_id_of,
    op_pk,
)
from ._update import Update
from .claims import (
    LEASE_SKEW,
    NEW_ATTEMPT_CLEARS,
    OWED_GRACE,
    Claim,
    ClaimOutcome,
    ClaimRequest,
    lambda_request_of,
    new_attempt_deadline,
    owner_id,
    refusal,
    unanswered_after,
)
from .size import ITEM_CAP, json_size

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

ClientFactory = Callable[[], Awaitable["DynamoDBClient"]]

__all__ = [
    "LEASE_SKEW",
    "Claim",
    "ClaimOutcome",
    "ClaimRequest",
    "JournalStore",
    "lambda_request_of",
    "owner_id",
    "replayed_event",
]


class JournalStore:
    """Reads and writes one journal table.

    ``client`` returns the shared aiobotocore DynamoDB client (created once per container).
    """

    __slots__ = (
        "_client",
        "_operations",
        "_prepared",
        "_steps",
        "lease_skew",
        "requests",
        "retention",
        "table",
    )
    durable = True

    def __init__(
        self,
        table: str,
        client: ClientFactory,
        *,
        retention: float,
        lease_skew: float = LEASE_SKEW,
    ) -> None:
        self.table = table
        self.lease_skew = lease_skew
        self._client = client
        self._prepared: Any = None  # the client _wire.prepare was last given
        self._steps = ItemCodec(STEP_SCHEMA, StepItem)
        self._operations = ItemCodec(OPERATION_SCHEMA, OperationItem, {EVENT_SCHEMA: EventItem})
        self.retention = retention
        self.requests = 0  # DynamoDB requests sent (for round-trip accounting)

    # -- the operation item ------------------------------------------------------------------

    async def claim(self, req: ClaimRequest) -> Claim:
        """Take the operation for this invocation (fence + 1, short lease), or say why not.

        Raises:
            JournalError: DynamoDB failed, or the item changed under every one of the claim's
                tries (a table that does not return the item of a failed condition).
        """
        for _ in range(_CLAIM_TRIES):
            claim = await self._claim_once(req)
            if claim is not None:
                return claim
        raise JournalError(
            f"the operation item changed under each of {_CLAIM_TRIES} claims, or the table "
            "does not return the item of a failed condition (ReturnValuesOnConditionCheckFailure)"
        )

    async def _claim_once(self, req: ClaimRequest) -> Claim | None:
        """One try of :meth:`claim`; None: the item changed meanwhile, look again."""
        now = time.time()
        update = (
            Update()
            .add(fence=1, invocations=1)
            .set(
                owner=req.owner,
                lease_until=now + req.lease,
                status=OperationStatus.RUNNING.value,
                updated_at=now,
            )
            .remove("handover_token")
            .append("events", self._events([claimed_event(now, req.invocation_note)]))
            .set_new(  # the first claim creates the operation
                stack_id=req.stack_id,
                logical_id=req.logical_id,
                request_id=req.request_id,
                resource_type=req.resource_type,
                request_type=req.request_type,
                attempt=req.attempt,
                request_digest=req.request_digest,
                attempt_no=1,
                issued_at=req.issued_at,
                created_at=now,
                deadline=req.deadline,
                stalled=0,
                expires_at=int(now + self.retention),
            )
        )
        #   never claimed ──────────────────────────────┐
        #   this attempt, RUNNING, and either           ├─> claim
        #     the holder's lease ran out (skew allowed),│
        #     or the holder handed over to this token ──┘
        # Nothing else: not even the holder's own Lambda request id, which a concurrent
        # duplicate delivery (or a forged on-failure record) can carry too.
        released = "#lease_until < :expired"
        values: dict[str, Any] = {":running": OperationStatus.RUNNING.value}
        values[":expired"] = now - self.lease_skew
        if req.token is not None:
            released += " OR #handover_token = :token"
            values[":token"] = req.token
        condition = (
            "attribute_not_exists(#pk) OR "
            f"(#attempt = :attempt AND #status = :running AND ({released}))"
        )
        try:
            item = await self._update(req.op_id, update.request(condition=condition, values=values))
        except _Refused as refused:
            old = refused.item
        else:
            return Claim(outcome=ClaimOutcome.CLAIMED, operation=item)
        if old is None:  # deleted between the two: a new operation after all
            return None
        why = refusal(req, old, now=now, lease_skew=self.lease_skew)
        if why.outcome is not None:
            return Claim(outcome=why.outcome, operation=old)
        return await self._claim_new_attempt(req, old, supersede=why.supersede)

    async def _claim_new_attempt(
        self, req: ClaimRequest, old: OperationItem, *, supersede: bool
    ) -> Claim | None:
        """A retried deployment: same RequestId, new ResponseURL. Keep the steps, reset the
        rest, fenced on the fence we saw so that two new deliveries cannot both win, and (unless
        ``supersede``) only once the operation is finished or its holder's lease ran out."""
        now = time.time()
        update = (
            Update()
            .add(fence=1, invocations=1, attempt_no=1)
            .set(
                attempt=req.attempt,
                request_digest=req.request_digest,
                owner=req.owner,
                lease_until=now + req.lease,
                status=OperationStatus.RUNNING.value,
                issued_at=req.issued_at,
                deadline=new_attempt_deadline(req, old),
                updated_at=now,
                stalled=0,
            )
            .set_list(
                "past_attempts",
                self._operations.encode_list(
                    "past_attempts", [*(old.past_attempts or []), old.attempt]
                ),
            )
            .set_list("events", self._events(bounded(old, new_attempt_event(now))))
            .remove(*NEW_ATTEMPT_CLEARS)
        )
        if unanswered := unanswered_after(old):
            update.set_list(
                "unanswered_attempts",
                self._operations.encode_list("unanswered_attempts", unanswered),
            )
        # On the fence we saw, with no answer owed (claims.answer_owed), and unless this attempt
        # is proven CloudFormation's newer one, once the holder is done or its lease ran out.
        condition = (
            "#fence = :seen AND (attribute_not_exists(#response) OR "
            "attribute_exists(#posted_at) OR #deadline <= :owed_until)"
        )
        values: dict[str, Any] = {":seen": old.fence, ":owed_until": now - OWED_GRACE}
        if not supersede:
            condition += " AND (#status <> :running OR #lease_until < :expired)"
            values[":running"] = OperationStatus.RUNNING.value
            values[":expired"] = now - self.lease_skew
        try:
            item = await self._update(req.op_id, update.request(condition=condition, values=values))
        except _Refused:  # another delivery won, or the holder renewed: look again
            return None
        return Claim(outcome=ClaimOutcome.CLAIMED, operation=item)

    async def renew_lease(self, op_id: str, fence: int, lease_until: float) -> None:
        """Extend the lease while this invocation runs.

        Raises:
            FenceLost: a newer invocation holds the operation.
            JournalError: DynamoDB failed.
        """
        await self._fenced(op_id, fence, Update().set(lease_until=lease_until))

    async def release_lease(self, op_id: str, fence: int) -> None:
        """Give the lease up early (the invocation is about to fail), so that Lambda's retry
        of it claims at once instead of waiting for the lease to run out.

        Raises:
            FenceLost, JournalError: as :meth:`renew_lease`.
        """
        await self._fenced(op_id, fence, Update().set(lease_until=0))

    async def record_physical_id(self, op_id: str, fence: int, physical_id: str) -> None:
        """Journal the physical id the handler set, before its next live work: a FAILED answer
        written by another invocation (Lambda's on-failure record) reports it, so rollback's
        Delete reaches user code for what was built.

        Raises:
            FenceLost, JournalError: as :meth:`renew_lease`.
        """
        await self._fenced(op_id, fence, Update().set(physical_id=physical_id))

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
        """Record the hand-over token (the lease stays held) before invoking the successor.

        Raises:
            FenceLost, JournalError: as :meth:`renew_lease`.
        """
        now = time.time()
        handed = handed_over_event(now, note, current.invocations)
        update = (
            Update()
            .set(
                handover_token=token,
                stalled=stalled,
                updated_at=now,
                handover_state=state,
                handover_at=",".join(positions) or None,
                physical_id=physical_id or None,
                wake_at=wake_at,
            )
            .set_list("events", self._events(bounded(current, handed)))
        )
        await self._fenced(op_id_of(current), current.fence, update)

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
        """The outbox: record the response (and release the lease: its owner and expiry are
        removed, which also keeps a finished operation's item within 1 KB, one write unit)
        before it is PUT, with the SHA-256 of the exact body, which stays when the body is
        masked once posted.

        Raises:
            FenceLost, JournalError: as :meth:`renew_lease`.
        """
        now = time.time()
        posted = response_event(now, response_status, current.invocations)
        update = (
            Update()
            .set(
                response=body,
                response_digest=hashlib.sha256(body.encode()).hexdigest(),
                response_status=response_status,
                status=status.value,
                physical_id=physical_id,
                updated_at=now,
                reason=reason or None,
            )
            .remove("handover_token", "owner", "lease_until")
            .set_list("events", self._events(bounded(current, posted)))
        )
        await self._fenced(op_id_of(current), current.fence, update)

    async def mark_posted(
        self,
        op_id: str,
        attempt: str,
        *,
        undeliverable: str | None = None,
        kept: str | None = None,
    ) -> None:
        """Mark the recorded response delivered (or undeliverable, with why). ``kept``, when
        given, replaces the recorded body: no duplicate re-posts it from now on, so what only
        a re-post needed (NoEcho Data) need not be kept.

        Conditional on the attempt, not the fence: a duplicate that re-posts a finished
        attempt's response holds no fence. Losing the condition means a newer attempt took
        over, and its own response is what counts: nothing to do then.

        Raises:
            JournalError: DynamoDB failed.
        """
        now = time.time()
        news = undeliverable_event(now, undeliverable) if undeliverable else posted_event(now)
        update = Update().set(posted_at=now, updated_at=now)
        if kept is not None:
            update.set(response=kept)
        if undeliverable:
            update.set(status=OperationStatus.UNDELIVERABLE.value, reason=undeliverable)
        update.append("events", self._events([news]))
        condition = "#attempt = :attempt AND attribute_exists(#response)"
        try:
            await self._write(
                op_id, update.request(condition=condition, values={":attempt": attempt})
            )
        except _Refused:
            pass

    async def note_delivery(self, op_id: str, attempt: str, what: str) -> None:
        """Append ``what`` (why the response is not delivered yet) to the operation's events,
        so that ``asynccfn journal show`` says it; the delivery itself stays pending.

        Raises:
            JournalError: DynamoDB failed.
        """
        now = time.time()
        news = not_delivered_event(now, what)
        update = Update().set(updated_at=now).append("events", self._events([news]))
        condition = "#attempt = :attempt AND attribute_exists(#response)"
        try:
            await self._write(
                op_id, update.request(condition=condition, values={":attempt": attempt})
            )
        except _Refused:
            pass  # a newer attempt took over: its own delivery is what counts

    # -- steps -----------------------------------------------------------------------------

    async def load_operation(self, op_id: str) -> OperationItem | None:
        """The operation item as it is now (a consistent GetItem), or None.

        Raises:
            JournalError: DynamoDB failed.
        """
        item = await self._get_item(op_pk(op_id), OP_SK)
        return self._operations.decode(item) if item else None

    async def load_steps(self, op_id: str) -> dict[str, StepItem]:
        """Every step of the operation: one consistent Query, paginated. The next page is
        asked for before this one is decoded, so decoding overlaps the wait.

        Raises:
            JournalError: DynamoDB failed.
        """
        client = await self._raw_client()
        decode = self._steps.decode
        steps: dict[str, StepItem] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": op_pk(op_id)},
                ":prefix": {"S": STEP_PREFIX},
            },
            "ConsistentRead": True,
        }

        async def page_from(start: Any) -> Any:
            self.requests += 1
            with translated(), _wire.raw_query():
                return await client.query(**kwargs, **start)

        page = await page_from({})
        while True:
            last = page.get("LastEvaluatedKey")
            following = (
                asyncio.ensure_future(page_from({"ExclusiveStartKey": last})) if last else None
            )
            try:
                for raw in page.get("Items", []):
                    step = decode(raw)
                    steps[step.sk[len(STEP_PREFIX) :]] = step
            except BaseException:
                if following is not None:
                    discard(following)
                raise
            if following is None:
                return steps
            page = await following

    def new_step(self, op_id: str, position: str, **attrs: Any) -> StepItem:
        """A step item for ``position`` (``<scope>#<seq>``), with the table's TTL."""
        return StepItem(
            pk=op_pk(op_id),
            sk=STEP_PREFIX + position,
            expires_at=int(time.time() + self.retention),
            **attrs,
        )

    async def write_step(self, step: StepItem, *, previous: StepItem | None) -> StepItem:
        """Create the slot, or advance it from ``previous``; return what the journal holds.

        A writer that loses the race gets the winner's item back (ALL_OLD) and adopts it; a
        refusal without the item (a table that does not return it) reads the slot instead.
        The winner may be this writer itself: its write took effect, the reply was lost, and
        botocore's retry met the condition its own write changed.

        Raises:
            PayloadTooLarge: the item would exceed what a journal item may hold.
            JournalError: DynamoDB failed.
        """
        item, size = self._steps.encode(step)
        if size > ITEM_CAP:
            raise PayloadTooLarge(
                f"step {step.name!r} would journal {size} bytes (result "
                f"{json_size(step.result)} bytes); a journal item holds at most {ITEM_CAP} bytes"
            )
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Item": item,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if previous is None:
            kwargs["ConditionExpression"] = "attribute_not_exists(sk)"
        else:  # advanced only from what this writer last saw
            kwargs["ConditionExpression"] = "#attempt = :attempt AND #status = :status"
            kwargs["ExpressionAttributeNames"] = {"#attempt": "attempt", "#status": "status"}
            kwargs["ExpressionAttributeValues"] = {
                ":attempt": self._steps.number(previous.attempt),
                ":status": {"S": previous.status},
            }
        client = await self._client()
        self.requests += 1
        try:
            with translated():
                await client.put_item(**kwargs)
        except ConditionFailed as lost:
            held = lost.item if lost.item is not None else await self._get_item(step.pk, step.sk)
            if held is None:
                raise JournalError(f"step slot {step.sk} vanished during a write") from None
            return self._steps.decode(held)
        return step

    async def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        """The item at (``pk``, ``sk``) as DynamoDB holds it now (a consistent GetItem), in
        wire form, or None."""
        client = await self._client()
        self.requests += 1
        with translated():
            answer = await client.get_item(
                TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
            )
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def _events(self, events: list[EventItem]) -> dict[str, Any]:
        """Events in wire form, each without its text when its kind says it."""
        return lean_events(self._operations, events)

    # -- plumbing ---------------------------------------------------------------------------

    async def _fenced(self, op_id: str, fence: int, update: Update) -> None:
        request = update.request(condition="#fence = :holder", values={":holder": fence})
        try:
            await self._write(op_id, request)
        except _Refused as refused:
            newer = refused.item.fence if refused.item is not None else "none"
            raise FenceLost(
                f"operation {op_id} is held by fence {newer}; this invocation had {fence}"
            ) from None

    async def _raw_client(self) -> Any:
        """The client, able to hand over the journal's answers as they are (``_wire``)."""
        client = await self._client()
        if client is not self._prepared:
            _wire.prepare(client)
            self._prepared = client
        return client

    async def _update(self, op_id: str, request: dict[str, Any]) -> OperationItem:
        """UpdateItem on the operation item, returning it as written (for claims).

        Raises:
            _Refused: the condition failed; carries the item as it was (ALL_OLD).
            JournalError: DynamoDB failed.
        """
        with _wire.raw_query():  # the item as DynamoDB's JSON has it: the codec reads that
            result = await self._send_update(op_id, {**request, "ReturnValues": "ALL_NEW"})
        return self._operations.decode(result["Attributes"])

    async def _write(self, op_id: str, request: dict[str, Any]) -> None:
        """UpdateItem on the operation item when the writer needs nothing back.

        Raises:
            _Refused, JournalError: as :meth:`_update`.
        """
        await self._send_update(op_id, request)

    async def _send_update(self, op_id: str, request: dict[str, Any]) -> Any:
        client = await self._raw_client()
        self.requests += 1
        try:
            with translated():
                return await client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": op_pk(op_id)}, "sk": {"S": OP_SK}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **request,
                )
        except ConditionFailed as lost:
            item = self._operations.decode(lost.item) if lost.item else None
            raise _Refused(item) from None


_CLAIM_TRIES = 5  # a claim looks again when the item changed between its read and its write


class _Refused(Exception):
    def __init__(self, item: OperationItem | None) -> None:
        super().__init__("conditional check failed")
        self.item = item
