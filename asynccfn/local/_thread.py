"""The local Lambda service on its own event loop in a background thread, for sync callers."""

from __future__ import annotations

import asyncio
import atexit
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from asynccfn.local._env import LocalServerError, StartStop
from asynccfn.local._functions import FunctionConfig
from asynccfn.local._lineage import MAX_HOPS
from asynccfn.local._records import ApiCall, InvocationRecord, InvocationType, InvokeResult
from asynccfn.local._service import LambdaService

__all__ = ["LambdaServiceThread"]

_T = TypeVar("_T")


class LambdaServiceThread(StartStop):
    """A :class:`LambdaService` running in a daemon thread, driven by blocking calls.

    ::

        with LambdaServiceThread() as lambdas:
            lambdas.add_function(FunctionConfig(name="f", handler="app.handler", code_paths=[d]))
            assert lambdas.invoke("f", {"n": 1}).payload == {"n": 2}

    The keyword arguments are :class:`LambdaService`'s. The reading methods (``records``,
    ``logs``, ``api_calls``) and fault planning go straight to the service, which is
    thread-safe for them; everything else runs on the service's loop.
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
        self.service = LambdaService(
            port=port, python=python, init_timeout=init_timeout, echo=echo, max_hops=max_hops
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Start the thread and the service; return the Invoke API's endpoint URL.

        Raises what :meth:`LambdaService.start` raises.
        """
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            running = threading.Event()
            self._thread = threading.Thread(
                target=self._run_loop,
                args=(self._loop, running),
                name="asynccfn-lambda",
                daemon=True,
            )
            self._thread.start()
            running.wait()  # the loop runs before anything is sent to it, however busy the CPU
            atexit.register(self.stop)  # no worker outlives this process when stop() was skipped
        return self._call(self.service.start())

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, running: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(running.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        if self._loop is None or not self._loop.is_running():
            coroutine.close()
            raise LocalServerError("the Lambda service thread is not running: call start()")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def endpoint_url(self) -> str:
        """The Invoke API's URL. Raises ``LocalServerError`` before ``start()``."""
        return self.service.endpoint_url

    def add_function(self, config: FunctionConfig) -> None:
        """Register a function. Raises ``ValueError`` if one of that name exists."""

        async def add() -> None:
            self.service.add_function(config)

        self._call(add())

    def invoke(
        self,
        name: str,
        payload: Any = None,
        *,
        invocation_type: InvocationType | str = InvocationType.REQUEST_RESPONSE,
        trace_header: str | None = None,
        timeout: float | None = None,
    ) -> InvokeResult:
        """Block on :meth:`LambdaService.invoke`; raises what it raises, and ``TimeoutError``
        after ``timeout`` seconds."""
        return self._call(
            self.service.invoke(
                name, payload, invocation_type=invocation_type, trace_header=trace_header
            ),
            timeout,
        )

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until no invocation is queued, running or waiting for a retry.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        service = self.service

        async def wait() -> None:
            async with asyncio.timeout(timeout):
                await service.wait_idle()

        self._call(wait())

    def records(self, function: str | None = None) -> list[InvocationRecord]:
        """See :meth:`LambdaService.records`."""
        return self.service.records(function)

    def logs(self, function: str) -> list[str]:
        """See :meth:`LambdaService.logs`."""
        return self.service.logs(function)

    def api_calls(self, function: str | None = None) -> list[ApiCall]:
        """See :meth:`LambdaService.api_calls`."""
        return self.service.api_calls(function)

    def invoke_faults(
        self,
        function: str | None,
        *,
        status: int = 500,
        times: int | None = 1,
        error_type: str | None = None,
        message: str = "injected fault",
    ) -> None:
        """See :meth:`LambdaService.invoke_faults`."""
        self.service.invoke_faults(
            function, status=status, times=times, error_type=error_type, message=message
        )

    def clear_invoke_faults(self, function: str | None = None) -> None:
        """See :meth:`LambdaService.clear_invoke_faults`."""
        self.service.clear_invoke_faults(function)

    def worker_pids(self) -> list[int]:
        """See :meth:`LambdaService.worker_pids`."""
        return self.service.worker_pids()

    def stop(self) -> None:
        """Stop the service (killing every worker), then the loop and its thread. Raises
        nothing; a no-op when not running."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        atexit.unregister(self.stop)
        try:
            self._call(self.service.stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            self._loop = self._thread = None
