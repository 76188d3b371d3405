"""Reading the journal: operations, their steps and events, as typed records.

Built on the pynamodb models of :mod:`asynccfn.journal.models` (the one schema definition) and,
like pynamodb, synchronous: call it from scripts, the CLI, or a worker thread, never from the
event loop.

::

    journal = Journal("asynccfn-journal", region="eu-west-1")
    page = journal.list_operations(stack=stack_arn, status=OperationStatus.RUNNING)
    detail = journal.get_operation(page.operations[0].op_id)
    for step in detail.steps: ...

Listing by stack ARN uses the ``by-stack`` index (newest first, paginated by DynamoDB); any
other listing (no stack, or a stack *name*) scans the operation items and sorts them, which
is fine for a journal whose items expire (TTL) but reads the whole table.

What a view never shows: the ResponseURL (it is not stored; the journal keeps only its
SHA-256), the hand-over token, and Data of a NoEcho response (masked as ``****``).

Errors, all :class:`~asynccfn.JournalError` or :class:`~asynccfn.ConfigurationError`::

    JournalError
    ├── OperationNotFound    no operation with that id (or id prefix) in the table
    ├── TableNotFound        the table does not exist in that region / at that endpoint
    └── JournalUnreachable   the endpoint did not answer
    ConfigurationError       no region, no credentials, an ambiguous id prefix, a bad cursor
"""

from __future__ import annotations

import base64
import binascii
import datetime
import heapq
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from typing import Any

from .._errors import ConfigurationError, JournalError
from .._protocol import RequestType, mask_no_echo
from .._protocol import Status as ResponseStatus
from .models import (
    OP_SK,
    STEP_PREFIX,
    Models,
    OperationModel,
    OperationStatus,
    StepKind,
    StepModel,
    StepStatus,
    bind,
    op_id_of,
    op_pk,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "ErrorRecord",
    "EventRecord",
    "Journal",
    "JournalUnreachable",
    "OperationDetail",
    "OperationNotFound",
    "OperationPage",
    "OperationRecord",
    "ResponseRecord",
    "ResponseStatus",
    "StepRecord",
    "TableNotFound",
    "endpoint_from_env",
    "region_from_env",
    "to_jsonable",
]

DEFAULT_PAGE_SIZE = 50
OP_ID_LENGTH = 40

# A reader should fail fast and say why, not retry for a minute.
_CONNECT_TIMEOUT = 3
_READ_TIMEOUT = 10
_RETRIES = 2

_CLAIM_NOTES = ("claimed", "new attempt claimed")
_HEX = re.compile(r"^[0-9a-f]+$")


class OperationNotFound(JournalError):
    """No operation with that id (or id prefix) is in the journal."""


class TableNotFound(JournalError):
    """The journal table does not exist (in that region, at that endpoint)."""


class JournalUnreachable(JournalError):
    """DynamoDB (or the configured endpoint) did not answer."""


