"""What the local Lambda service reports: invocation records, invoke results, on-failure records."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "ApiCall",
    "FailureCondition",
    "InvocationRecord",
    "InvocationType",
    "InvokeResult",
    "Outcome",
    "decode_payload",
    "on_failure_record",
]


class InvocationType(StrEnum):
    """The Invoke API's ``X-Amz-Invocation-Type``."""

    REQUEST_RESPONSE = "RequestResponse"
    EVENT = "Event"
    DRY_RUN = "DryRun"


class Outcome(StrEnum):
    """How one attempt of an invocation ended."""

    SUCCESS = "success"
    ERROR = "error"  # the handler raised, or the runtime failed to start it
    TIMEOUT = "timeout"  # still running at its deadline: the worker was killed
    CRASHED = "crashed"  # the worker process died during the attempt
    DROPPED = "dropped"  # an event older than max_event_age, never run again
    RECURSION_CUT = "recursion-cut"  # an event past the recursive-loop limit, never run


class FailureCondition(StrEnum):
    """``requestContext.condition`` of an on-failure record."""

    RETRIES_EXHAUSTED = "RetriesExhausted"
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"
    # Lambda sends a cut recursive event to the on-failure destination; this condition name
    # is the local service's own label for it.
    RECURSIVE_INVOCATION = "RecursiveInvocationDetected"


@dataclass(frozen=True, kw_only=True, slots=True)
class InvocationRecord:
    """One attempt of one invocation, or one event the service refused to run.

    ``payload`` and ``result`` are decoded JSON (raw text when the bytes are not JSON);
    ``error`` is the runtime's error object (``errorType``, ``errorMessage``, ...).
    ``started`` and ``ended`` are wall-clock seconds; ``started`` is when the attempt began
    to look for a worker, so a cold start counts. ``hops`` is the invocation's place in its
    chain of invocations (1 for one started from outside a function).
    """

    function: str
    request_id: str
    attempt: int
    invocation_type: InvocationType
    payload: Any
    started: float
    ended: float
    outcome: Outcome
    error: Mapping[str, Any] | None = None
    result: Any = None
    hops: int = 1
    worker_pid: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class InvokeResult:
    """The answer to one invocation through :meth:`LambdaService.invoke`.

    ``status`` is the Invoke API's status code (200, 202, 204); ``body`` is the response
    payload (the handler's result or its error object) and ``function_error`` is
    ``"Unhandled"`` when the handler failed.
    """

    status: int
    request_id: str
    body: bytes = b""
    function_error: str | None = None

    @property
    def payload(self) -> Any:
        """The body decoded as JSON, ``None`` when empty. Raises nothing."""
        return decode_payload(self.body)


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiCall:
    """One call of the Invoke API over HTTP, including those a fault answered."""

    function: str
    invocation_type: str
    status: int
    at: float


def decode_payload(body: bytes) -> Any:
    """Decode a payload as JSON; ``None`` when empty, the text when not JSON. Raises nothing."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def on_failure_record(
    *,
    request_id: str,
    function_arn: str,
    condition: FailureCondition,
    invoke_count: int,
    request_payload: Any,
    response_payload: Any | None,
) -> dict[str, Any]:
    """The record Lambda sends an on-failure destination for a discarded event.

    ``response_payload`` is the last attempt's error object, ``None`` when no attempt ran
    (the response context is then left out). Raises nothing.
    """
    now = datetime.now(UTC)
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": str(condition),
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": request_payload,
    }
    if invoke_count > 0:
        record["responseContext"] = {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        }
        record["responsePayload"] = response_payload
    return record
