"""Drop-in compatibility with the ``cfn-lambda-handler`` package, on the durable runtime.

Change one import and a function written for that package runs on asynccfn::

    from asynccfn.compat.cfn_lambda_handler import Handler, CfnLambdaExecutionTimeout

    handler = Handler()                    # Lambda's handler setting: my_function.handler

    @handler.create
    def create(event, context):
        event["Timeout"] = 1800            # seconds for the whole operation (default 300)
        if context.get_remaining_time_in_millis() < 20000:
            raise CfnLambdaExecutionTimeout({"progress": 1})   # go on in a new invocation
        return {"Status": "SUCCESS", "PhysicalResourceId": "1234", "Data": {"Key": "value"}}

    @handler.poll
    def poll(event, context):              # event["EventState"] == {"progress": 1}
        return {"Status": "SUCCESS"}

Each call of a user function is a *round*, and each round is a step of the operation's
journal, so a new invocation replays the rounds before it instead of running them again::

    invocation 1   round 1: create(event)      -> dict: answer (through the runtime's outbox)
                     | CfnLambdaExecutionTimeout(state)
                     v
                   journal round 1 with ctx.state = what the event gained (EventState,
                   EventStatus, CreationTime, Timeout, keys the function set), then HandOver:
                   the runtime records the hand-over and invokes the function again
    invocation 2   replay round 1 (ctx.state restored) -> round 2: poll(event + ctx.state) ...

A round that answers SUCCESS is not journaled: the runtime's outbox records the response (and
NoEcho Data stays out of step records); a crash before that runs the round again, as it runs
a native handler's code outside its steps. A round cut off by the deadline runs again too.

Without a journal (no ``Handler(journal=...)`` and no ``ASYNCCFN_JOURNAL_TABLE``) the layer
works as the package did: the function invokes itself with the whole event, EventState and the
ResponseURL in the payload, and nothing protects the operation from crashes or duplicate
deliveries. It says so in one log line per container.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from .. import _logging
from .._context import Context
from .._continuation import invoke_event, split_handover
from .._entry import LambdaHandler, lambda_entry
from .._errors import ConfigurationError, ContinuationError, Continued, Failed, HandOver
from .._protocol import Request, RequestType
from .._resource import Resource
from .._result import Success
from .._runtime import Runtime
from .._threads import run_in_thread
from ._cfn_values import (
    LambdaContext,
    default_physical_id,
    json_value,
    named_physical_id,
    to_success,
)

__all__ = ["CfnLambdaExecutionTimeout", "Handler"]

DEFAULT_TIMEOUT = 300
"""Seconds an operation may take across invocations when no function sets ``Timeout``."""

POLL = "Poll"

log = logging.getLogger("asynccfn.handler")

F = TypeVar("F", bound=Callable[..., Any])

NOT_DURABLE = (
    "cfn-lambda-handler compatibility without a journal: not durable. The event (with its "
    "EventState and ResponseURL) is the only state; a crash or a duplicate delivery is not "
    "detected. Set Handler(journal=...) or ASYNCCFN_JOURNAL_TABLE to make it durable"
)

# The event this invocation received, without the hand-over token. The runtime parses it into
# a Request; cfn-lambda-handler functions get the event itself.
_incoming: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "asynccfn_cfn_lambda_handler_event"
)


_NO_STATE: Any = object()


class CfnLambdaExecutionTimeout(Exception):
    """Raise from a function to continue the operation in a new invocation: the ``poll``
    function then gets ``state`` (a JSON value; default ``{}``) as ``event["EventState"]``.

    An ``Exception``, as in cfn-lambda-handler, so that code written for it behaves the same.
    """

    def __init__(self, state: Any = _NO_STATE) -> None:
        self.state: Any = {} if state is _NO_STATE else state
        super().__init__(self.state)


class _Answered(BaseException):
    """A round's SUCCESS, carried out of its step unjournaled (the outbox records it)."""

    def __init__(self, success: Success) -> None:
        super().__init__(success)
        self.success = success


