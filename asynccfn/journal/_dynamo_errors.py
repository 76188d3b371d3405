"""DynamoDB's errors as the journal store's: the one place that knows botocore's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .._aws import error_code, error_message
from .._errors import JournalError


class ConditionFailed(Exception):
    """A conditional write was refused; ``item`` is the item as it was (ALL_OLD), or None when
    the table's answer did not carry it."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("conditional check failed")
        self.item = item


@contextmanager
def translated() -> Iterator[None]:
    """botocore's errors as asynccfn's.

    Raises:
        ConditionFailed: a condition failed.
        JournalError: any other error.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = error_code(exc) or ""
        if code == "ConditionalCheckFailedException":
            item: Any = exc.response.get("Item")
            raise ConditionFailed(item) from None
        raise JournalError(f"DynamoDB {code}: {error_message(exc)}") from exc
    except BotoCoreError as exc:
        raise JournalError(f"DynamoDB unreachable: {exc}") from exc
