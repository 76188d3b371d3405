"""An aiohttp application served from its own event loop in a daemon thread.

The reliability suite's fakes (the response endpoint, the DynamoDB fault proxy) run beside the
test's own code, which is synchronous or drives the handler's persistent loop: each gets a loop
of its own, so neither can stall the other.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Self, TypeVar

from aiohttp import web

from asynccfn.local._env import LOOPBACK, StartStop, bound_socket

_T = TypeVar("_T")


class ThreadedApp(StartStop):
    """Serve ``build_app()`` on a free loopback port until ``stop()``."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    def build_app(self) -> web.Application:
        raise NotImplementedError

    async def on_start(self) -> None:
        """Called on the app's loop once it serves (open client sessions here)."""

    async def on_stop(self) -> None:
        """Called on the app's loop before it stops."""

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, as an allow-list names it."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, daemon=True, name=type(self).__name__
        )
        self._thread.start()
        self.call(self._serve())
        return self

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = bound_socket()
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        await self.on_start()

    def call(self, coroutine: Coroutine[Any, Any, _T], timeout: float = 30.0) -> _T:
        """Run ``coroutine`` on the app's loop and wait for its result."""
        assert self._loop is not None, "start() first"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            await self.on_stop()
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            self.call(shutdown())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = None
