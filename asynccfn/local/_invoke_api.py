"""The Lambda Invoke API, as AWS SDKs call it with ``AWS_ENDPOINT_URL_LAMBDA``.

``POST /2015-03-31/functions/{FunctionName}/invocations`` with ``X-Amz-Invocation-Type``:

- ``RequestResponse`` (the default): 200 with the handler's result, or its error object and
  ``X-Amz-Function-Error: Unhandled``;
- ``Event``: 202 once the event is queued;
- ``DryRun``: 204.

Errors use Lambda's shape (``X-Amzn-ErrorType`` and a JSON body with ``Type`` and
``message``), so botocore raises the same exception classes it raises against Lambda.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from asynccfn.local._functions import function_arn, function_name_from
from asynccfn.local._records import InvocationType, InvokeResult
from asynccfn.local._runtime_api import MAX_PAYLOAD

__all__ = [
    "MAX_EVENT_PAYLOAD",
    "InvokeBackend",
    "InvokeError",
    "InvokeFault",
    "InvokeRequest",
    "error_response",
    "invoke_app",
]

MAX_EVENT_PAYLOAD = 256 * 1024
"""The asynchronous-invocation payload limit the service enforces (Lambda's long-standing one)."""

_ERROR_TYPES = {
    400: "InvalidRequestContentException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    413: "RequestEntityTooLargeException",
    429: "TooManyRequestsException",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class InvokeFault:
    """An error the Invoke API answers instead of invoking (fault injection for tests)."""

    status: int = 500
    error_type: str | None = None
    message: str = "injected fault"

    @property
    def type_name(self) -> str:
        """The exception name botocore will raise for this fault."""
        return self.error_type or _ERROR_TYPES.get(self.status, "ServiceException")


class InvokeError(Exception):
    """The service refuses an invocation; the Invoke API answers with this error."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(status, error_type, message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True, kw_only=True, slots=True)
class InvokeRequest:
    """One Invoke API call, as the service receives it."""

    function: str
    payload: bytes
    invocation_type: InvocationType
    trace_header: str | None = None
    client_context: str | None = None


class InvokeBackend(Protocol):
    """What the Invoke API needs from the service (``LambdaService`` is one)."""

    def take_fault(self, function: str) -> InvokeFault | None:
        """The fault to answer this call with, if one is planned."""

    def has_function(self, function: str) -> bool:
        """Whether ``function`` exists."""

    def note_api_call(self, function: str, invocation_type: str, status: int) -> None:
        """Remember one Invoke API call and the status it was answered with."""

    async def submit(self, request: InvokeRequest) -> InvokeResult:
        """Run or queue the invocation. Raises ``InvokeError`` to refuse it."""


_BACKEND: web.AppKey[InvokeBackend] = web.AppKey("backend")


def invoke_app(backend: InvokeBackend) -> web.Application:
    """The Invoke API application serving ``backend``'s functions."""
    app = web.Application(client_max_size=MAX_PAYLOAD + 1024)
    app[_BACKEND] = backend
    app.router.add_post("/2015-03-31/functions/{function}/invocations", _invoke)
    return app


def error_response(status: int, error_type: str, message: str) -> web.Response:
    """An error in the Invoke API's wire shape. Raises nothing."""
    kind = "Service" if status >= 500 else "User"
    return web.Response(
        status=status,
        body=json.dumps({"Type": kind, "message": message}),
        content_type="application/json",
        headers={"X-Amzn-ErrorType": error_type, "x-amzn-RequestId": str(uuid.uuid4())},
    )


async def _invoke(request: web.Request) -> web.StreamResponse:
    backend = request.app[_BACKEND]
    identifier = request.match_info["function"]
    name = function_name_from(identifier) or identifier
    raw_type = request.headers.get("X-Amz-Invocation-Type", str(InvocationType.REQUEST_RESPONSE))
    response = await _answer(backend, request, name, raw_type)
    backend.note_api_call(name, raw_type, response.status)
    return response


async def _answer(
    backend: InvokeBackend, request: web.Request, name: str, raw_type: str
) -> web.Response:
    fault = backend.take_fault(name)
    if fault is not None:
        return error_response(fault.status, fault.type_name, fault.message)
    if not backend.has_function(name):
        return error_response(404, _ERROR_TYPES[404], f"Function not found: {function_arn(name)}")
    try:
        invocation_type = InvocationType(raw_type)
    except ValueError:
        return error_response(400, "InvalidParameterValueException", "Unknown invocation type")
    payload = await request.read()
    limit = MAX_EVENT_PAYLOAD if invocation_type is InvocationType.EVENT else MAX_PAYLOAD
    if len(payload) > limit:
        return error_response(
            413, _ERROR_TYPES[413], f"{len(payload)} byte payload is over the {limit} byte limit"
        )
    if payload and not _is_json(payload):
        return error_response(400, _ERROR_TYPES[400], "Could not parse request body into json")
    call = InvokeRequest(
        function=name,
        payload=payload or b"{}",
        invocation_type=invocation_type,
        trace_header=request.headers.get("X-Amzn-Trace-Id"),
        client_context=_client_context(request.headers.get("X-Amz-Client-Context")),
    )
    try:
        result = await backend.submit(call)
    except InvokeError as exc:
        return error_response(exc.status, exc.error_type, exc.message)
    headers = {"x-amzn-RequestId": result.request_id, "X-Amz-Executed-Version": "$LATEST"}
    if result.function_error:
        headers["X-Amz-Function-Error"] = result.function_error
    return web.Response(
        status=result.status, body=result.body, headers=headers, content_type="application/json"
    )


def _is_json(payload: bytes) -> bool:
    try:
        json.loads(payload)
    except ValueError:
        return False
    return True


def _client_context(header: str | None) -> str | None:
    """The client context as the runtime receives it: decoded from the header's base64."""
    if not header:
        return None
    try:
        return base64.b64decode(header, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
