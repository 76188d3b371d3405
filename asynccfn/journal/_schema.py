"""The journal's schema as the runtime needs it, without pynamodb: keys, statuses, kinds, the
plain records of the items and a static table of their attributes.

The pynamodb models of :mod:`asynccfn.journal.models` stay the schema's one definition (the
query API and the CLI read the table with them); they import what is here, and
``tests/journal/test_schema.py`` asserts that the attribute tables below are exactly what the
models declare. The runtime imports only this module: pynamodb (and the botocore it loads)
costs a Lambda cold start about 70 ms that no request needs.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from typing import Literal, NamedTuple, Protocol

from .._record import Record

STACK_INDEX = "by-stack"
OP_SK = "op"
STEP_PREFIX = "step#"
MAX_EVENTS = 20


class OperationStatus(enum.Enum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    UNDELIVERABLE = "UNDELIVERABLE"


class StepStatus(enum.Enum):
    STARTED = "STARTED"  # at-most-once step begun; the body may or may not have run
    RETRYING = "RETRYING"  # an attempt failed; the next waits until wake_at
    WAITING = "WAITING"  # a sleep or poll waits until wake_at
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class StepKind(enum.Enum):
    STEP = "step"
    CALL = "call"
    WAIT = "wait"
    SLEEP = "sleep"
    NOW = "now"
    UUID = "uuid"


class EventKind(enum.Enum):
    """What an operation event says: its record's ``kind``, with its details as typed fields.

    Its text (``what``) is :func:`describe`'s, and is stored only when it says more (a claim
    with a hand-over token, free text). Items written before events had a kind hold only the
    text; ``_events.kind_of`` reads them (the one place that maps text to a kind)."""

    CLAIMED = "claimed"  # an invocation took the operation (with a hand-over token or not)
    NEW_ATTEMPT = "new attempt"  # a new attempt (ResponseURL) of the request took it over
    REPLAYED = "replayed"  # ``steps``: how many steps the invocation replayed
    HANDED_OVER = "handed over"  # to the next invocation, before the deadline
    RESPONSE = "response"  # ``status``: the response recorded in the outbox
    POSTED = "posted"  # the response was delivered
    UNDELIVERABLE = "undeliverable"  # ``reason``: the response can never be delivered
    NOT_DELIVERED = "not delivered"  # ``reason``: why the response is not delivered yet
    STEPS_SKIPPED = "steps skipped"  # ``reason``: journaled steps a finished handler never took
    LOOP_BLOCKED = "loop blocked"  # ``reason``: how long, and by which user function
    OTHER = "other"  # free text of no known kind


def describe(
    kind: EventKind | None, steps: int | None, status: str | None, reason: str | None
) -> str | None:
    """An event's text, as its kind and details say it (None: free text, no kind)."""
    if kind is EventKind.REPLAYED:
        return f"replayed {steps} step{'' if steps == 1 else 's'}"
    if kind is EventKind.RESPONSE:
        return f"response {status}"
    if kind is EventKind.UNDELIVERABLE:
        return f"undeliverable: {reason}"
    if kind is EventKind.NOT_DELIVERED:
        return reason
    if kind is EventKind.STEPS_SKIPPED:
        return f"finished without asking for journaled steps: {reason}"
    if kind is EventKind.LOOP_BLOCKED:
        return f"event loop blocked {reason}"
    return _FIXED_TEXT.get(kind) if kind is not None else None


_FIXED_TEXT = {
    EventKind.CLAIMED: "claimed",
    EventKind.NEW_ATTEMPT: "new attempt claimed",
    EventKind.HANDED_OVER: "handed over",
    EventKind.POSTED: "posted",
}


class _Keyed(Protocol):
    @property
    def pk(self) -> str: ...


def operation_id(stack_id: str, logical_id: str, request_id: str) -> str:
    """The operation's identity: (StackId, LogicalResourceId, RequestId), hashed to a key."""
    raw = "\x1f".join((stack_id, logical_id, request_id)).encode()
    return hashlib.sha256(raw).hexdigest()[:40]


def op_pk(op_id: str) -> str:
    return f"op#{op_id}"


def op_id_of(item: _Keyed) -> str:
    """The operation id of an operation or step item."""
    return item.pk.removeprefix("op#")


# -- the runtime's plain records of the items ---------------------------------------------
# The same attributes as the pynamodb models (the codecs of asynccfn.journal._codec refuse any
# difference). The runtime builds and reads items as these, without pynamodb's per-attribute
# machinery; the journal reader keeps the models.
#
# Plain records (asynccfn._record) rather than dataclasses: a fraction of the cost to define
# at a cold start.