class Handler:
    """The Lambda handler of a cfn-lambda-handler function: decorate its functions with
    :meth:`create`, :meth:`update`, :meth:`delete` and :meth:`poll`, and point Lambda at the
    object itself (``my_function.handler``).

    ``journal`` names the DynamoDB journal table (default: the ``ASYNCCFN_JOURNAL_TABLE``
    environment variable); with neither, the layer is not durable (see the module's
    documentation). ``secure_attributes`` is accepted for compatibility: asynccfn never logs
    response Data.

    Raises:
        ConfigurationError: as :func:`asynccfn.lambda_entry`.
    """

    def __init__(
        self, journal: str | None = None, *, secure_attributes: Iterable[str] = ()
    ) -> None:
        self._functions: dict[str, Callable[..., Any]] = {}
        self._said_not_durable = False
        resource = Resource()
        resource.create(self._operation)
        resource.update(self._operation)
        resource.delete(self._operation)
        entry = lambda_entry(resource, journal=journal)
        assert isinstance(entry, LambdaHandler)
        self._entry = entry

    def __repr__(self) -> str:
        return f"Handler(functions=[{', '.join(self._functions)}], durable={self.durable})"

    @property
    def runtime(self) -> Runtime:
        """The runtime that runs the invocations (exposed for tests)."""
        return self._entry.runtime

    @property
    def durable(self) -> bool:
        """Whether operations are journaled (a journal table is configured)."""
        return bool(self._entry.runtime.journal.durable)

    # -- decorators ----------------------------------------------------------------------------

    def create(self, fn: F) -> F:
        """Decorator: the function for Create requests, ``fn(event, context) -> dict``
        (synchronous, run in a worker thread, or ``async def``).

        Raises:
            ConfigurationError: ``fn`` is not callable, or a Create function is already set.
        """
        return self._register(RequestType.CREATE.value, fn)

    def update(self, fn: F) -> F:
        """Decorator: the function for Update requests (raises as :meth:`create`)."""
        return self._register(RequestType.UPDATE.value, fn)

    def delete(self, fn: F) -> F:
        """Decorator: the function for Delete requests (raises as :meth:`create`)."""
        return self._register(RequestType.DELETE.value, fn)

    def poll(self, fn: F) -> F:
        """Decorator: the function for every invocation after a ``CfnLambdaExecutionTimeout``
        (raises as :meth:`create`)."""
        return self._register(POLL, fn)

    def _register(self, kind: str, fn: F) -> F:
        if not callable(fn):
            raise ConfigurationError(f"the {kind} handler must be a function, got {fn!r}")
        if kind in self._functions:
            raise ConfigurationError(f"{self!r} already has a {kind} handler")
        self._functions[kind] = fn
        return fn

    # -- the Lambda handler ----------------------------------------------------------------------

    def __call__(self, event: Any, context: Any) -> dict[str, str]:
        """Handle one invocation.

        Raises:
            JournalError, DeliveryError: only when Lambda's retry is the way to recover.
        """
        _logging.configure()
        if not self.durable and not self._said_not_durable:
            self._said_not_durable = True
            log.warning(NOT_DURABLE)
        incoming, _ = split_handover(event)
        token = _incoming.set(incoming if isinstance(incoming, Mapping) else {})
        try:
            return self._entry(event, context)
        finally:
            _incoming.reset(token)

    # -- one operation ---------------------------------------------------------------------------

    async def _operation(self, request: Request, ctx: Context) -> Success:
        """The asynccfn handler of every request: replay the rounds earlier invocations ran,
        then run the next one live."""
        incoming = _incoming.get(None)
        if incoming is None:
            raise Failed("the cfn-lambda-handler layer runs only through its Handler object")
        if request.request_type is RequestType.CREATE and ctx.physical_id is None:
            ctx.physical_id = default_physical_id(request)  # what a FAILED Create reports
        while True:
            polling = _event(incoming, ctx).get("EventStatus") == POLL
            kind = POLL if polling else request.request_type.value

            ran: list[str] = []

            async def round_(kind: str = kind, ran: list[str] = ran) -> None:
                ran.append(kind)  # the step body runs only live, never in replay
                await self._round(kind, incoming, request, ctx)

            try:
                await ctx.step(f"cfn-lambda-handler {kind.lower()}", round_)
            except _Answered as answered:
                return answered.success
            if not ran:
                continue  # an earlier invocation ran this round and handed on: go on
            if self.durable:
                raise HandOver(f"the {kind} handler raised CfnLambdaExecutionTimeout")
            await _continue_without_journal(ctx, _event(incoming, ctx))

    async def _round(
        self, kind: str, incoming: Mapping[str, Any], request: Request, ctx: Context
    ) -> None:
        """Call the function for ``kind`` once. It answers (``_Answered`` or ``Failed``), or
        records in ``ctx.state`` what the next invocation's event carries and returns."""
        event = _event(incoming, ctx)
        if "CreationTime" not in incoming and request.issued_at is not None:
            # When CloudFormation issued this attempt: a retried deployment (a new attempt)
            # starts its Timeout afresh, while the rounds it replays keep their state.
            event["CreationTime"] = int(request.issued_at)
        event.setdefault("CreationTime", int(time.time()))
        _check_timeout(event)
        fn = self._functions.get(kind)
        if fn is None:
            raise Failed(f"No handler defined for request type {kind}")
        context = LambdaContext(ctx.lambda_context, remaining=ctx.remaining)
        try:
            result = await _call(fn, event, context)
        except CfnLambdaExecutionTimeout as exc:
            log.info("the %s handler raised CfnLambdaExecutionTimeout: continuing", kind)
            event["EventState"] = exc.state
            event["EventStatus"] = POLL
            carried = {
                key: value
                for key, value in event.items()
                if key != "ResponseURL" and (key not in incoming or incoming[key] != value)
            }
            carried = json_value(carried, what="the event carried to the next invocation")
            ctx.state.clear()
            ctx.state.update(carried)
            return
        except Exception:
            log.exception("the %s handler raised", kind)
            raise
        named = named_physical_id(result)
        if named is not None and request.request_type is RequestType.CREATE:
            ctx.physical_id = named  # should the dict answer FAILED, the Create reports it
        raise _Answered(to_success(result, kind=kind, request=request))


