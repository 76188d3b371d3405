"""What an invocation answers: the responses for a handler's result or failure, Lambda's
on-failure record, and the built-in handlers for requests no user code should see."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ._errors import Failed
from ._protocol import Request, RequestType, Response, Status, failure_physical_id
from ._redact import masked, message_of
from ._result import Success
from ._traceback import definition_site, raising_location
from .journal._schema import operation_id

if TYPE_CHECKING:
    from ._context import Context
    from ._resource import Handler, Resource

log = logging.getLogger("asynccfn.runtime")


class InvocationResult(NamedTuple):
    """What one invocation did, for the entry point (and tests)."""

    outcome: str
    exit_process: bool = False


def op_id_for(request: Request) -> str:
    """The journal's operation id of ``request``."""
    return operation_id(request.stack_id, request.logical_id, request.request_id)


# A record of a record of ... an event: deeper than this is not Lambda's doing.
_MAX_RECORD_DEPTH = 8


def lambda_failure_record(event: object) -> Mapping[str, Any] | None:
    """Lambda's on-failure destination record for an event it gave up on, if this is one.

    When the function is its own destination, an invocation on a record can fail too (the
    operation's lease outlived the record's retries, the journal was unreachable): Lambda then
    sends a record of that record. The innermost record is returned, the one whose payload is
    the event itself, so that however many times the answering failed, the stack is answered.
    """
    record: Mapping[str, Any] | None = None
    for _ in range(_MAX_RECORD_DEPTH):
        if not (
            isinstance(event, Mapping)
            and isinstance(event.get("requestContext"), Mapping)
            and "condition" in event["requestContext"]
            and isinstance(event.get("requestPayload"), Mapping)
        ):
            break
        record, event = event, event["requestPayload"]
    return record


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


# The error's own text is cut to this many characters, so that where it was raised and the log
# stream still fit the Reason's budget (the whole body is at most 4096 bytes).
_MESSAGE_BUDGET = 2048


def failure_reason(exc: BaseException, lambda_context: Any) -> str:
    """FAILED's reason for an exception that ended the handler: ``Type: message``, then the
    user's file and line it was raised at, then the log stream holding its traceback. A
    :class:`Failed` is expected: its reason alone."""
    if isinstance(exc, Failed):
        return exc.reason
    # Masked before it is cut: a secret cut in two is a secret no longer recognised.
    text = masked(f"{type(exc).__name__}: {message_of(exc)}")
    if len(text) > _MESSAGE_BUDGET:
        text = text[: _MESSAGE_BUDGET - 1] + "…"
    location = raising_location(exc)
    if location is not None:
        text += f" ({location})"
    stream = getattr(lambda_context, "log_stream_name", None)
    return text + (f" (see CloudWatch log stream {stream})" if stream else "")


def failed_response(request: Request, physical_id: str | None, reason: str) -> Response:
    """FAILED for ``reason``, reporting the physical id invariant 12 asks for; ``physical_id``
    is what the handler set (``ctx.physical_id``), if anything."""
    return Response(
        status=Status.FAILED,
        physical_id=failure_physical_id(request, physical_id),
        reason=reason,
    )


def returned_none(handler: Handler, request: Request) -> None:
    """Log that ``handler`` returned None: SUCCESS with an empty Data and a generated (or
    the request's) physical id is rarely what a handler meant; usually a ``return`` is
    missing. ``asynccfn.testing`` fails a run on this line (``returned_none`` in the record)."""
    user = getattr(handler, "__wrapped__", handler)
    name = getattr(user, "__qualname__", repr(user))
    log.warning(
        "the %s handler %s (%s) returned None, answered as SUCCESS with no Data: return "
        "asynccfn.Success(...) (is a 'return' missing?)",
        request.request_type.value,
        name,
        definition_site(user),
        extra={"returned_none": name},
    )


def success_response(
    request: Request, ctx: Context, result: Any, *, handler: Handler | None = None
) -> Response:
    if result is None:
        if handler is not None:
            returned_none(handler, request)
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


def replacement_for(resource: Resource, request: Request) -> Handler | None:
    """The handler of an Update that ``resource`` answers by a replacement (it declared
    ``update="replace"`` and has a Create handler), or None."""
    create = resource.handler_for(RequestType.CREATE)
    if (
        request.request_type is RequestType.UPDATE
        and resource.update_policy == "replace"
        and create is not None
        and resource.resource_type in (None, request.resource_type)
    ):
        return replacing_handler(create)
    return None


def replacing_handler(create: Handler) -> Handler:
    """An Update answered by ``create``: the Create handler builds a replacement under a new
    physical id (so CloudFormation deletes the old resource once the stack's update is done).
    It sees the Update's request (``request.physical_id`` is the old id); ``ctx.physical_id``
    starts empty, and a replacement that names none gets a generated one, never the old id."""

    async def replace(request: Request, ctx: Context) -> Success | None:
        if ctx.physical_id == request.physical_id:  # not one the replacement recorded already
            ctx.physical_id = None
        result = await create(request, ctx)
        if result is None:
            returned_none(create, request)
            result = Success()
        if isinstance(result, Success) and not result.physical_id and not ctx.physical_id:
            generated = f"{request.logical_id}-{request.request_id}"
            result = dataclasses.replace(result, physical_id=generated)
        return result

    replace.__wrapped__ = create  # type: ignore[attr-defined]
    return replace


def refusing_handler(resource: Resource, request: Request) -> Handler:
    """A handler that answers FAILED saying why ``resource`` cannot serve ``request``."""
    if resource.resource_type not in (None, request.resource_type):
        why = f"this function serves {resource.resource_type}, not {request.resource_type}"
    else:
        why = f"the resource has no {request.request_type.value} handler"

    async def refuse(request: Request, ctx: Context) -> Success:
        raise Failed(why)

    return refuse