class EventItem(Record):
    """One of the operation's recent events (``models.EventMap``)."""

    __slots__ = ("at", "invocation", "kind", "reason", "status", "steps", "what")

    def __init__(
        self,
        *,
        at: float,
        # The event as a reader says it: always set here; stored only when its kind's text
        # (describe) does not say it all, which keeps the operation item small.
        what: str | None = None,
        invocation: int | None = None,
        kind: str | None = None,  # an EventKind value; None in items written before kinds
        steps: int | None = None,  # REPLAYED
        status: str | None = None,  # RESPONSE: the response's Status
        reason: str | None = None,  # UNDELIVERABLE, NOT_DELIVERED
    ) -> None:
        self.at = at
        self.invocation = invocation
        self.kind = kind
        self.steps = steps
        self.status = status
        self.reason = reason
        self.what: str | None = (
            what if what is not None else describe(self.kind_of, steps, status, reason) or ""
        )

    @property
    def kind_of(self) -> EventKind | None:
        """The recorded kind (None: none recorded, or one this version does not know)."""
        try:
            return EventKind(self.kind) if self.kind is not None else None
        except ValueError:
            return None

    @property
    def stored_what(self) -> str | None:
        """``what`` as stored: None when the kind and details say it."""
        if self.what == describe(self.kind_of, self.steps, self.status, self.reason):
            return None
        return self.what


class OperationItem(Record):
    """The operation item (``models.OperationModel``)."""

    __slots__ = (
        "attempt",
        "attempt_no",
        "created_at",
        "deadline",
        "events",
        "expires_at",
        "fence",
        "handover_at",
        "handover_state",
        "handover_token",
        "invocations",
        "issued_at",
        "lease_until",
        "logical_id",
        "owner",
        "past_attempts",
        "physical_id",
        "pk",
        "posted_at",
        "reason",
        "request_digest",
        "request_id",
        "request_type",
        "resource_type",
        "response",
        "response_digest",
        "response_status",
        "sk",
        "stack_id",
        "stalled",
        "status",
        "unanswered_attempts",
        "updated_at",
        "wake_at",
    )

    def __init__(
        self,
        *,
        pk: str,
        sk: str,
        stack_id: str,
        logical_id: str,
        request_id: str,
        resource_type: str,
        request_type: str,
        status: str,
        attempt: str,
        attempt_no: int,
        fence: int,
        invocations: int,
        issued_at: float,
        created_at: float,
        updated_at: float,
        deadline: float,
        expires_at: int | None = None,
        request_digest: str | None = None,  # None in items written before request digests
        past_attempts: list[str] | None = None,
        # the past attempts superseded before their answer was posted (their URLs may wait)
        unanswered_attempts: list[str] | None = None,
        owner: str | None = None,
        lease_until: float | None = None,
        handover_token: str | None = None,
        handover_state: str | None = None,
        handover_at: str | None = None,
        wake_at: float | None = None,
        stalled: int | None = None,
        response: str | None = None,
        response_digest: str | None = None,
        response_status: str | None = None,
        posted_at: float | None = None,
        physical_id: str | None = None,
        reason: str | None = None,
        events: list[EventItem] | None = None,
    ) -> None:
        self.pk = pk
        self.sk = sk
        self.stack_id = stack_id
        self.logical_id = logical_id
        self.request_id = request_id
        self.resource_type = resource_type
        self.request_type = request_type
        self.status = status
        self.attempt = attempt
        self.attempt_no = attempt_no
        self.fence = fence
        self.invocations = invocations
        self.issued_at = issued_at
        self.created_at = created_at
        self.updated_at = updated_at
        self.deadline = deadline
        self.expires_at = expires_at
        self.request_digest = request_digest
        self.past_attempts = past_attempts
        self.unanswered_attempts = unanswered_attempts
        self.owner = owner
        self.lease_until = lease_until
        self.handover_token = handover_token
        self.handover_state = handover_state
        self.handover_at = handover_at
        self.wake_at = wake_at
        self.stalled = stalled
        self.response = response
        self.response_digest = response_digest
        self.response_status = response_status
        self.posted_at = posted_at
        self.physical_id = physical_id
        self.reason = reason
        self.events = events