# -- records --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class EventRecord:
    """One line of an operation's recent history: claimed, handed over, response, posted.

    ``invocation`` is the invocation that wrote it; for claims (which the journal records
    before it knows the new count) it is inferred from their order.
    """

    at: datetime.datetime
    what: str
    invocation: int | None


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

    ``data`` has every value masked when the handler asked for NoEcho.
    """

    status: ResponseStatus
    physical_id: str
    reason: str | None
    data: Mapping[str, Any] | None
    no_echo: bool
    posted_at: datetime.datetime | None


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
    with the step when it changed.
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
    state: Mapping[str, Any] | None

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


# -- the reader -----------------------------------------------------------------------------


class Journal:
    """Reads one journal table (synchronously, with pynamodb).

    ``region`` defaults to ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / the AWS profile's;
    ``endpoint_url`` to ``AWS_ENDPOINT_URL_DYNAMODB`` / ``AWS_ENDPOINT_URL`` (DynamoDB
    Local, say), else AWS's own endpoint.

    Raises:
        ConfigurationError: no table name, or no region could be found.
    """

    __slots__ = ("_models", "endpoint_url", "region", "table")

    def __init__(
        self, table: str, *, region: str | None = None, endpoint_url: str | None = None
    ) -> None:
        if not table:
            raise ConfigurationError("no journal table named")
        resolved = region or region_from_env()
        if not resolved:
            raise ConfigurationError(
                "no AWS region: pass region=... or set AWS_REGION (or AWS_DEFAULT_REGION)"
            )
        self.table = table
        self.region = resolved
        self.endpoint_url = endpoint_url or endpoint_from_env()
        self._models = _reader_models(table, resolved, self.endpoint_url)

    @property
    def where(self) -> str:
        """Where the table is looked for, for messages: ``table T in R (at URL)``."""
        at = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"table {self.table!r} in {self.region}{at}"

    # -- listing ----------------------------------------------------------------------------

    def list_operations(
        self,
        *,
        stack: str | None = None,
        status: OperationStatus | None = None,
        since: datetime.datetime | datetime.timedelta | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> OperationPage:
        """One page of operations, newest first.

        ``stack`` is a stack ARN (uses the ``by-stack`` index) or a stack name (scans);
        ``since`` keeps operations first claimed at or after a time (or within a timedelta
        of now); ``cursor`` continues a previous page with the same filters.

        Raises:
            ConfigurationError: ``limit`` below 1, or a cursor this listing did not make.
            TableNotFound, JournalUnreachable, JournalError: DynamoDB failed.
        """
        if limit < 1:
            raise ConfigurationError(f"limit must be at least 1, got {limit}")
        since_epoch = _since_epoch(since)
        if stack is not None and stack.startswith("arn:"):
            return self._list_by_stack(stack, status, since_epoch, limit, cursor)
        return self._list_by_scan(stack, status, since_epoch, limit, cursor)

    def iter_operations(
        self,
        *,
        stack: str | None = None,
        status: OperationStatus | None = None,
        since: datetime.datetime | datetime.timedelta | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[OperationRecord]:
        """Every matching operation, newest first, fetched a page at a time.

        Raises:
            as :meth:`list_operations`.
        """
        cursor: str | None = None
        while True:
            page = self.list_operations(
                stack=stack, status=status, since=since, limit=page_size, cursor=cursor
            )
            yield from page.operations
            if page.cursor is None:
                return
            cursor = page.cursor

    def _list_by_stack(
        self,
        stack_arn: str,
        status: OperationStatus | None,
        since_epoch: float | None,
        limit: int,
        cursor: str | None,
    ) -> OperationPage:
        op = self._models.operation
        start = _decode_cursor(cursor, "index")
        range_condition = op.created_at >= since_epoch if since_epoch is not None else None
        filter_condition = op.status == status.value if status is not None else None
        with self._translated():
            results = op.stack_index.query(
                stack_arn,
                range_key_condition=range_condition,
                filter_condition=filter_condition,
                scan_index_forward=False,
                limit=limit,
                last_evaluated_key=start,
            )
            records = tuple(_operation(item) for item in results)
            last = results.last_evaluated_key
        return OperationPage(
            operations=records, cursor=_encode_cursor("index", last) if last else None
        )

    def _list_by_scan(
        self,
        stack_name: str | None,
        status: OperationStatus | None,
        since_epoch: float | None,
        limit: int,
        cursor: str | None,
    ) -> OperationPage:
        op = self._models.operation
        after = _decode_cursor(cursor, "scan")
        condition = op.sk == OP_SK
        if stack_name is not None:
            condition &= op.stack_id.contains(f":stack/{stack_name}/")
        if status is not None:
            condition &= op.status == status.value
        if since_epoch is not None:
            condition &= op.created_at >= since_epoch
        with self._translated():
            items = list(op.scan(filter_condition=condition))
        # Newest first; ties broken by id so that a cursor (the last key shown) is exact.
        keyed = sorted(((-float(i.created_at), i.pk), i) for i in items)
        if after is not None:
            mark = (float(after["k"][0]), str(after["k"][1]))
            keyed = [entry for entry in keyed if entry[0] > mark]
        page = keyed[:limit]
        records = tuple(_operation(item) for _, item in page)
        more = len(keyed) > limit
        next_cursor = _encode_cursor("scan", {"k": list(page[-1][0])}) if more else None
        return OperationPage(operations=records, cursor=next_cursor)

    # -- one operation ------------------------------------------------------------------------

    def resolve(self, op_id: str) -> str:
        """The full id of the operation that ``op_id`` names (the id, or a unique prefix of
        at least 4 characters, as ``list`` shows them).

        Raises:
            OperationNotFound: no operation has that id or prefix.
            ConfigurationError: the prefix is too short, not hex, or names several.
            TableNotFound, JournalUnreachable, JournalError: DynamoDB failed.
        """
        wanted = op_id.strip().lower().removeprefix("op#")
        if not _HEX.match(wanted) or len(wanted) > OP_ID_LENGTH:
            raise OperationNotFound(f"no operation {op_id!r}: ids are hexadecimal ({self.where})")
        if len(wanted) == OP_ID_LENGTH:
            return wanted
        if len(wanted) < 4:
            raise ConfigurationError(f"operation id prefix {op_id!r} is too short: give 4 or more")
        op = self._models.operation
        condition = (op.sk == OP_SK) & op.pk.startswith(op_pk(wanted))
        with self._translated():
            found = sorted(
                {
                    op_id_of(item)
                    for item in op.scan(filter_condition=condition, attributes_to_get=["pk", "sk"])
                }
            )
        if not found:
            raise OperationNotFound(f"no operation {op_id!r} in {self.where}")
        if len(found) > 1:
            shown = ", ".join(f[:12] for f in found[:5])
            raise ConfigurationError(f"operation id prefix {op_id!r} is ambiguous: {shown}")
        return found[0]

    def get_operation(self, op_id: str) -> OperationDetail:
        """The operation ``op_id`` (or a unique prefix, see :meth:`resolve`) with its steps in
        program order and its events in order, read consistently.

        Raises:
            OperationNotFound: no such operation.
            ConfigurationError: an ambiguous or too short prefix.
            TableNotFound, JournalUnreachable, JournalError: DynamoDB failed.
        """
        full = self.resolve(op_id)
        models = self._models
        with self._translated():
            try:
                item = models.operation.get(op_pk(full), OP_SK, consistent_read=True)
            except models.operation.DoesNotExist:
                raise OperationNotFound(f"no operation {op_id!r} in {self.where}") from None
            steps = list(
                models.step.query(
                    op_pk(full),
                    models.step.sk.startswith(STEP_PREFIX),
                    consistent_read=True,
                )
            )
        return OperationDetail(operation=_operation(item), steps=_program_order(steps))

    # -- errors -------------------------------------------------------------------------------

    def create_table(self, *, wait: bool = True) -> None:
        """Create this journal table (see :func:`asynccfn.journal.table.create_table`).

        Raises:
            JournalError: the table exists already, or DynamoDB refused.
            TableNotFound, JournalUnreachable, ConfigurationError: as for reads.
        """
        from .table import create_table

        with self._translated():
            if self._models.operation.exists():
                raise JournalError(f"{self.where} already exists")
            create_table(self.table, region=self.region, host=self.endpoint_url, wait=wait)

    def _translated(self) -> AbstractContextManager[None]:
        return _translated(self.where, self.region, self.endpoint_url)


@contextmanager
def _translated(where: str, region: str, endpoint_url: str | None) -> Iterator[None]:
    """pynamodb's and botocore's errors as asynccfn's: the one place that knows them."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        NoCredentialsError,
        NoRegionError,
    )
    from pynamodb.exceptions import PynamoDBException

    try:
        yield
    except (PynamoDBException, ClientError, BotoCoreError) as exc:
        # pynamodb wraps most botocore errors, but not all (DescribeTable's).
        cause = exc.cause if isinstance(exc, PynamoDBException) else exc
        if isinstance(cause, ClientError):
            error = cause.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code == "ResourceNotFoundException":
                raise TableNotFound(f"no journal {where}") from exc
            if code == "ResourceInUseException":
                raise JournalError(f"{where} already exists") from exc
            message = " ".join(str(error.get("Message", "")).split())
            raise JournalError(f"DynamoDB refused ({where}): {code}: {message}") from exc
        if isinstance(cause, NoCredentialsError):
            raise ConfigurationError("no AWS credentials found") from exc
        if isinstance(cause, NoRegionError):
            raise ConfigurationError("no AWS region") from exc
        if isinstance(cause, ConnectionError):
            raise JournalUnreachable(
                f"could not reach {endpoint_url or f'DynamoDB in {region}'}"
            ) from exc
        if isinstance(cause, BotoCoreError):
            raise JournalError(f"DynamoDB failed ({where}): {cause}") from exc
        raise JournalError(f"DynamoDB failed ({where}): {exc}") from exc