def _event(incoming: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """A fresh copy of the event a round's function gets: the received event, updated with
    what earlier rounds left in ``ctx.state``."""
    return copy.deepcopy({**incoming, **ctx.state})


def _check_timeout(event: Mapping[str, Any]) -> None:
    """Raises Failed: the operation ran past ``event["Timeout"]`` (default 300 seconds)."""
    timeout = event.get("Timeout") or DEFAULT_TIMEOUT
    created = event["CreationTime"]
    for name, value in (("Timeout", timeout), ("CreationTime", created)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Failed(f"event[{name!r}] must be a number of seconds, got {value!r}")
    if time.time() > created + timeout:
        raise Failed(
            "The custom resource operation failed to complete within the user specified "
            f"timeout of {timeout:g} seconds"
        )


async def _call(fn: Callable[..., Any], event: dict[str, Any], context: LambdaContext) -> Any:
    """``fn(event, context)``: awaited if async, else in a worker thread the runtime counts."""
    if inspect.iscoroutinefunction(fn):
        return await fn(event, context)
    result = await run_in_thread(functools.partial(fn, event, context))
    if inspect.isawaitable(result):
        return await result
    return result


async def _continue_without_journal(ctx: Context, event: Mapping[str, Any]) -> None:
    """Invoke the function again with ``event`` as the payload, as cfn-lambda-handler did.

    Raises:
        Continued: always, once Lambda accepted the invocation (the next one answers).
        Failed: Lambda did not accept it.
    """
    client = await ctx.client("lambda")
    arn = ctx.lambda_context.invoked_function_arn
    asking = asyncio.ensure_future(invoke_event(client, arn, event))
    try:
        try:
            await asyncio.shield(asking)
        except asyncio.CancelledError:
            # The soft deadline came while Lambda was being asked. The runtime waits for the
            # handler until its hard deadline: learn the answer rather than leave it unknown.
            await asking
    except ContinuationError as exc:
        raise Failed(f"could not continue in a new invocation: {exc}") from exc
    log.info("continuing in a new invocation, the state in its payload (not durable)")
    raise Continued("the function was invoked again with the event's state")
