"""The operation journal: its schema (``models``; the runtime's light view of it, ``_schema``),
the runtime's writer (``store``), table provisioning (``table``) and the read API below,
re-exported from ``query`` and ``records``.

Each kind of item has one name, and a suffix that says which layer holds it: ``StepModel``
is the pynamodb definition of the step item (the schema), ``StepItem`` the item as the runtime
reads and writes it (flat DynamoDB values, no pynamodb), ``StepRecord`` the decoded view this
read API returns (times, enums, errors); likewise ``Operation*`` and ``EventMap`` /
``EventItem`` / ``EventRecord`` for the events an operation item carries.

::

    from asynccfn.journal import Journal, OperationStatus

    journal = Journal("asynccfn-journal")
    for op in journal.iter_operations(status=OperationStatus.RUNNING):
        detail = journal.get_operation(op.op_id)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._schema import EventKind, OperationStatus, StepKind, StepStatus

if TYPE_CHECKING:
    from .query import (
        DEFAULT_PAGE_SIZE,
        Journal,
        JournalUnreachable,
        OperationNotFound,
        TableNotFound,
        endpoint_from_env,
        region_from_env,
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
    from .table import create_table, table_exists

# The runtime imports this package (for the light _schema) on every cold start; the read API,
# the pynamodb models and table provisioning are for the CLI and tests, so they load on first
# use (PEP 562). tests/runtime/test_cold_imports.py holds pynamodb out of a cold start.
_LAZY = {
    **dict.fromkeys(
        (
            "DEFAULT_PAGE_SIZE",
            "Journal",
            "JournalUnreachable",
            "OperationNotFound",
            "TableNotFound",
            "endpoint_from_env",
            "region_from_env",
        ),
        "query",
    ),
    **dict.fromkeys(
        (
            "ErrorRecord",
            "EventRecord",
            "OperationDetail",
            "OperationPage",
            "OperationRecord",
            "ResponseRecord",
            "ResponseStatus",
            "StepRecord",
            "to_jsonable",
        ),
        "records",
    ),
    "create_table": "table",
    "table_exists": "table",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "ErrorRecord",
    "EventKind",
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
