"""Claims: what an invocation asks of the journal to hold an operation, and what it gets.

Shared by every journal the runtime can run on (:mod:`asynccfn.journal.protocol`): the
DynamoDB store, its in-memory twin and the journal-less mode.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, NamedTuple

from .._record import Record
from ._events import claimed_event
from ._schema import OP_SK, OperationItem, OperationStatus, op_pk, operation_id

if TYPE_CHECKING:
    from .._protocol import Request

LEASE_SKEW = 2.0  # seconds of clock skew tolerated between invocations' wall clocks
# Seconds past its deadline that an attempt is still owed its answer (and holds the operation
# against another attempt for it): Lambda retries a failed asynchronous invocation twice
# within about three minutes, and an attempt answered FAILED at its deadline (timed out), or
# whose holder crashed then, is owed that answer as much as any.
OWED_GRACE = 900.0


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"  # this invocation holds the operation now
    LIVE_DUPLICATE = "live-duplicate"  # another invocation holds it: stop at once
    # Held under a live lease that this invocation may take over only once it has run out:
    # Lambda's retry of (or its on-failure record for) the holder's own request id, which may
    # also be a concurrent duplicate of it, or a new attempt that cannot prove it is newer, or
    # that asks for something else than the holder's request.
    BUSY = "busy"
    FINISHED = "finished"  # this attempt already has its response
    STALE_ATTEMPT = "stale-attempt"  # a newer attempt of the request superseded this one


class ClaimRequest(Record):
    """What an invocation claims an operation with (a plain record rather than a NamedTuple:
    a fraction of the cost to define at a cold start)."""

    __slots__ = (
        "attempt",
        "deadline",
        "from_cloudformation",
        "gave_up",
        "invocation_note",
        "issued_at",
        "lease",
        "logical_id",
        "op_id",
        "owner",
        "request_digest",
        "request_id",
        "request_type",
        "resource_type",
        "stack_id",
        "token",
    )

    def __init__(
        self,
        *,
        op_id: str,
        stack_id: str,
        logical_id: str,
        request_id: str,
        resource_type: str,
        request_type: str,
        attempt: str,  # SHA-256 of the ResponseURL
        request_digest: str,  # SHA-256 of what the request asks for (Request.request_digest)
        owner: str,  # the Lambda request id and a per-invocation nonce (see owner_id)
        token: str | None,  # the hand-over token this invocation carries, if any
        from_cloudformation: bool,  # the ResponseURL is a CloudFormation response bucket's
        lease: float,
        issued_at: float,
        deadline: float,
        invocation_note: str = "claimed",
        # Lambda's on-failure record of this attempt's invocation (Lambda gave up on it): it
        # may answer FAILED for an operation it can hold, never take one over from another.
        gave_up: bool = False,
    ) -> None:
        self.op_id = op_id
        self.stack_id = stack_id
        self.logical_id = logical_id
        self.request_id = request_id
        self.resource_type = resource_type
        self.request_type = request_type
        self.attempt = attempt
        self.request_digest = request_digest
        self.owner = owner
        self.token = token
        self.from_cloudformation = from_cloudformation
        self.lease = lease
        self.issued_at = issued_at
        self.deadline = deadline
        self.invocation_note = invocation_note
        self.gave_up = gave_up

    @classmethod
    def for_request(
        cls,
        request: Request,
        *,
        owner: str,
        token: str | None,
        lease: float,
        issued_at: float,
        deadline: float,
        gave_up: bool = False,
    ) -> ClaimRequest:
        """The claim of ``request``'s operation by invocation ``owner`` (``gave_up``: by
        Lambda's on-failure record of it)."""
        return cls(
            op_id=operation_id(request.stack_id, request.logical_id, request.request_id),
            stack_id=request.stack_id,
            logical_id=request.logical_id,
            request_id=request.request_id,
            resource_type=request.resource_type,
            request_type=request.request_type.value,
            attempt=request.attempt_digest,
            request_digest=request.request_digest,
            owner=owner,
            token=token,
            from_cloudformation=request.from_cloudformation,
            lease=lease,
            issued_at=issued_at,
            deadline=deadline,
            invocation_note="claimed with hand-over token" if token else "claimed",
            gave_up=gave_up,
        )