def region_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """The region AWS SDKs would use: ``AWS_REGION``, ``AWS_DEFAULT_REGION``, then the
    profile's. Raises nothing."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(name):
            return environ[name]
    try:
        import botocore.session

        region = botocore.session.get_session().get_config_variable("region")
    except Exception:  # a broken profile file is no region, not a crash
        return None
    return str(region) if region else None


def endpoint_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """The DynamoDB endpoint override: ``AWS_ENDPOINT_URL_DYNAMODB``, then
    ``AWS_ENDPOINT_URL``. Raises nothing."""
    return environ.get("AWS_ENDPOINT_URL_DYNAMODB") or environ.get("AWS_ENDPOINT_URL") or None


# -- building records -------------------------------------------------------------------------


def _reader_models(table: str, region: str, host: str | None) -> Models:
    """``bind``'s models with a reader's short timeouts and few retries."""
    bound = bind(table, region, host)

    def fast(model: type[Any]) -> type[Any]:
        meta = type(
            "Meta",
            (model.Meta,),
            {
                "connect_timeout_seconds": _CONNECT_TIMEOUT,
                "read_timeout_seconds": _READ_TIMEOUT,
                "max_retry_attempts": _RETRIES,
            },
        )
        # pynamodb caches the connection on the class; a subclass must not inherit it.
        return type(model.__name__, (model,), {"Meta": meta, "_connection": None})

    return Models(fast(bound.operation), fast(bound.step))


def _time(epoch: Any) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(float(epoch), datetime.UTC)


def _maybe_time(epoch: Any) -> datetime.datetime | None:
    return _time(epoch) if epoch else None


def _stack_name(stack_id: str) -> str:
    """``arn:…:stack/NAME/uuid`` -> ``NAME`` (the id itself when it is not such an ARN)."""
    _, _, resource = stack_id.partition(":stack/")
    return resource.split("/", 1)[0] if resource else stack_id


def _operation(item: OperationModel) -> OperationRecord:
    status = OperationStatus(item.status)
    response = _response(item)
    finished: datetime.datetime | None = None
    if status is not OperationStatus.RUNNING:
        finished = _time(item.posted_at or item.updated_at)
    created = _time(item.created_at)
    return OperationRecord(
        op_id=op_id_of(item),
        stack_id=item.stack_id,
        stack_name=_stack_name(item.stack_id),
        logical_id=item.logical_id,
        request_id=item.request_id,
        resource_type=item.resource_type,
        request_type=RequestType(item.request_type),
        status=status,
        attempt=int(item.attempt_no),
        invocations=int(item.invocations),
        fence=int(item.fence),
        owner=item.owner,
        lease_until=_maybe_time(item.lease_until),
        handover_pending=item.handover_token is not None,
        wake_at=_maybe_time(item.wake_at),
        stalled=int(item.stalled or 0),
        issued_at=_time(item.issued_at),
        created_at=created,
        updated_at=_time(item.updated_at),
        deadline=_time(item.deadline),
        finished_at=finished,
        duration=max(0.0, (finished - created).total_seconds()) if finished else None,
        physical_id=item.physical_id,
        reason=item.reason,
        response=response,
        events=_events(item),
        expires_at=_maybe_time(item.expires_at),
    )


def _response(item: OperationModel) -> ResponseRecord | None:
    """The outbox body, NoEcho Data masked. It never holds the ResponseURL."""
    if item.response is None:
        return None
    try:
        body = json.loads(item.response)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    no_echo = body.get("NoEcho") is True
    data = body.get("Data")
    if isinstance(data, dict):
        data = mask_no_echo(data) if no_echo else data
    else:
        data = None
    status_text = item.response_status or body.get("Status") or ResponseStatus.FAILED.value
    return ResponseRecord(
        status=ResponseStatus(status_text),
        physical_id=str(body.get("PhysicalResourceId") or item.physical_id or ""),
        reason=body.get("Reason"),
        data=data,
        no_echo=no_echo,
        posted_at=_maybe_time(item.posted_at),
    )


def _events(item: OperationModel) -> tuple[EventRecord, ...]:
    """The events in order. Each claim raised the invocation count by one, so counting the
    claims back from the current count numbers them even after old events were dropped;
    other unnumbered events (posted) belong to the invocation before them."""
    raw = list(item.events or [])
    claims = sum(1 for e in raw if str(e.what).startswith(_CLAIM_NOTES))
    number = int(item.invocations) - claims
    current: int | None = None
    records: list[EventRecord] = []
    for event in raw:
        what = str(event.what)
        if what.startswith(_CLAIM_NOTES):
            number += 1
            current = number if number >= 1 else None
        elif event.invocation is not None:
            current = int(event.invocation)
        records.append(EventRecord(at=_time(event.at), what=what, invocation=current))
    return tuple(records)


def _scope_key(scope: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in scope.split("."))
    except ValueError:
        return ()


def _step(item: StepModel) -> StepRecord:
    position = item.sk.removeprefix(STEP_PREFIX)
    scope, _, seq = position.rpartition("#")
    error = None
    if item.error_type is not None or item.error_message is not None:
        error = ErrorRecord(
            type=item.error_type or "builtins:Exception",
            message=item.error_message or "",
            code=item.error_code,
        )
    started = _time(item.started_at)
    ended = _maybe_time(item.ended_at)
    return StepRecord(
        position=position,
        scope=scope,
        seq=int(seq) if seq.isdigit() else 0,
        name=item.name,
        kind=StepKind(item.kind),
        status=StepStatus(item.status),
        attempt=int(item.attempt),
        op_attempt=int(item.op_attempt),
        invocation=int(item.invocation),
        started_at=started,
        ended_at=ended,
        wake_at=_maybe_time(item.wake_at),
        duration=max(0.0, (ended - started).total_seconds()) if ended else None,
        result=_json_or_text(item.result),
        error=error,
        state=_json_or_text(item.state),
    )


def _json_or_text(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _program_order(items: list[StepModel]) -> tuple[StepRecord, ...]:
    """Steps as the handler ran them: each scope in sequence order, scopes interleaved by
    start time (a ``ctx.parallel`` branch's steps between the steps around the call)."""
    by_scope: dict[str, list[StepRecord]] = {}
    for item in items:
        step = _step(item)
        by_scope.setdefault(step.scope, []).append(step)
    lanes = [sorted(lane, key=lambda s: s.seq) for lane in by_scope.values()]
    merged = heapq.merge(*lanes, key=lambda s: (s.started_at, _scope_key(s.scope), s.seq))
    return tuple(merged)


# -- cursors and times ----------------------------------------------------------------------


def _since_epoch(since: datetime.datetime | datetime.timedelta | None) -> float | None:
    if since is None:
        return None
    if isinstance(since, datetime.timedelta):
        return datetime.datetime.now(datetime.UTC).timestamp() - since.total_seconds()
    if since.tzinfo is None:
        since = since.replace(tzinfo=datetime.UTC)
    # Records show the journal's float times rounded to the microsecond: half of one back,
    # so that a record's own time includes it.
    return since.timestamp() - 0.5e-6


def _encode_cursor(kind: str, key: Mapping[str, Any]) -> str:
    raw = json.dumps({"kind": kind, "key": key}, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None, kind: str) -> Any:
    """The key a cursor carries, or None for none.

    Raises:
        ConfigurationError: the cursor is not one a listing of this kind made.
    """
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        decoded = None
    if not isinstance(decoded, dict) or decoded.get("kind") != kind:
        raise ConfigurationError("the cursor does not belong to this listing")
    return decoded.get("key")


# -- JSON ---------------------------------------------------------------------------------


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
