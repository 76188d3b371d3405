"""What an invocation answers: the responses for a handler's result or failure, Lambda's
on-failure record, and the built-in handlers for requests no user code should see."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import Failed
from ._protocol import Request, Response, Status, failure_physical_id
from ._result import Success
from .journal.models import operation_id

if TYPE_CHECKING:
    from ._context import Context
    from ._resource import Handler, Resource


@dataclass(frozen=True, kw_only=True, slots=True)
class InvocationResult:
    """What one invocation did, for the entry point (and tests)."""

    outcome: str
    exit_process: bool = False


def op_id_for(request: Request) -> str:
    """The journal's operation id of ``request``."""
    return operation_id(request.stack_id, request.logical_id, request.request_id)


def lambda_failure_record(event: object) -> Mapping[str, Any] | None:
    """Lambda's on-failure destination record for an event it gave up on, if this is one."""
    if (
        isinstance(event, Mapping)
        and isinstance(event.get("requestContext"), Mapping)
        and "condition" in event["requestContext"]
        and isinstance(event.get("requestPayload"), Mapping)
    ):
        return event
    return None


def gave_up_reason(record: Mapping[str, Any]) -> str:
    """FAILED's reason for Lambda's on-failure record: the condition, how many attempts
    Lambda made, and the error it reported for the last one."""
    context = record["requestContext"]
    reason = f"Lambda gave up on the operation ({context.get('condition', '?')})"
    attempts = context.get("approximateInvokeCount")
    if attempts == 0:
        reason += " before any attempt ran"
    elif isinstance(attempts, int) and not isinstance(attempts, bool):
        reason += f" after {attempts} attempt{'' if attempts == 1 else 's'}"
    error = record.get("responsePayload")
    if isinstance(error, Mapping) and (error.get("errorType") or error.get("errorMessage")):
        what = f"{error.get('errorType')}: {error.get('errorMessage')}"
        reason += f"; the last one failed with {what}"
    return reason


def failure_reason(exc: BaseException, lambda_context: Any) -> str:
    if isinstance(exc, Failed):
        return exc.reason
    stream = getattr(lambda_context, "log_stream_name", None)
    where = f" (see CloudWatch log stream {stream})" if stream else ""
    return f"{type(exc).__name__}: {exc}{where}"


def failed_response(request: Request, physical_id: str | None, reason: str) -> Response:
    """FAILED for ``reason``, reporting the physical id invariant 12 asks for; ``physical_id``
    is what the handler set (``ctx.physical_id``), if anything."""
    return Response(
        status=Status.FAILED,
        physical_id=failure_physical_id(request, physical_id),
        reason=reason,
    )


def success_response(request: Request, ctx: Context, result: Any) -> Response:
    if result is None:
        result = Success()
    if not isinstance(result, Success):
        return failed_response(
            request,
            ctx.physical_id,
            f"the handler returned {type(result).__name__}; it must return asynccfn.Success "
            "or raise",
        )
    physical_id = (
        result.physical_id
        or ctx.physical_id
        or request.physical_id
        or f"{request.logical_id}-{request.request_id}"
    )
    return Response(
        status=Status.SUCCESS,
        physical_id=physical_id,
        data=result.data,
        no_echo=result.no_echo,
    )


async def nothing_was_created(request: Request, ctx: Context) -> Success:
    """Delete of a resource whose Create failed before it existed, or with no handler."""
    return Success(physical_id=request.physical_id)


def refusing_handler(resource: Resource, request: Request) -> Handler:
    """A handler that answers FAILED saying why ``resource`` cannot serve ``request``."""
    if resource.resource_type not in (None, request.resource_type):
        why = f"this function serves {resource.resource_type}, not {request.resource_type}"
    else:
        why = f"the resource has no {request.request_type.value} handler"

    async def refuse(request: Request, ctx: Context) -> Success:
        raise Failed(why)

    return refuse
