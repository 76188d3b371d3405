"""Every worker of the local Lambda service: by function for reuse, by port for the Runtime API.

An attempt takes an idle worker of its function, or starts a new one while the function is
below its ``concurrency``, or waits for one of those to happen. A worker that was killed or
died leaves the pool; the next attempt starts a fresh one, as Lambda starts a new execution
environment.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import web

from asynccfn.local._env import LocalServerError
from asynccfn.local._functions import FunctionConfig
from asynccfn.local._workers import OutputSink, Worker, WorkerState

__all__ = ["WorkerPool"]

_log = logging.getLogger("asynccfn.local")


@dataclass(eq=False)
class _Workers:
    config: FunctionConfig
    workers: list[Worker] = field(default_factory=list)
    available: asyncio.Event = field(default_factory=asyncio.Event)  # a worker may be free


class WorkerPool:
    """The workers of every function of one service.

    ``python`` runs them, ``lambda_endpoint`` is the service's Invoke API (the workers'
    ``AWS_ENDPOINT_URL_LAMBDA``), and ``on_output`` receives every line they print.
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        *,
        python: str,
        lambda_endpoint: str,
        on_output: OutputSink,
    ) -> None:
        self._runner = runner
        self._python = python
        self._lambda_endpoint = lambda_endpoint
        self._on_output = on_output
        self._functions: dict[str, _Workers] = {}
        self._by_port: dict[int, Worker] = {}
        self._closing = False

    def add_function(self, config: FunctionConfig) -> None:
        """Keep workers for ``config``. Raises nothing."""
        self._functions[config.name] = _Workers(config)

    def on_port(self, port: int) -> Worker | None:
        """The worker whose Runtime API listens on ``port``, if any. Raises nothing."""
        return self._by_port.get(port)

    async def acquire(self, config: FunctionConfig) -> Worker:
        """An idle worker of ``config``'s function, a new one, or the next one to be free.

        The caller must give it an attempt at once (``Worker.run``) and call
        :meth:`release` after. Raises ``LocalServerError`` once the pool is closing,
        ``OSError`` when a worker cannot be started.
        """
        pool = self._functions[config.name]
        while True:
            if self._closing:
                raise LocalServerError("the local Lambda service is stopping")
            for worker in pool.workers:
                if worker.state is WorkerState.IDLE:
                    worker.state = WorkerState.BUSY
                    return worker
            if len(pool.workers) < config.concurrency:
                return await self._start(pool)
            pool.available.clear()
            await pool.available.wait()

    def release(self, config: FunctionConfig) -> None:
        """An attempt of ``config``'s function ended: let a waiting attempt look again."""
        self._functions[config.name].available.set()

    async def _start(self, pool: _Workers) -> Worker:
        worker = Worker(
            pool.config,
            python=self._python,
            lambda_endpoint=self._lambda_endpoint,
            on_output=self._on_output,
            on_exit=self._forget,
        )
        pool.workers.append(worker)  # counts against concurrency while it starts
        try:
            await worker.start(self._runner)
        except BaseException:
            pool.workers.remove(worker)
            pool.available.set()
            raise
        assert worker.port is not None
        self._by_port[worker.port] = worker
        if self._closing:
            worker.kill()
        return worker

    def _forget(self, worker: Worker) -> None:
        pool = self._functions.get(worker.config.name)
        if pool is not None and worker in pool.workers:
            pool.workers.remove(worker)
            pool.available.set()
        if worker.port is not None:
            self._by_port.pop(worker.port, None)

    def pids(self) -> list[int]:
        """Process ids of the live workers. Raises nothing."""
        return [w.pid for w in self._all() if w.pid is not None]

    def _all(self) -> list[Worker]:
        return [worker for pool in self._functions.values() for worker in pool.workers]

    async def close(self) -> None:
        """Start no more workers; kill every worker and wait until each is reaped.

        Raises nothing.
        """
        self._closing = True
        for _ in range(500):
            workers = self._all()
            if not workers:
                return
            for worker in workers:
                worker.kill()
            await asyncio.gather(*(w.wait_closed() for w in workers), return_exceptions=True)
            await asyncio.sleep(0.01)  # a worker may still be between its port and its process
        _log.error("some local Lambda workers did not stop: %s", self.pids())
