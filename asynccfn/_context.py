"""Context: the user API a handler receives. It names things and hands off to the executor."""

from __future__ import annotations

import datetime
import functools
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._aws import call_encoder, is_transient_aws_error, prepare_call
from ._errors import ConfigurationError
from ._redact import keep_secret
from ._response import physical_id_problem
from ._retry import RetryPolicy
from ._threads import run_in_thread
from ._traceback import definition_site
from .journal._schema import StepKind

if TYPE_CHECKING:
    from ._clients import ClientPool
    from ._execution import Progress
    from ._protocol import Request
    from ._steps import Executor

# ctx.call's longer horizon over botocore's own retries: flat 5 s for up to 2 minutes.
CALL_RETRY = RetryPolicy(
    max_attempts=25,
    initial_delay=5.0,
    backoff=1.0,
    max_delay=5.0,
    jitter=0.0,
    retry_on=is_transient_aws_error,
)


class _HandlerLogger(logging.LoggerAdapter[logging.Logger]):
    """The handler's logger: quiet while the handler replays what it already logged. It reads
    the replay flag from the executor's progress, not from the Context that holds it: a cycle
    would keep every operation's objects for the collector instead of freeing them as the
    operation ends."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.getLogger("asynccfn.handler"), {})
        self._progress = progress

    def isEnabledFor(self, level: int) -> bool:
        return not self._progress.replaying and self.logger.isEnabledFor(level)


class Context:
    """What a handler gets besides the request: durable steps, state, time and clients.

    Durable actions (``step``, ``call``, ``wait_until``, ``sleep``, ``now``, ``uuid``) take
    positions in program order; replay hands back their journaled results. Run concurrent
    steps with :meth:`parallel` only.
    """

    def __init__(
        self,
        *,
        request: Request,
        executor: Executor,
        clients: ClientPool,
        invocation: int,
        lambda_context: Any = None,
    ) -> None:
        self.request = request
        self.lambda_context = lambda_context  # Lambda's own context object for this invocation
        self.invocation = invocation
        self._executor = executor
        self._clients = clients
        self.logger: logging.LoggerAdapter[logging.Logger] = _HandlerLogger(executor.progress)

    @property
    def physical_id(self) -> str | None:
        """The resource's physical id as the handler set it (a failed Create reports it). It
        is journaled before the next live step, so an answer written by another invocation
        (after a crash) reports it too."""
        return self._executor.progress.physical_id

    @physical_id.setter
    def physical_id(self, value: str | None) -> None:
        """Raises ValueError for a value no response can report (not a non-empty string of
        at most 1 KB of valid text): raised here, it fails the operation with that reason
        instead of a journal write DynamoDB refuses."""
        if value is not None:
            problem = physical_id_problem(value)
            if problem is not None:
                raise ValueError(f"ctx.physical_id cannot be set: {problem}")
        self._executor.progress.physical_id = value

    @property
    def state(self) -> dict[str, Any]:
        """The operation's EventState: a JSON object carried across invocations."""
        return self._executor.progress.state

    @property
    def remaining(self) -> float:
        """Seconds of work left in this invocation (until the soft deadline)."""
        return self._executor.x.deadlines.remaining()

    @property
    def is_replaying(self) -> bool:
        """True while the handler is being fed journaled results."""
        return self._executor.progress.replaying

    async def step(
        self,
        name: str,
        fn: Callable[..., Any],
        /,
        *args: Any,
        retry: RetryPolicy | None = None,
        at_most_once: bool = False,
        needs: float | None = None,
        sensitive: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` (async, or sync in a worker thread) once for this
        operation and return its JSON result; later invocations get the journaled value.

        ``sensitive=True`` marks the result secret: masked in every view of the journal and
        encrypted in it by ``lambda_entry(codec=...)``, which a durable function then needs.
        Its error keeps its type and AWS error code, never its message (which may repeat the
        secret): it is raised, journaled and answered as "the message is withheld".

        Raises:
            the function's exception (live, or rebuilt from the journal on replay);
            StepInterrupted; NonDeterminismError; ConcurrentStepError; PayloadTooLarge;
            CodecError (the codec could not encrypt or decrypt the result);
            ConfigurationError (``needs`` beyond what an invocation can give, or a sensitive
            step in a journaled function without a codec).
        """
        return await self._executor.step(
            StepKind.STEP,
            name,
            _bind(fn, args, kwargs),
            retry=retry,
            at_most_once=at_most_once,
            needs=needs,
            sensitive=sensitive,
        )

    async def call(
        self,
        action: str,
        method: Callable[..., Awaitable[Any]],
        /,
        *,
        retry: RetryPolicy | None = CALL_RETRY,
        **request: Any,
    ) -> Any:
        """One AWS API call as a step named by its IAM action (``"s3:CreateBucket"``).

        Throttling and 5xx are retried over two minutes with durable delays. Members the
        service model marks ``sensitive`` are not journaled: the live call returns them,
        replay returns None in their place. The values of the request's ``sensitive``
        members never appear in the error the call raises (botocore's ParamValidationError
        names the parameter only), so neither in the FAILED reason, the journal nor a log;
        those of the request and of the live response are masked in whatever the invocation
        logs, journals or answers from then on. ``idempotencyToken`` members are derived
        from the operation and the step's position, so a re-run after a crash cannot create a
        second resource.

        Raises:
            botocore's ClientError (rebuilt from the journal on replay), and as :meth:`step`.
        """
        if ":" not in action:
            raise ConfigurationError(
                f"ctx.call needs an IAM action like 's3:CreateBucket', got {action!r}"
            )
        x = self._executor.x
        seed = f"{x.op_id}/{self._executor.next_position()}"
        prepared = prepare_call(method, request, seed=seed)
        keep_secret(prepared.secrets)  # masked in the invocation's text from here on

        async def body() -> Any:
            try:
                return await method(**prepared.request)
            except Exception as exc:
                masked = prepared.redactor.error(exc)
                if masked is exc:
                    raise
            # Raised outside the except block and from None, so that no traceback or chain
            # can print the original, whose message may repeat a sensitive value.
            raise masked from None

        return await self._executor.step(
            StepKind.CALL,
            action,
            body,
            retry=retry,
            encode=call_encoder(prepared),
            live=call_encoder(prepared, redact=False),
        )

    async def wait_until(
        self,
        name: str,
        predicate: Callable[..., Any],
        /,
        *args: Any,
        interval: float,
        timeout: float,  # noqa: ASYNC109 - the poll horizon, not a call timeout
        max_attempts: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Poll ``predicate(*args, **kwargs)`` every ``interval`` seconds until it returns a
        truthy value, and return that value. The wait is one journal record.

        Raises:
            WaitTimeout: ``timeout`` seconds or ``max_attempts`` polls passed.
            the predicate's exception (it fails the wait).
        """
        return await self._executor.wait_until(
            name,
            _bind(predicate, args, kwargs),
            interval=interval,
            timeout=timeout,
            max_attempts=max_attempts,
        )

    async def sleep(self, seconds: float, name: str | None = None) -> None:
        """A durable sleep; it takes a position like a step."""
        await self._executor.sleep(seconds, name or f"sleep {seconds:g}s")

    async def parallel(self, *branches: Awaitable[Any]) -> list[Any]:
        """Await ``branches`` concurrently, each in its own step scope; results in order.

        Raises:
            ConfigurationError: a branch is not awaitable (a function passed uncalled).
        """
        for i, branch in enumerate(branches):
            if not inspect.isawaitable(branch):
                raise ConfigurationError(parallel_misuse(i, branch))
        return await self._executor.parallel(*branches)

    async def now(self) -> datetime.datetime:
        """The current UTC time, journaled: replay sees the first run's value."""

        async def read() -> str:
            return datetime.datetime.now(datetime.UTC).isoformat()

        return datetime.datetime.fromisoformat(await self._executor.step(StepKind.NOW, "now", read))

    async def uuid(self) -> uuid.UUID:
        """A random UUID, journaled: replay sees the first run's value."""

        async def make() -> str:
            return str(uuid.uuid4())

        return uuid.UUID(await self._executor.step(StepKind.UUID, "uuid", make))

    async def client(self, service: str, **config: Any) -> Any:
        """A shared aiobotocore client for ``service``, kept across warm invocations."""
        return await self._clients.get(service, **config)


def _bind(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Callable[[], Awaitable[Any]]:
    """``fn`` applied, as a coroutine function: async functions awaited, sync ones run in a
    worker thread (which the deadline cannot stop: see the runtime)."""
    if inspect.iscoroutinefunction(fn):

        async def run_async() -> Any:
            return await fn(*args, **kwargs)

        return run_async

    async def run_sync() -> Any:
        result = await run_in_thread(functools.partial(fn, *args, **kwargs))
        if inspect.isawaitable(result):
            return await result
        return result

    return run_sync


def parallel_misuse(index: int, branch: object) -> str:
    """What ``ctx.parallel`` says of a branch that cannot be awaited: usually a function
    passed where its call was meant."""
    if callable(branch):
        name = getattr(branch, "__qualname__", None) or repr(branch)
        return (
            f"ctx.parallel takes awaitables, and branch {index + 1} is the function {name} "
            f"({definition_site(branch)}): pass its call, ctx.parallel({name}(...), ...), or "
            f'a step, ctx.parallel(ctx.step("name", {name}, ...), ...)'
        )
    return (
        f"ctx.parallel takes awaitables (coroutines such as ctx.step(...) calls), and branch "
        f"{index + 1} is a {type(branch).__name__}"
    )
