"""Worker processes: one function's execution environments, each running awslambdaric.

A worker is a child process ``python -m awslambdaric module.handler`` with its own Runtime API
listener: ``AWS_LAMBDA_RUNTIME_API`` is ``127.0.0.1:PORT``, and the port tells the service
which worker is asking (awslambdaric opens plain ``host:port`` connections, so a path prefix
cannot carry that). A worker holds at most one invocation at a time, as a Lambda execution
environment does::

    STARTING ──assign──> BUSY ──response/error──> IDLE ──assign──> BUSY ...
        └──────────── killed (deadline) or exited ────────────> DEAD

Each worker runs in its own process group so that killing it leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from aiohttp import web

from asynccfn.local._env import LOCAL_AWS_ENV, LOOPBACK, REGION, bound_socket
from asynccfn.local._functions import FunctionConfig
from asynccfn.local._records import Outcome

__all__ = [
    "Assignment",
    "AttemptEnd",
    "Worker",
    "WorkerState",
    "error_body",
    "worker_environment",
]

_LINE_LIMIT = 1024 * 1024
_KEPT_FROM_PARENT = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")


class WorkerState(Enum):
    """Where a worker is in its life (see the module docstring)."""

    STARTING = "starting"
    BUSY = "busy"
    IDLE = "idle"
    DEAD = "dead"


@dataclass(frozen=True, kw_only=True, slots=True)
class AttemptEnd:
    """How one attempt ended; ``body`` is the handler's result or the error object."""

    outcome: Outcome
    body: bytes = b""


@dataclass(eq=False, kw_only=True)
class Assignment:
    """One attempt handed to a worker.

    ``delivered`` resolves to the absolute deadline (wall-clock seconds) when the runtime
    takes the invocation from ``/next``; ``ended`` resolves once, to how the attempt ended.
    """

    request_id: str
    payload: bytes
    trace_header: str
    function_arn: str
    timeout: float
    client_context: str | None = None
    delivered: asyncio.Future[float] = field(default_factory=asyncio.Future)
    ended: asyncio.Future[AttemptEnd] = field(default_factory=asyncio.Future)

    def end(self, outcome: Outcome, body: bytes = b"") -> bool:
        """Resolve ``ended`` unless it already is; True if this call resolved it."""
        if self.ended.done():
            return False
        self.ended.set_result(AttemptEnd(outcome=outcome, body=body))
        return True


def error_body(error_type: str, request_id: str, message: str) -> bytes:
    """An error object in the shape Lambda reports its own failures. Raises nothing."""
    text = f"RequestId: {request_id} Error: {message}"
    return json.dumps({"errorType": error_type, "errorMessage": text}).encode()


def worker_environment(
    config: FunctionConfig, *, runtime_api: str, lambda_endpoint: str
) -> dict[str, str]:
    """The environment of a worker process of ``config``.

    Lowest first: a few variables of this process (PATH, locale), the local credentials and
    ``AWS_ENDPOINT_URL_LAMBDA``, the function's ``environment``, then the variables Lambda
    reserves (function name, handler, runtime API, region), which the function cannot
    override. Shared AWS config files are hidden so a developer's profile cannot leak in.
    Raises nothing.
    """
    env = {name: os.environ[name] for name in _KEPT_FROM_PARENT if name in os.environ}
    env.update(LOCAL_AWS_ENV)
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_ENDPOINT_URL_LAMBDA"] = lambda_endpoint
    env["TZ"] = ":UTC"
    env.update(config.environment)
    python_path = list(config.paths)
    if os.environ.get("PYTHONPATH"):
        python_path.append(os.environ["PYTHONPATH"])
    today = datetime.now(UTC)
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{today:%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "_HANDLER": config.handler,
            "LAMBDA_TASK_ROOT": task_root(config),
            "PYTHONPATH": os.pathsep.join(python_path),
        }
    )
    return env


def task_root(config: FunctionConfig) -> str:
    """The function's task root: its first code path, or this process's working directory."""
    return config.paths[0] if config.paths else os.getcwd()


OutputSink = Callable[["Worker", str, str], None]
"""Receives (worker, stream name, line without its newline) for every line a worker prints."""


