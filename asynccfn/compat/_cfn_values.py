"""What a cfn-lambda-handler function sees and returns: its context object, and the checks
that turn its response dict into an asynccfn outcome."""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from .._errors import Failed
from .._protocol import Request
from .._redact import Redactor
from .._result import Success

SUCCESS = "SUCCESS"
FAILED = "FAILED"

_EXAMPLE = '{"Status": "SUCCESS", "PhysicalResourceId": ..., "Data": {...}}'


class LambdaContext:
    """The ``context`` a cfn-lambda-handler function gets: Lambda's own context object, except
    that ``get_remaining_time_in_millis()`` counts down to asynccfn's soft deadline.

    The soft deadline is the Lambda deadline less the reserve asynccfn keeps to hand over or
    answer, or the operation's deadline when that comes first: a function that raises
    ``CfnLambdaExecutionTimeout`` when little is left therefore leaves the runtime its time.
    Safe to call from the worker thread a synchronous function runs in.
    """

    __slots__ = ("_lambda_context", "_soft_deadline")

    def __init__(self, lambda_context: Any, *, remaining: float) -> None:
        self._lambda_context = lambda_context
        self._soft_deadline = time.monotonic() + remaining  # the event loop's clock

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds of work left in this invocation (never negative)."""
        return max(0, int((self._soft_deadline - time.monotonic()) * 1000))

    def __getattr__(self, name: str) -> Any:
        if name in LambdaContext.__slots__:  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._lambda_context, name)

    def __repr__(self) -> str:
        return f"LambdaContext({self._lambda_context!r})"


def default_physical_id(request: Request) -> str:
    """cfn-lambda-handler's PhysicalResourceId for a Create that names none: a digest of the
    stack and logical ids (so a rollback's Delete still reaches the delete function)."""
    digest = hashlib.md5(  # an identifier, not security
        (request.stack_id + request.logical_id).encode(), usedforsecurity=False
    )
    return digest.hexdigest()


def to_success(result: object, *, kind: str, request: Request) -> Success:
    """The Success a function's return value stands for.

    Raises:
        Failed: the value is a FAILED response (its Reason), or is no valid response at all
            (a reason that says what is wrong with it).
    """
    where = f"the {kind} handler"
    if not isinstance(result, Mapping):
        raise Failed(
            f"{where} returned {_type_name(result)}; it must return a dict like {_EXAMPLE}"
        )
    status = result.get("Status")
    reason = result.get("Reason")
    physical_id = result.get("PhysicalResourceId")
    if physical_id is not None and (not isinstance(physical_id, str) or not physical_id.strip()):
        raise Failed(
            f"{where} returned PhysicalResourceId {_shown(physical_id)}; it must be a non-empty "
            "string"
        )
    if isinstance(reason, str) and result.get("NoEcho") is True and result.get("Data"):
        reason = Redactor([result["Data"]]).text(reason)  # NoEcho Data: never in a reason
    if status == FAILED:
        if not isinstance(reason, str) or not reason.strip():
            raise Failed(f"{where} returned Status FAILED without a Reason")
        raise Failed(reason)
    if status != SUCCESS:
        what = "no Status" if "Status" not in result else f"Status {_shown(status)}"
        said = f" (its Reason: {reason})" if isinstance(reason, str) and reason.strip() else ""
        raise Failed(f'{where} returned {what}; Status must be "SUCCESS" or "FAILED"{said}')
    data = result.get("Data")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise Failed(f"{where} returned Data of type {type(data).__name__}; Data must be a dict")
    no_echo = result.get("NoEcho", False)
    if not isinstance(no_echo, bool):
        raise Failed(f"{where} returned NoEcho {_shown(no_echo)}; it must be True or False")
    return Success(
        physical_id=physical_id or request.physical_id or default_physical_id(request),
        data=json_value(data, what=f"the Data {where} returned"),
        no_echo=no_echo,
    )


def named_physical_id(result: object) -> str | None:
    """The PhysicalResourceId a response dict names, if it names a usable one."""
    if isinstance(result, Mapping):
        physical_id = result.get("PhysicalResourceId")
        if isinstance(physical_id, str) and physical_id.strip():
            return physical_id
    return None


def json_value(value: Any, *, what: str) -> Any:
    """``value`` as plain JSON, converted as cfn-lambda-handler serialised it: dates and times
    in ISO 8601, bytes decoded, any other object as its ``str()``.

    Raises:
        Failed: the value cannot be JSON at all (a non-string key, a cycle).
    """
    try:
        return json.loads(json.dumps(value, default=_plain))
    except (TypeError, ValueError) as exc:
        raise Failed(f"{what} cannot be sent as JSON: {exc}") from None


def _plain(value: object) -> object:
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _type_name(value: object) -> str:
    return "None" if value is None else f"a value of type {type(value).__name__}"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