class Claimant(NamedTuple):
    """Who claims an operation: the invocation's owner id (``claims.owner_id``), the
    hand-over token its event carries, and whether it is Lambda's on-failure record of an
    invocation (``gave_up``), which may answer FAILED but never supersede another attempt."""

    owner: str
    token: str | None
    gave_up: bool = False


def first_claim(req: ClaimRequest, now: float, *, expires_at: int | None = None) -> OperationItem:
    """The operation item the first claim of ``req``'s operation creates (the journals in
    memory write it as it is; the DynamoDB store's claim sets the same attributes)."""
    return OperationItem(
        pk=op_pk(req.op_id),
        sk=OP_SK,
        stack_id=req.stack_id,
        logical_id=req.logical_id,
        request_id=req.request_id,
        resource_type=req.resource_type,
        request_type=req.request_type,
        status=OperationStatus.RUNNING.value,
        attempt=req.attempt,
        request_digest=req.request_digest,
        attempt_no=1,
        fence=1,
        owner=req.owner,
        lease_until=now + req.lease,
        invocations=1,
        issued_at=req.issued_at,
        created_at=now,
        updated_at=now,
        deadline=req.deadline,
        stalled=0,
        expires_at=expires_at,
        events=[claimed_event(now, req.invocation_note)],
    )


def answer_owed(op: OperationItem, now: float) -> bool:
    """Whether ``op``'s attempt has a recorded answer still to deliver: it finished, its PUT
    has not been marked posted (it failed, or its reply was lost, and Lambda's retry of the
    attempt re-posts that very body: DESIGN.md invariant 8), and its deadline passed no more
    than :data:`OWED_GRACE` ago. Until then no other attempt may take the operation over: a
    new attempt starts without the recorded answer, and the URL waiting for it would get
    another answer or none."""
    return (
        op.status != OperationStatus.RUNNING.value
        and op.response is not None
        and op.posted_at is None
        and answerable(op, now)
    )


def answerable(op: OperationItem, now: float) -> bool:
    """Whether ``op``'s attempt is still owed an answer at ``now``: until :data:`OWED_GRACE`
    past its deadline."""
    return op.deadline is None or op.deadline + OWED_GRACE > now


def new_attempt_deadline(req: ClaimRequest, old: OperationItem) -> float:
    """The deadline of the new attempt ``req`` taking ``old`` over. While an attempt it
    supersedes is still unanswered, that attempt's URL gets this attempt's answer
    (asynccfn._follow), so a new attempt never shortens the deadline: a URL made to expire at
    once (or a short ServiceTimeout) would otherwise turn the work into a FAILED timeout that
    the superseded URL copies."""
    if unanswered_after(old) and old.deadline is not None:
        return max(req.deadline, old.deadline)
    return req.deadline


def unanswered_after(old: OperationItem) -> list[str] | None:
    """The operation's unanswered past attempts once a new attempt supersedes ``old``'s: its
    own too when its answer was never posted (a later delivery of it then follows the new
    attempt and copies its answer: asynccfn._follow)."""
    unanswered = list(old.unanswered_attempts or [])
    if old.posted_at is None:
        unanswered.append(old.attempt)
    return unanswered or None


NEW_ATTEMPT_CLEARS = (
    "handover_token",
    "handover_state",
    "handover_at",
    "physical_id",
    "wake_at",
    "response",
    "response_digest",
    "response_status",
    "posted_at",
    "reason",
)
"""The operation item's attributes a new attempt of the request starts without."""


