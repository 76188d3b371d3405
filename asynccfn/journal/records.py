"""What the journal reader returns: frozen records of operations, their steps and events.

Plain data, built by :mod:`asynccfn.journal.query`; ``to_jsonable`` (and each record's
``to_json``) gives them as JSON values, times as ISO 8601 UTC and enums as their values. No
record holds the ResponseURL or the hand-over token; a NoEcho response's Data, a sensitive
step's result and whatever the payload codec encrypted are masked (``****``).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from typing import Any

from .._protocol import RequestType
from .._protocol import Status as ResponseStatus
from ._schema import EventKind, OperationStatus, StepKind, StepStatus

__all__ = [
    "ErrorRecord",
    "EventKind",
    "EventRecord",
    "OperationDetail",
    "OperationPage",
    "OperationRecord",
    "ResponseRecord",
    "ResponseStatus",
    "StepRecord",
    "to_jsonable",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class EventRecord:
    """One line of an operation's recent history: claimed, handed over, response, posted.

    ``kind`` says which, ``what`` says it as text; ``steps`` (REPLAYED), ``status`` (the
    response's, RESPONSE) and ``reason`` (UNDELIVERABLE, NOT_DELIVERED) are its details.
    ``invocation`` is the invocation that wrote it; for claims (which the journal records
    before it knows the new count) it is inferred from their order.
    """

    at: datetime.datetime
    what: str
    invocation: int | None
    kind: EventKind = EventKind.OTHER
    steps: int | None = None
    status: str | None = None
    reason: str | None = None

    @property
    def claim(self) -> bool:
        """An invocation (or a new attempt) took the operation."""
        return self.kind in (EventKind.CLAIMED, EventKind.NEW_ATTEMPT)


@dataclass(frozen=True, kw_only=True, slots=True)
class ErrorRecord:
    """A journaled failure: ``type`` is ``module:QualName``, ``code`` an AWS error code."""

    type: str
    message: str
    code: str | None

    @property
    def short_type(self) -> str:
        """The type as a reader writes it: ``RuntimeError``, ``mymodule.BucketError``."""
        module, _, qualname = self.type.partition(":")
        if not qualname:
            return module
        return qualname if module == "builtins" else f"{module}.{qualname}"


@dataclass(frozen=True, kw_only=True, slots=True)
class ResponseRecord:
    """The response recorded in the outbox (the exact body CloudFormation gets).

    ``data`` has every value masked when the handler asked for NoEcho (and once the response
    is posted, the journal keeps it only masked); ``digest`` is the hex SHA-256 of the exact
    body that was recorded and sent; when the payload codec ``encrypted`` the body, ``data``
    is None and ``no_echo`` unknown (False).
    """

    status: ResponseStatus
    physical_id: str
    reason: str | None
    data: Mapping[str, Any] | None
    no_echo: bool
    posted_at: datetime.datetime | None
    digest: str | None = None
    encrypted: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class OperationRecord:
    """An operation: one CloudFormation request to one custom resource.

    ``finished_at`` is when the response was posted (or last written) once the operation is
    no longer RUNNING; ``duration`` runs from ``created_at`` (the first claim) to it.
    ``lease_until`` and ``owner`` (a Lambda request id) say which invocation holds it;
    ``handover_pending`` that the holder recorded a hand-over its successor has not claimed.
    """

    op_id: str
    stack_id: str
    stack_name: str
    logical_id: str
    request_id: str
    resource_type: str
    request_type: RequestType
    status: OperationStatus
    attempt: int
    invocations: int
    fence: int
    owner: str | None
    lease_until: datetime.datetime | None
    handover_pending: bool
    wake_at: datetime.datetime | None
    stalled: int
    issued_at: datetime.datetime
    created_at: datetime.datetime
    updated_at: datetime.datetime
    deadline: datetime.datetime
    finished_at: datetime.datetime | None
    duration: float | None
    physical_id: str | None
    reason: str | None
    response: ResponseRecord | None
    events: tuple[EventRecord, ...]
    expires_at: datetime.datetime | None

    @property
    def short_id(self) -> str:
        """The first 12 characters of the id (enough to name it to ``get_operation``)."""
        return self.op_id[:12]

    def elapsed(self, now: datetime.datetime | None = None) -> float:
        """Seconds from the first claim to the end, or to ``now`` while RUNNING."""
        if self.duration is not None:
            return self.duration
        now = now or datetime.datetime.now(datetime.UTC)
        return max(0.0, (now - self.created_at).total_seconds())

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 UTC, enums as their values)."""
        result: dict[str, Any] = to_jsonable(self)
        return result


@dataclass(frozen=True, kw_only=True, slots=True)
class StepRecord:
    """One durable action of an operation, at ``position`` (``<scope>#<seq>``).

    ``scope`` is ``0`` for the handler, ``0.1``, ``0.2`` … for ``ctx.parallel`` branches;
    ``invocation`` is the invocation that last wrote it; ``result`` is the decoded JSON
    result (or, while a poll is waiting, its last value); ``state`` the EventState recorded
    with the step when it changed. ``sensitive`` says the step's result is secret: ``result``
    is then ``"****"``, as is ``state`` when the payload codec encrypted it.
    """

    position: str
    scope: str
    seq: int
    name: str
    kind: StepKind
    status: StepStatus
    attempt: int
    op_attempt: int
    invocation: int
    started_at: datetime.datetime
    ended_at: datetime.datetime | None
    wake_at: datetime.datetime | None
    duration: float | None
    result: Any
    error: ErrorRecord | None
    state: Mapping[str, Any] | str | None
    sensitive: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 UTC, enums as their values)."""
        result: dict[str, Any] = to_jsonable(self)
        return result


@dataclass(frozen=True, kw_only=True, slots=True)
class OperationDetail:
    """An operation with its steps in program order (see :meth:`Journal.get_operation`)."""

    operation: OperationRecord
    steps: tuple[StepRecord, ...]

    @property
    def events(self) -> tuple[EventRecord, ...]:
        return self.operation.events

    @property
    def finished(self) -> bool:
        """The operation is answered: not RUNNING, and its response posted (or given up)."""
        op = self.operation
        if op.status is OperationStatus.RUNNING:
            return False
        return op.status is OperationStatus.UNDELIVERABLE or (
            op.response is None or op.response.posted_at is not None
        )

    def to_json(self) -> dict[str, Any]:
        """``{"operation": {...}, "steps": [...]}``, JSON-ready."""
        return {
            "operation": self.operation.to_json(),
            "steps": [step.to_json() for step in self.steps],
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class OperationPage:
    """One page of a listing; pass ``cursor`` back for the next (None: no more)."""

    operations: tuple[OperationRecord, ...]
    cursor: str | None


def to_jsonable(value: Any) -> Any:
    """A record (or anything it holds) as plain JSON values: times as ISO 8601 UTC with
    milliseconds, enums as their values, tuples as lists. Raises nothing."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime.datetime):
        text = value.astimezone(datetime.UTC).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value
