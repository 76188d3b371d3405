"""Reading the journal: operations, their steps and events, as typed records.

Built on the pynamodb models of :mod:`asynccfn.journal.models` (the one schema definition) and,
like pynamodb, synchronous: call it from scripts, the CLI, or a worker thread, never from the
event loop.
The records it returns are defined in :mod:`asynccfn.journal.records` and re-exported here.

::

    journal = Journal("asynccfn-journal", region="eu-west-1")
    page = journal.list_operations(stack=stack_arn, status=OperationStatus.RUNNING)
    detail = journal.get_operation(page.operations[0].op_id)
    for step in detail.steps: ...

Listing by stack ARN uses the ``by-stack`` index (newest first, paginated by DynamoDB); any
other listing (no stack, or a stack *name*) scans the operation items and sorts them, which
is fine for a journal whose items expire (TTL) but reads the whole table.

What a view never shows: the ResponseURL (it is not stored; the journal keeps only its
SHA-256), the hand-over token, Data of a NoEcho response, the result of a sensitive step and
any value the payload codec encrypted (masked as ``****``).

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
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from .._aws import error_code, error_message
from .._errors import ConfigurationError, JournalError
from ._convert import _operation, _program_order
from .models import (
    OP_SK,
    STEP_PREFIX,
    Models,
    OperationStatus,
    bind,
    op_id_of,
    op_pk,
)
from .records import (
    ErrorRecord,
    EventRecord,
    OperationDetail,
    OperationPage,
    OperationRecord,
    ResponseRecord,
    ResponseStatus,
    StepRecord,
    to_jsonable,
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

_HEX = re.compile(r"^[0-9a-f]+$")


class OperationNotFound(JournalError):
    """No operation with that id (or id prefix) is in the journal."""


class TableNotFound(JournalError):
    """The journal table does not exist (in that region, at that endpoint)."""


class JournalUnreachable(JournalError):
    """DynamoDB (or the configured endpoint) did not answer."""


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
        resource_type: str | None = None,
    ) -> OperationPage:
        """One page of operations, newest first.

        ``stack`` is a stack ARN (uses the ``by-stack`` index) or a stack name (scans);
        ``since`` keeps operations first claimed at or after a time (or within a timedelta
        of now); ``resource_type`` keeps one type's operations (``Custom::Bucket``: a
        function serving several); ``cursor`` continues a previous page with the same filters.

        Raises:
            ConfigurationError: ``limit`` below 1, or a cursor this listing did not make.
            TableNotFound, JournalUnreachable, JournalError: DynamoDB failed.
        """
        if limit < 1:
            raise ConfigurationError(f"limit must be at least 1, got {limit}")
        since_epoch = _since_epoch(since)
        if stack is not None and stack.startswith("arn:"):
            return self._list_by_stack(stack, status, since_epoch, limit, cursor, resource_type)
        return self._list_by_scan(stack, status, since_epoch, limit, cursor, resource_type)

    def iter_operations(
        self,
        *,
        stack: str | None = None,
        status: OperationStatus | None = None,
        since: datetime.datetime | datetime.timedelta | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        resource_type: str | None = None,
    ) -> Iterator[OperationRecord]:
        """Every matching operation, newest first, fetched a page at a time.

        Raises:
            as :meth:`list_operations`.
        """
        cursor: str | None = None
        while True:
            page = self.list_operations(
                stack=stack,
                status=status,
                since=since,
                limit=page_size,
                cursor=cursor,
                resource_type=resource_type,
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
        resource_type: str | None = None,
    ) -> OperationPage:
        op = self._models.operation
        start = _decode_cursor(cursor, "index")
        range_condition = op.created_at >= since_epoch if since_epoch is not None else None
        filter_condition = op.status == status.value if status is not None else None
        if resource_type is not None:
            by_type = op.resource_type == resource_type
            filter_condition = by_type if filter_condition is None else filter_condition & by_type
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
        resource_type: str | None = None,
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
        if resource_type is not None:
            condition &= op.resource_type == resource_type
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
            code = error_code(cause) or ""
            if code == "ResourceNotFoundException":
                raise TableNotFound(f"no journal {where}") from exc
            if code == "ResourceInUseException":
                raise JournalError(f"{where} already exists") from exc
            message = error_message(cause)
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
