"""The journal's schema, defined once: pynamodb models of the operation and step items.

One table with string keys ``pk``/``sk``, TTL on ``expires_at`` and a GSI listing a stack's
operations. The runtime's hot path sends these items through aiobotocore, serialised by these
models; the query API and the CLI read them with pynamodb (synchronously, off the event loop).

::

    pk = op#<op-id>   sk = op                   the operation: identity, status, fence, lease,
                                                hand-over, deadline, response (outbox), events
    pk = op#<op-id>   sk = step#<scope>#<seq>   one step: name, kind, status, result or error,
                                                attempt, EventState when it changed, whether
                                                its result is sensitive
"""

from __future__ import annotations

import enum
import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

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


def operation_id(stack_id: str, logical_id: str, request_id: str) -> str:
    """The operation's identity: (StackId, LogicalResourceId, RequestId), hashed to a key."""
    raw = "\x1f".join((stack_id, logical_id, request_id)).encode()
    return hashlib.sha256(raw).hexdigest()[:40]


def op_pk(op_id: str) -> str:
    return f"op#{op_id}"


def op_id_of(item: _JournalModel | OperationEntry | StepEntry) -> str:
    """The operation id of an operation or step item."""
    return item.pk.removeprefix("op#")


class EventRecord(MapAttribute[str, Any]):
    """One line of an operation's recent history (claimed, handed over, posted, ...)."""

    at = NumberAttribute()
    what = UnicodeAttribute()
    invocation = NumberAttribute(null=True)


class StackIndex(GlobalSecondaryIndex["OperationModel"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = STACK_INDEX
        projection = AllProjection()

    stack_id = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class _JournalModel(Model):
    class Meta:
        table_name = "asynccfn-journal"  # replaced per table by bind()

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    expires_at = NumberAttribute(null=True)


class OperationModel(_JournalModel):
    """The operation item (``sk = op``)."""

    stack_id = UnicodeAttribute()
    logical_id = UnicodeAttribute()
    request_id = UnicodeAttribute()
    resource_type = UnicodeAttribute()
    request_type = UnicodeAttribute()
    status = UnicodeAttribute()
    attempt = UnicodeAttribute()  # SHA-256 of the current attempt's ResponseURL
    attempt_no = NumberAttribute()
    past_attempts = ListAttribute[str](of=UnicodeAttribute, null=True)  # type: ignore[arg-type]
    fence = NumberAttribute()
    owner = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)
    handover_token = UnicodeAttribute(null=True)
    handover_state = UnicodeAttribute(null=True)  # EventState JSON after the last step
    handover_at = UnicodeAttribute(null=True)  # the positions in progress at the hand-over
    wake_at = NumberAttribute(null=True)
    stalled = NumberAttribute(null=True)  # invocations in a row that made no progress
    invocations = NumberAttribute()
    issued_at = NumberAttribute()
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    deadline = NumberAttribute()
    # The exact body, recorded before the PUT; once posted, with NoEcho Data masked.
    response = UnicodeAttribute(null=True)
    response_digest = UnicodeAttribute(null=True)  # SHA-256 of the exact body, hex
    response_status = UnicodeAttribute(null=True)
    posted_at = NumberAttribute(null=True)
    physical_id = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    events = ListAttribute[EventRecord](of=EventRecord, null=True)

    stack_index = StackIndex()


class StepModel(_JournalModel):
    """A step item (``sk = step#<scope>#<seq>``)."""

    name = UnicodeAttribute()
    kind = UnicodeAttribute()
    status = UnicodeAttribute()
    result = UnicodeAttribute(null=True)  # JSON
    error_type = UnicodeAttribute(null=True)
    error_message = UnicodeAttribute(null=True)
    error_code = UnicodeAttribute(null=True)  # an AWS error code, for calls
    attempt = NumberAttribute()
    op_attempt = NumberAttribute()
    started_at = NumberAttribute()
    ended_at = NumberAttribute(null=True)
    wake_at = NumberAttribute(null=True)
    invocation = NumberAttribute()
    fence = NumberAttribute()
    state = UnicodeAttribute(null=True)  # EventState JSON as of this step, when it changed
    # 1: the result is secret (ctx.step(..., sensitive=True)): readers mask it, the payload
    # codec encrypts it. A number, not a BOOL, so the runtime's flat codec reads it as is.
    sensitive = NumberAttribute(null=True)


# The runtime's plain records of the items: the same attributes as the pynamodb models (the
# codecs of asynccfn.journal._codec refuse any difference). The runtime builds and reads items
# as these, without pynamodb's per-attribute machinery; the journal reader keeps the models.


@dataclass(slots=True, kw_only=True)
class EventEntry:
    """One of the operation's recent events (:class:`EventRecord`)."""

    at: float
    what: str
    invocation: int | None = None


@dataclass(slots=True, kw_only=True)
class OperationEntry:
    """The operation item (:class:`OperationModel`)."""

    pk: str
    sk: str
    stack_id: str
    logical_id: str
    request_id: str
    resource_type: str
    request_type: str
    status: str
    attempt: str
    attempt_no: int
    fence: int
    invocations: int
    issued_at: float
    created_at: float
    updated_at: float
    deadline: float
    expires_at: int | None = None
    past_attempts: list[str] | None = None
    owner: str | None = None
    lease_until: float | None = None
    handover_token: str | None = None
    handover_state: str | None = None
    handover_at: str | None = None
    wake_at: float | None = None
    stalled: int | None = None
    response: str | None = None
    response_digest: str | None = None
    response_status: str | None = None
    posted_at: float | None = None
    physical_id: str | None = None
    reason: str | None = None
    events: list[EventEntry] | None = None


@dataclass(slots=True, kw_only=True)
class StepEntry:
    """A step item (:class:`StepModel`)."""

    pk: str
    sk: str
    name: str
    kind: str
    status: str
    attempt: int
    op_attempt: int
    started_at: float
    invocation: int
    fence: int
    expires_at: int | None = None
    result: str | None = None  # JSON
    error_type: str | None = None
    error_message: str | None = None
    error_code: str | None = None
    ended_at: float | None = None
    wake_at: float | None = None
    state: str | None = None
    sensitive: int | None = None


class Models:
    """The models bound to one table (pynamodb keeps the table name on the class)."""

    __slots__ = ("operation", "step")

    def __init__(self, operation: type[OperationModel], step: type[StepModel]) -> None:
        self.operation = operation
        self.step = step


@functools.cache
def bind(table: str, region: str | None = None, host: str | None = None) -> Models:
    """Model classes for ``table`` (cached: one pair per table)."""

    def meta(base: type[Any]) -> type[Any]:
        attrs: dict[str, Any] = {"table_name": table}
        if region:
            attrs["region"] = region
        if host:
            attrs["host"] = host
        return type("Meta", (base.Meta,), attrs)

    op = type("OperationModel", (OperationModel,), {"Meta": meta(OperationModel)})
    step = type("StepModel", (StepModel,), {"Meta": meta(StepModel)})
    return Models(op, step)
