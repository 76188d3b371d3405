"""What ``ctx.call`` learns from botocore's service model: idempotency tokens to derive,
sensitive members to keep out of the journal and out of error text, and which errors are
transient."""

from __future__ import annotations

import base64
import datetime
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ._redact import Redactor, keep_secret

_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


def _error(exc: BaseException) -> Mapping[str, Any]:
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    return error if isinstance(error, dict) else {}


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (any error carrying its ``response``)."""
    code = _error(exc).get("Code")
    return str(code) if code else None


def error_message(exc: BaseException) -> str:
    """The AWS error message of a botocore ``ClientError``, on one line ("" when it has none)."""
    return " ".join(str(_error(exc).get("Message") or "").split())


def is_transient_aws_error(exc: BaseException) -> bool:
    """Throttling or a server-side (5xx) error: worth retrying over a longer horizon."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(exc) in _TRANSIENT_CODES or int(status or 0) >= 500


class PreparedCall(NamedTuple):
    request: Mapping[str, Any]
    output_shape: Any  # botocore Shape of the response, or None
    redactor: Redactor = Redactor()  # masks sensitive values in errors
    secrets: tuple[Any, ...] = ()  # the values of the request's sensitive members


def prepare_call(
    method: Callable[..., Any], request: Mapping[str, Any], *, seed: str
) -> PreparedCall:
    """Fill the operation's ``idempotencyToken`` members the caller left out with values
    derived from ``seed`` (operation and step position), so re-runs reuse them, and learn
    the values of its ``sensitive`` members (at any depth) for the call's error text."""
    operation = _operation_model(method)
    if operation is None:
        return PreparedCall(request=dict(request), output_shape=None)
    filled = dict(request)
    input_shape = operation.input_shape
    secrets: list[Any] = []
    if input_shape is not None:
        for name, member in input_shape.members.items():
            if member.metadata.get("idempotencyToken") and name not in filled:
                filled[name] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"asynccfn:{seed}:{name}"))
        _sensitive_values(filled, input_shape, secrets)
    return PreparedCall(
        request=filled,
        output_shape=operation.output_shape,
        redactor=Redactor(secrets),
        secrets=tuple(secrets),
    )


def _sensitive_values(value: Any, shape: Any, found: list[Any]) -> None:
    """Collect the parts of a request or response that sit where the model marks a shape
    ``sensitive``, whatever their type (a dict given where a secret string was meant is a
    secret too)."""
    if shape is None:
        return
    if shape.metadata.get("sensitive"):
        found.append(value)
        return
    if isinstance(value, Mapping):
        members = getattr(shape, "members", None)
        value_shape = getattr(shape, "value", None)
        for key, item in value.items():
            _sensitive_values(item, members.get(key) if members else value_shape, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _sensitive_values(item, getattr(shape, "member", None), found)


def call_encoder(prepared: PreparedCall, *, redact: bool = True) -> Callable[[Any], Any]:
    """A response as JSON-safe data without ResponseMetadata: how it is journaled (sensitive
    members as None) or, with ``redact=False``, how the live call sees it, its sensitive
    members then masked in the invocation's text from here on (replay has none to mask: the
    journal withholds them)."""

    def encode(response: Any) -> Any:
        if isinstance(response, Mapping):
            response = {k: v for k, v in response.items() if k != "ResponseMetadata"}
        if not redact:
            secrets: list[Any] = []
            _sensitive_values(response, prepared.output_shape, secrets)
            keep_secret(secrets)
        return _jsonable(response, prepared.output_shape, redact)

    return encode


def _operation_model(method: Callable[..., Any]) -> Any:
    client = getattr(method, "__self__", None)
    meta = getattr(client, "meta", None)
    if meta is None:
        return None
    api_name = meta.method_to_api_mapping.get(getattr(method, "__name__", ""))
    if api_name is None:
        return None
    return meta.service_model.operation_model(api_name)


def _jsonable(value: Any, shape: Any, redact: bool) -> Any:
    if redact and shape is not None and shape.metadata.get("sensitive"):
        return None
    if isinstance(value, Mapping):
        members = getattr(shape, "members", None) or {}
        value_shape = getattr(shape, "value", None)
        return {
            str(k): _jsonable(v, members.get(k) if members else value_shape, redact)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v, getattr(shape, "member", None), redact) for v in value]
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__name__} in an AWS response cannot be journaled")