class Worker:
    """One execution environment of a function: a child process and its Runtime API port."""

    def __init__(
        self,
        config: FunctionConfig,
        *,
        python: str,
        lambda_endpoint: str,
        on_output: OutputSink,
        on_exit: Callable[[Worker], None],
    ) -> None:
        self.config = config
        self.state = WorkerState.STARTING
        self.current: Assignment | None = None
        self.pid: int | None = None
        self.port: int | None = None
        self.exit_code: int | None = None
        self._python = python
        self._lambda_endpoint = lambda_endpoint
        self._on_output = on_output
        self._on_exit = on_exit
        self._inbox: asyncio.Queue[Assignment | None] = asyncio.Queue()
        self._site: web.SockSite | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def start(self, runner: web.BaseRunner) -> None:
        """Open the worker's Runtime API port on ``runner`` and start its process.

        Raises ``OSError`` when no port can be bound or the process cannot be started.
        """
        sock = bound_socket()
        self.port = sock.getsockname()[1]
        self._site = web.SockSite(runner, sock)
        await self._site.start()
        env = worker_environment(
            self.config,
            runtime_api=f"{LOOPBACK}:{self.port}",
            lambda_endpoint=self._lambda_endpoint,
        )
        try:
            self._process = await asyncio.create_subprocess_exec(
                self._python,
                "-m",
                "awslambdaric",
                self.config.handler,
                cwd=task_root(self.config),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=_LINE_LIMIT,
            )
        except BaseException:
            await self._site.stop()
            raise
        self.pid = self._process.pid
        self._watcher = asyncio.create_task(self._watch(self._process))

    def assign(self, assignment: Assignment) -> None:
        """Give the worker its next attempt; it takes it from ``/next``. Raises nothing."""
        self.state = WorkerState.BUSY
        self.current = assignment
        self._inbox.put_nowait(assignment)

    async def next_assignment(self) -> Assignment | None:
        """Wait for the worker's next attempt (``/next``); ``None`` once the worker is dead."""
        return await self._inbox.get()

    def deliver(self, assignment: Assignment) -> float:
        """Start the attempt's clock as the runtime takes it; returns the deadline (epoch s)."""
        deadline = time.time() + assignment.timeout
        if not assignment.delivered.done():
            assignment.delivered.set_result(deadline)
        return deadline

    def finish(self, request_id: str, outcome: Outcome, body: bytes) -> bool:
        """Record the runtime's response or error for ``request_id``; the worker is idle again.

        Returns False when the worker holds no such attempt. Raises nothing.
        """
        assignment = self.current
        if assignment is None or assignment.request_id != request_id:
            return False
        self.current = None
        if self.state is WorkerState.BUSY:
            self.state = WorkerState.IDLE
        return assignment.end(outcome, body)

    def fail_init(self, body: bytes) -> None:
        """The runtime could not load the handler: end the attempt with its error, then die."""
        self.state = WorkerState.DEAD
        assignment, self.current = self.current, None
        if assignment is not None:
            assignment.end(Outcome.ERROR, body)
        self.kill()

    def expire(self, body: bytes) -> None:
        """The attempt reached its deadline: end it as a timeout and kill the process."""
        self.state = WorkerState.DEAD
        assignment, self.current = self.current, None
        if assignment is not None:
            assignment.end(Outcome.TIMEOUT, body)
        self.kill()

    async def run(self, assignment: Assignment, *, init_timeout: float) -> AttemptEnd:
        """Hand the worker ``assignment`` and wait until it ends; enforce its deadline.

        A worker that does not take the invocation within ``init_timeout`` seconds of its
        start, or that is still running at the deadline, is killed and the attempt ends as a
        timeout; a process that dies ends it as a crash. Returns once a killed or dead
        process is reaped. Raises nothing of its own.
        """
        self.assign(assignment)
        starting: set[asyncio.Future[Any]] = {assignment.delivered, assignment.ended}
        await asyncio.wait(starting, timeout=init_timeout, return_when=asyncio.FIRST_COMPLETED)
        if not assignment.ended.done() and not assignment.delivered.done():
            message = f"Init timed out after {init_timeout:.2f} seconds"
            self.expire(error_body("Runtime.InitTimeout", assignment.request_id, message))
        elif not assignment.ended.done():
            remaining = assignment.delivered.result() - time.time()
            await asyncio.wait({assignment.ended}, timeout=max(0.0, remaining))
            if not assignment.ended.done():
                message = f"Task timed out after {assignment.timeout:.2f} seconds"
                self.expire(error_body("Sandbox.Timedout", assignment.request_id, message))
        end = assignment.ended.result()
        if end.outcome in (Outcome.TIMEOUT, Outcome.CRASHED):
            await self.wait_closed()
        if end.outcome is Outcome.CRASHED and not end.body:
            message = f"Runtime exited with error: {self.exit_description()}"
            body = error_body("Runtime.ExitError", assignment.request_id, message)
            end = AttemptEnd(outcome=Outcome.CRASHED, body=body)
        return end

    def kill(self) -> None:
        """SIGKILL the worker's whole process group. Raises nothing."""
        if self.pid is not None and self.exit_code is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    async def wait_closed(self) -> None:
        """Wait until the process is reaped, its output read and its port closed."""
        if self._watcher is not None:
            await asyncio.shield(self._watcher)

    def exit_description(self) -> str:
        """How the process ended, in Lambda's words (``signal: killed``, ``exit status 1``)."""
        code = self.exit_code
        if code is None:
            return "running"
        if code < 0:
            name = "killed" if -code == signal.SIGKILL else signal.Signals(-code).name.lower()
            return f"signal: {name}"
        return f"exit status {code}"

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None and process.stderr is not None
        readers = [
            asyncio.create_task(self._read(process.stdout, "stdout")),
            asyncio.create_task(self._read(process.stderr, "stderr")),
        ]
        try:
            self.exit_code = await process.wait()
            self.state = WorkerState.DEAD
            assignment, self.current = self.current, None
            if assignment is not None:
                assignment.end(Outcome.CRASHED)
            self._inbox.put_nowait(None)
            await asyncio.gather(*readers)
        finally:
            for reader in readers:
                reader.cancel()
            if self._site is not None:
                await self._site.stop()
            self._on_exit(self)

    async def _read(self, stream: asyncio.StreamReader, name: str) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the limit: take what is buffered
                line = await stream.read(_LINE_LIMIT)
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            # awslambdaric joins a multi-line record with CR so that it stays one log event.
            self._on_output(self, name, text.replace("\r", "\n"))
