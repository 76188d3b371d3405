"""A fault-injecting HTTP proxy in front of DynamoDB Local.

A seeded random fraction of requests gets a fault instead of (or after) the real answer:

- ``throttle``: 400 ThrottlingException, DynamoDB's JSON error shape, nothing forwarded;
- ``provisioned``: 400 ProvisionedThroughputExceededException, nothing forwarded;
- ``internal``: 500 InternalServerError, nothing forwarded;
- ``lost-reply``: forwarded (the write happens), then answered 500: the client must retry a
  conditional write that already took effect;
- ``delay``: forwarded after a pause shorter than the client's read timeout;
- ``no-item`` (planned only): forwarded, and a failed condition's answer loses the ``Item``
  it carries, as a table without ``ReturnValuesOnConditionCheckFailure`` would answer.

A request botocore retries arrives with the same body: no body gets more than
``max_streak`` faults in a row, so botocore's own retries (standard mode, five attempts) must
absorb every random fault. ``fail_next`` plans an outage instead: the next requests of one
operation all fail, beyond what botocore retries.

Every fault is counted by kind; ``requests`` counts what came in.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
from collections import Counter

import aiohttp
from aiohttp import web

from tests.reliability._threaded import ThreadedApp

KINDS = ("throttle", "provisioned", "internal", "lost-reply", "delay")

_ERRORS = {
    "throttle": (
        400,
        "com.amazon.coral.availability#ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    ),
    "provisioned": (
        400,
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    "internal": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal error"),
    "lost-reply": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal error"),
}
_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


class DynamoDBFaultProxy(ThreadedApp):
    """Forward to ``upstream``; fault ``rate`` of requests, choosing kinds from ``kinds``."""

    def __init__(
        self,
        upstream: str,
        *,
        seed: int,
        rate: float,
        kinds: tuple[str, ...] = KINDS,
        max_delay: float = 0.4,
        max_streak: int = 2,
    ) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.rate = rate
        self.kinds = kinds
        self.max_delay = max_delay
        self.max_streak = max_streak
        self._streaks: dict[str, int] = {}
        self._planned: dict[str, list[str]] = {}
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.faults: Counter[str] = Counter()
        self.by_operation: Counter[str] = Counter()
        self.requests = 0
        self._session: aiohttp.ClientSession | None = None

    @property
    def injected(self) -> int:
        with self._lock:
            return sum(self.faults.values())

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def on_start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def on_stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    def fail_next(self, operation: str, times: int, kind: str = "internal") -> None:
        """Answer the next ``times`` requests of ``operation`` (``PutItem``, ...) with ``kind``."""
        with self._lock:
            self._planned.setdefault(operation, []).extend([kind] * times)

    def _choose(self, operation: str, body: bytes) -> tuple[str | None, float]:
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            self.requests += 1
            planned = self._planned.get(operation)
            if planned:
                kind: str | None = planned.pop(0)
            elif (
                self._random.random() < self.rate and self._streaks.get(digest, 0) < self.max_streak
            ):
                kind = self._random.choice(self.kinds)
            else:
                kind = None
            if kind in (None, "delay"):
                self._streaks.pop(digest, None)
            else:
                self._streaks[digest] = self._streaks.get(digest, 0) + 1
            if kind is None:
                return None, 0.0
            self.faults[kind] += 1
            self.by_operation[operation] += 1
            return kind, self._random.uniform(0.05, self.max_delay)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        operation = request.headers.get("X-Amz-Target", "?").rpartition(".")[2]
        kind, delay = self._choose(operation, body)
        if kind in ("throttle", "provisioned", "internal"):
            return _error(kind)
        if kind == "delay":
            await asyncio.sleep(delay)
        status, headers, payload = await self._forward(request, body)
        if kind == "lost-reply":
            return _error(kind)
        if kind == "no-item" and b"ConditionalCheckFailed" in payload:
            answer = json.loads(payload)
            answer.pop("Item", None)
            payload = json.dumps(answer).encode()
            # the body's checksum no longer matches: botocore checks it only when it is sent
            headers = {k: v for k, v in headers.items() if k.lower() != "x-amz-crc32"}
        return web.Response(status=status, body=payload, headers=headers)

    async def _forward(
        self, request: web.Request, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            payload = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            return answer.status, out, payload


def _error(kind: str) -> web.Response:
    status, error_type, message = _ERRORS[kind]
    return web.Response(
        status=status,
        body=json.dumps({"__type": error_type, "message": message}).encode(),
        content_type="application/x-amz-json-1.0",
    )