def owner_id(lambda_request_id: str, nonce: str) -> str:
    """The owner recorded by a claim: Lambda's request id names the invocation Lambda retries
    or reports on; the nonce tells apart two deliveries that carry the same request id."""
    return f"{lambda_request_id}#{nonce}"


def lambda_request_of(owner: str | None) -> str:
    """The Lambda request id part of an owner recorded by :func:`owner_id`."""
    return (owner or "").partition("#")[0]


class Claim(NamedTuple):
    outcome: ClaimOutcome
    operation: OperationItem

    @property
    def fresh(self) -> bool:
        """No invocation ever held this operation before: there are no steps to load."""
        return self.outcome is ClaimOutcome.CLAIMED and self.operation.fence == 1


class Refusal(NamedTuple):
    """What a refused claim means: ``outcome`` to report (CLAIMED when the refusal met the
    claim's own effect), or (None) a new attempt of the request that may claim now,
    superseding a live holder when ``supersede``."""

    outcome: ClaimOutcome | None
    supersede: bool = False


def refusal(req: ClaimRequest, old: OperationItem, *, now: float, lease_skew: float) -> Refusal:
    """Why the journal refused ``req``'s claim of the operation as it is (``old``): the one
    statement of the fencing rules both journals apply (DESIGN.md invariants 4 and 9)."""
    if old.owner is not None and old.owner == req.owner:
        # This invocation's own claim took effect, its reply was lost, and botocore's retry
        # of the conditional write met its effect. The owner carries the invocation's random
        # nonce: no other invocation writes it. The claim stands, as ``old`` holds it.
        return Refusal(outcome=ClaimOutcome.CLAIMED)
    running = old.status == OperationStatus.RUNNING.value
    if old.attempt == req.attempt:
        if not running:
            return Refusal(outcome=ClaimOutcome.FINISHED)
        # The holder's own Lambda request id (Lambda's retry, a duplicate of the same
        # delivery, an on-failure record naming it) may claim only once the lease ran out.
        if lambda_request_of(old.owner) == lambda_request_of(req.owner):
            return Refusal(outcome=ClaimOutcome.BUSY)
        return Refusal(outcome=ClaimOutcome.LIVE_DUPLICATE)
    # An earlier attempt's event can arrive late (held in Lambda's queue, or retried by it):
    # CloudFormation waits for the newer attempt's answer only, so never supersede.
    if req.attempt in (old.past_attempts or []) or req.issued_at < old.issued_at:
        return Refusal(outcome=ClaimOutcome.STALE_ATTEMPT)
    # A recorded answer still to deliver holds the operation as a live lease does, for every
    # new attempt: Lambda's retry of the finished attempt re-posts it, and then (or once its
    # deadline has passed) a new attempt may claim.
    if answer_owed(old, now):
        return Refusal(outcome=ClaimOutcome.BUSY)
    # A live holder is superseded only by an attempt whose URL CloudFormation alone can have
    # signed (its response bucket, its key naming this operation), that was issued later and
    # that asks for what the holder's request asked (a superseded holder PUTs the new attempt's
    # answer to its own URL: see asynccfn._follow); anything else waits until the holder is
    # done or its lease has run out. (An item written before request digests has none.) An
    # on-failure record never supersedes: anyone who may invoke the function can send one,
    # and it answers FAILED at once, which the superseded holder would copy.
    same_request = old.request_digest in (None, req.request_digest)
    # A holder's attempt still running (its lease live or lapsed: Lambda's retry of it
    # resumes it) is owed an answer to its URL: only an attempt asking for the same may take
    # over, whose answer that URL can take (asynccfn._follow).
    if running and not same_request and answerable(old, now):
        return Refusal(outcome=ClaimOutcome.BUSY)
    later = req.issued_at > old.issued_at
    proven = req.from_cloudformation and later and same_request and not req.gave_up
    live = running and (old.lease_until or 0) >= now - lease_skew
    if live and not proven:
        return Refusal(outcome=ClaimOutcome.BUSY)
    return Refusal(outcome=None, supersede=proven)
