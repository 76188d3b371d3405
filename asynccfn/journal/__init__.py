"""The operation journal: its schema (``models``), the runtime's writer (``store``), table
provisioning (``table``) and the read API below, re-exported from ``query``.

::

    from asynccfn.journal import Journal, OperationStatus

    journal = Journal("asynccfn-journal")
    for op in journal.iter_operations(status=OperationStatus.RUNNING):
        detail = journal.get_operation(op.op_id)
"""

from __future__ import annotations

from .models import OperationStatus, StepKind, StepStatus
from .query import (
    DEFAULT_PAGE_SIZE,
    ErrorRecord,
    EventRecord,
    Journal,
    JournalUnreachable,
    OperationDetail,
    OperationNotFound,
    OperationPage,
    OperationRecord,
    ResponseRecord,
    ResponseStatus,
    StepRecord,
    TableNotFound,
    endpoint_from_env,
    region_from_env,
    to_jsonable,
)
from .table import create_table, table_exists

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
    "OperationStatus",
    "ResponseRecord",
    "ResponseStatus",
    "StepKind",
    "StepRecord",
    "StepStatus",
    "TableNotFound",
    "create_table",
    "endpoint_from_env",
    "region_from_env",
    "table_exists",
    "to_jsonable",
]