class StepItem(Record):
    """A step item (``models.StepModel``)."""

    __slots__ = (
        "attempt",
        "ended_at",
        "error_code",
        "error_message",
        "error_type",
        "expires_at",
        "fence",
        "invocation",
        "kind",
        "name",
        "op_attempt",
        "pk",
        "result",
        "sensitive",
        "sk",
        "started_at",
        "state",
        "status",
        "wake_at",
    )

    def __init__(
        self,
        *,
        pk: str,
        sk: str,
        name: str,
        kind: str,
        status: str,
        attempt: int,
        op_attempt: int,
        started_at: float,
        invocation: int,
        fence: int,
        expires_at: int | None = None,
        result: str | None = None,  # JSON
        error_type: str | None = None,
        error_message: str | None = None,
        error_code: str | None = None,
        ended_at: float | None = None,
        wake_at: float | None = None,
        state: str | None = None,
        sensitive: int | None = None,
    ) -> None:
        self.pk = pk
        self.sk = sk
        self.name = name
        self.kind = kind
        self.status = status
        self.attempt = attempt
        self.op_attempt = op_attempt
        self.started_at = started_at
        self.invocation = invocation
        self.fence = fence
        self.expires_at = expires_at
        self.result = result
        self.error_type = error_type
        self.error_message = error_message
        self.error_code = error_code
        self.ended_at = ended_at
        self.wake_at = wake_at
        self.state = state
        self.sensitive = sensitive


# -- the static attribute table -------------------------------------------------------------


# NamedTuples rather than dataclasses: they cost a cold start a fraction as much to define.


class Attr(NamedTuple):
    """One attribute: its DynamoDB type (``S``, ``N``, or ``L``), whether it may be null, and
    a list's elements (``S``, ``N``, or a nested :class:`Schema` of maps)."""

    name: str
    type: Literal["S", "N", "L"]
    null: bool = False
    element: Literal["S", "N"] | Schema | None = None


class Schema(NamedTuple):
    """The attributes of one item (or map) kind, in name order (see :func:`schema`)."""

    name: str
    attributes: tuple[Attr, ...]


def schema(name: str, attributes: Iterable[Attr]) -> Schema:
    """A table of ``attributes``, kept in name order: two tables of the same attributes are
    equal however they were declared."""
    return Schema(name, tuple(sorted(attributes, key=lambda attr: attr.name)))


def _s(name: str, *, null: bool = False) -> Attr:
    return Attr(name, "S", null)


def _n(name: str, *, null: bool = False) -> Attr:
    return Attr(name, "N", null)


_KEYS = (_s("pk"), _s("sk"), _n("expires_at", null=True))

EVENT_SCHEMA = schema(
    "EventMap",
    (
        _n("at"),
        _s("what", null=True),
        _n("invocation", null=True),
        _s("kind", null=True),
        _n("steps", null=True),
        _s("status", null=True),
        _s("reason", null=True),
    ),
)

OPERATION_SCHEMA = schema(
    "OperationModel",
    (
        *_KEYS,
        _s("stack_id"),
        _s("logical_id"),
        _s("request_id"),
        _s("resource_type"),
        _s("request_type"),
        _s("status"),
        _s("attempt"),
        _s("request_digest", null=True),
        _n("attempt_no"),
        Attr("past_attempts", "L", null=True, element="S"),
        Attr("unanswered_attempts", "L", null=True, element="S"),
        _n("fence"),
        _s("owner", null=True),
        _n("lease_until", null=True),
        _s("handover_token", null=True),
        _s("handover_state", null=True),
        _s("handover_at", null=True),
        _n("wake_at", null=True),
        _n("stalled", null=True),
        _n("invocations"),
        _n("issued_at"),
        _n("created_at"),
        _n("updated_at"),
        _n("deadline"),
        _s("response", null=True),
        _s("response_digest", null=True),
        _s("response_status", null=True),
        _n("posted_at", null=True),
        _s("physical_id", null=True),
        _s("reason", null=True),
        Attr("events", "L", null=True, element=EVENT_SCHEMA),
    ),
)

STEP_SCHEMA = schema(
    "StepModel",
    (
        *_KEYS,
        _s("name"),
        _s("kind"),
        _s("status"),
        _s("result", null=True),
        _s("error_type", null=True),
        _s("error_message", null=True),
        _s("error_code", null=True),
        _n("attempt"),
        _n("op_attempt"),
        _n("started_at"),
        _n("ended_at", null=True),
        _n("wake_at", null=True),
        _n("invocation"),
        _n("fence"),
        _s("state", null=True),
        _n("sensitive", null=True),
    ),
)
