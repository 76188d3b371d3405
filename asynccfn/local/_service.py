"""The local Lambda service's core: functions, invocations, attempts, retries (see
:mod:`asynccfn.local.lambda_service` for what it emulates)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from asynccfn.local._env import LOOPBACK, LocalServerError, bound_socket
from asynccfn.local._functions import FunctionConfig, RecursiveLoop, function_arn
from asynccfn.local._invoke_api import InvokeError, InvokeFault, InvokeRequest, invoke_app
from asynccfn.local._ledger import Ledger
from asynccfn.local._lineage import MAX_HOPS, Lineage
from asynccfn.local._pool import WorkerPool
from asynccfn.local._records import (
    ApiCall,
    FailureCondition,
    InvocationRecord,
    InvocationType,
    InvokeResult,
    Outcome,
    decode_payload,
    on_failure_record,
)
from asynccfn.local._runtime_api import runtime_app
from asynccfn.local._workers import Assignment, AttemptEnd, Worker

__all__ = ["LambdaService"]

_log = logging.getLogger("asynccfn.local")


@dataclass(eq=False, kw_only=True)
class _Event:
    """One invocation request, through all its attempts."""

    config: FunctionConfig
    request_id: str
    payload: bytes
    invocation_type: InvocationType
    lineage: Lineage
    received: float
    client_context: str | None


class LambdaService:
    """The local Lambda service on one event loop (see the module docstring).

    ``python`` runs the workers; ``init_timeout`` bounds a worker's start up to its first
    ``/next`` (Lambda's init phase); ``echo`` copies every line the workers print to
    ``sys.stderr``, prefixed with the function name and worker pid; ``max_hops`` is where a
    recursive chain is cut.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        python: str = sys.executable,
        init_timeout: float = 10.0,
        echo: bool = False,
        max_hops: int = MAX_HOPS,
    ) -> None:
        self._port = port
        self._python = python
        self._init_timeout = init_timeout
        self._echo = echo
        self._max_hops = max_hops
        self._functions: dict[str, FunctionConfig] = {}
        self._pool: WorkerPool | None = None
        self._ledger = Ledger()  # what other threads read: records, output, faults
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._idle: asyncio.Event | None = None
        self._invoke_runner: web.AppRunner | None = None
        self._runtime_runner: web.AppRunner | None = None
        self._endpoint: str | None = None
        self._stopping = False

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> str:
        """Serve the Invoke API and the Runtime API; return the Invoke API's endpoint URL.

        Raises ``OSError`` when the port cannot be bound.
        """
        if self._endpoint is not None:
            return self._endpoint
        self._idle = asyncio.Event()
        self._idle.set()
        self._runtime_runner = web.AppRunner(
            runtime_app(self._worker_on_port), access_log=None, shutdown_timeout=1.0
        )
        await self._runtime_runner.setup()
        self._invoke_runner = web.AppRunner(invoke_app(self), access_log=None, shutdown_timeout=1.0)
        await self._invoke_runner.setup()
        if self._port:
            site: web.BaseSite = web.TCPSite(self._invoke_runner, LOOPBACK, self._port)
            port = self._port
        else:
            sock = bound_socket()
            port = sock.getsockname()[1]
            site = web.SockSite(self._invoke_runner, sock)
        await site.start()
        self._endpoint = f"http://{LOOPBACK}:{port}"
        self._pool = WorkerPool(
            self._runtime_runner,
            python=self._python,
            lambda_endpoint=self._endpoint,
            on_output=self._on_output,
        )
        for config in self._functions.values():
            self._pool.add_function(config)
        return self._endpoint

    def _worker_on_port(self, port: int) -> Worker | None:
        return self._pool.on_port(port) if self._pool is not None else None

    @property
    def endpoint_url(self) -> str:
        """The Invoke API's URL (for ``AWS_ENDPOINT_URL_LAMBDA``). Raises ``LocalServerError``
        before ``start()``."""
        if self._endpoint is None:
            raise LocalServerError("the Lambda service is not running: call start() first")
        return self._endpoint

    async def stop(self) -> None:
        """Stop serving, cancel queued and retrying events, and kill every worker process.

        Returns once every child process is reaped. Raises nothing.
        """
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
        if self._invoke_runner is not None:
            await self._invoke_runner.cleanup()
        if self._pool is not None:
            await self._pool.close()  # any started by a request that was in flight
        if self._runtime_runner is not None:
            await self._runtime_runner.cleanup()
        self._endpoint = None

    # -- functions ----------------------------------------------------------------------------

    def add_function(self, config: FunctionConfig) -> None:
        """Register a function. Raises ``ValueError`` if one of that name exists."""
        if config.name in self._functions:
            raise ValueError(f"function {config.name!r} already exists")
        self._functions[config.name] = config
        self._ledger.add_function(config.name)
        if self._pool is not None:
            self._pool.add_function(config)

    def has_function(self, function: str) -> bool:
        """Whether ``function`` is registered. Raises nothing."""
        return function in self._functions

    def function(self, name: str) -> FunctionConfig:
        """The configuration of ``name``. Raises ``KeyError`` for an unknown function."""
        return self._functions[name]

    # -- invoking -----------------------------------------------------------------------------

    async def invoke(
        self,
        name: str,
        payload: Any = None,
        *,
        invocation_type: InvocationType | str = InvocationType.REQUEST_RESPONSE,
        trace_header: str | None = None,
    ) -> InvokeResult:
        """Invoke ``name`` directly, as the Invoke API would (no faults are injected here).

        ``payload`` is JSON-encoded unless it is ``bytes``. A ``RequestResponse`` call returns
        once the attempt ended; an ``Event`` call returns once the event is queued. Raises
        ``InvokeError`` (status 404) for an unknown function, ``LocalServerError`` once the
        service is stopping.
        """
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return await self.submit(
            InvokeRequest(
                function=name,
                payload=body,
                invocation_type=InvocationType(invocation_type),
                trace_header=trace_header,
            )
        )

    async def submit(self, request: InvokeRequest) -> InvokeResult:
        """Run or queue one invocation (the Invoke API's entry point).

        Raises ``InvokeError`` for an unknown function or a cut synchronous recursive call,
        ``LocalServerError`` once the service is stopping.
        """
        config = self._functions.get(request.function)
        if config is None:
            message = f"Function not found: {function_arn(request.function)}"
            raise InvokeError(404, "ResourceNotFoundException", message)
        request_id = str(uuid.uuid4())
        if request.invocation_type is InvocationType.DRY_RUN:
            return InvokeResult(status=204, request_id=request_id)
        event = _Event(
            config=config,
            request_id=request_id,
            payload=request.payload,
            invocation_type=request.invocation_type,
            lineage=Lineage.after(request.trace_header),
            received=time.time(),
            client_context=request.client_context,
        )
        looping = event.lineage.hops > self._max_hops
        if looping and config.recursive_loop is RecursiveLoop.TERMINATE:
            return self._cut(event)
        if event.invocation_type is InvocationType.EVENT:
            self._spawn(self._run_event(event))
            return InvokeResult(status=202, request_id=request_id)
        with self._busy():
            end = await self._attempt(event, 1)
        failed = end.outcome is not Outcome.SUCCESS
        return InvokeResult(
            status=200,
            request_id=request_id,
            body=end.body,
            function_error="Unhandled" if failed else None,
        )

    def _cut(self, event: _Event) -> InvokeResult:
        now = time.time()
        self._add_record(event, 1, now, now, Outcome.RECURSION_CUT)
        if event.invocation_type is not InvocationType.EVENT:
            raise InvokeError(
                400,
                "RecursiveInvocationException",
                f"{event.config.name} was stopped in a recursive loop",
            )
        self._spawn(self._send_on_failure(event, FailureCondition.RECURSIVE_INVOCATION, 0, None))
        return InvokeResult(status=202, request_id=event.request_id)

    async def _run_event(self, event: _Event) -> None:
        """Lambda's asynchronous invocation: attempts, retries, event age, on-failure."""
        config = event.config
        attempts = 0
        last: AttemptEnd | None = None
        while True:
            if time.time() - event.received > config.max_event_age:
                now = time.time()
                self._add_record(event, attempts + 1, now, now, Outcome.DROPPED)
                condition = FailureCondition.EVENT_AGE_EXCEEDED
                break
            attempts += 1
            last = await self._attempt(event, attempts)
            if last.outcome is Outcome.SUCCESS:
                return
            if attempts > config.max_retries:
                condition = FailureCondition.RETRIES_EXHAUSTED
                break
            await asyncio.sleep(config.retry_delay(attempts))
        await self._send_on_failure(event, condition, attempts, last)

    async def _send_on_failure(
        self,
        event: _Event,
        condition: FailureCondition,
        attempts: int,
        last: AttemptEnd | None,
    ) -> None:
        config = event.config
        if config.on_failure is None:
            return
        record = on_failure_record(
            request_id=event.request_id,
            function_arn=config.arn,
            condition=condition,
            invoke_count=attempts,
            request_payload=decode_payload(event.payload),
            response_payload=decode_payload(last.body) if last is not None else None,
        )
        try:
            await self.submit(
                InvokeRequest(
                    function=config.on_failure,
                    payload=json.dumps(record).encode(),
                    invocation_type=InvocationType.EVENT,
                )
            )
        except InvokeError as exc:
            _log.warning("on-failure destination of %s refused: %s", config.name, exc.message)

    # -- one attempt --------------------------------------------------------------------------

    async def _attempt(self, event: _Event, attempt: int) -> AttemptEnd:
        if self._pool is None:
            raise LocalServerError("the Lambda service is not running: call start() first")
        config = event.config
        started = time.time()
        worker = await self._pool.acquire(config)
        assignment = Assignment(
            request_id=event.request_id,
            payload=event.payload,
            trace_header=event.lineage.header(config.name),
            function_arn=config.arn,
            timeout=config.timeout,
            client_context=event.client_context,
        )
        try:
            end = await worker.run(assignment, init_timeout=self._init_timeout)
        finally:
            self._pool.release(config)
        self._add_record(event, attempt, started, time.time(), end.outcome, end.body, worker.pid)
        return end

    def _on_output(self, worker: Worker, stream: str, line: str) -> None:
        name = worker.config.name
        self._ledger.add_output(name, line)
        if self._echo:
            print(f"[{name} {worker.pid}] {line}", file=sys.stderr, flush=True)

    # -- bookkeeping --------------------------------------------------------------------------

    def _add_record(
        self,
        event: _Event,
        attempt: int,
        started: float,
        ended: float,
        outcome: Outcome,
        body: bytes = b"",
        worker_pid: int | None = None,
    ) -> None:
        decoded = decode_payload(body)
        failed = outcome is not Outcome.SUCCESS
        record = InvocationRecord(
            function=event.config.name,
            request_id=event.request_id,
            attempt=attempt,
            invocation_type=event.invocation_type,
            payload=decode_payload(event.payload),
            started=started,
            ended=ended,
            outcome=outcome,
            error=decoded if failed and isinstance(decoded, dict) else None,
            result=None if failed else decoded,
            hops=event.lineage.hops,
            worker_pid=worker_pid,
        )
        self._ledger.add_record(record)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if self._stopping:
            coroutine.close()
            raise LocalServerError("the local Lambda service is stopping")
        self._enter()
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._leave()
        if not task.cancelled() and task.exception() is not None:
            _log.error("local Lambda event failed", exc_info=task.exception())

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        self._enter()
        try:
            yield
        finally:
            self._leave()

    def _enter(self) -> None:
        self._in_flight += 1
        if self._idle is not None:
            self._idle.clear()

    def _leave(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0 and self._idle is not None:
            self._idle.set()

    # -- for tests ----------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """True when no invocation is queued, running or waiting for a retry."""
        return self._in_flight == 0

    async def wait_idle(self) -> None:
        """Wait until the service is idle; bound it with ``asyncio.timeout``. Raises nothing."""
        if self._idle is not None:
            await self._idle.wait()

    def records(self, function: str | None = None) -> list[InvocationRecord]:
        """Invocation records so far, oldest first, optionally of one function. Thread-safe."""
        return self._ledger.records(function)

    def logs(self, function: str) -> list[str]:
        """Every line the function's workers printed (stdout and stderr). Thread-safe.

        Raises ``KeyError`` for an unknown function.
        """
        return self._ledger.output(function)

    def api_calls(self, function: str | None = None) -> list[ApiCall]:
        """Invoke API calls received over HTTP, oldest first. Thread-safe."""
        return self._ledger.api_calls(function)

    def note_api_call(self, function: str, invocation_type: str, status: int) -> None:
        """Remember one Invoke API call. Thread-safe."""
        at = time.time()
        call = ApiCall(function=function, invocation_type=invocation_type, status=status, at=at)
        self._ledger.add_api_call(call)

    def invoke_faults(
        self,
        function: str | None,
        *,
        status: int = 500,
        times: int | None = 1,
        error_type: str | None = None,
        message: str = "injected fault",
    ) -> None:
        """Make the Invoke API answer ``status`` for the next ``times`` calls (``None``: all).

        ``function=None`` applies to every function. Faults planned for one function are
        used in order, before those for every function. ``error_type`` defaults to the
        exception Lambda uses for the status (429 ``TooManyRequestsException``, 5xx
        ``ServiceException``). botocore retries 429 and 5xx by itself, so each of its
        attempts uses up one fault. Thread-safe; raises ``ValueError`` for a non-error status.
        """
        if status < 400 or (times is not None and times < 1):
            raise ValueError(f"invalid fault: status {status}, times {times}")
        fault = InvokeFault(status=status, error_type=error_type, message=message)
        self._ledger.plan_fault(function, fault, times)

    def clear_invoke_faults(self, function: str | None = None) -> None:
        """Forget planned faults: of ``function``, or all of them. Thread-safe."""
        self._ledger.clear_faults(function)

    def take_fault(self, function: str) -> InvokeFault | None:
        """Use up one planned fault for a call to ``function``, if any. Thread-safe."""
        return self._ledger.take_fault(function)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers of every function."""
        return self._pool.pids() if self._pool is not None else []
