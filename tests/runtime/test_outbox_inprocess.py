"""Invariants 1 and 8: a response that could not be delivered is recorded first, the Lambda
handler raises so Lambda's retry runs again, and the retry re-posts the same body."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

import asynccfn
from asynccfn.journal.models import bind, op_pk
from asynccfn.local import free_port
from tests.support import (
    FakeLambdaContext,
    closing_handler,
    create_journal_table,
    event_for,
    event_op_id,
)


class FlakyReceiver:
    """A response receiver on loopback that answers ``status`` until told otherwise."""

    def __init__(self) -> None:
        self.status = 503
        self.bodies: list[bytes] = []
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.status == 200:
            self.bodies.append(body)
        return web.Response(status=self.status)

    def __enter__(self) -> FlakyReceiver:
        async def start() -> None:
            app = web.Application()
            app.router.add_put("/{tail:.*}", self._receive)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        self._thread.start()
        asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return (
            f"http://127.0.0.1:{self.port}/responses/key?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Signature=abc123"
        )


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch, dynamodb_endpoint: str) -> Iterator[FlakyReceiver]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    with FlakyReceiver() as flaky:
        monkeypatch.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", f"127.0.0.1:{flaky.port}")
        yield flaky


def test_invariant_1_8_undelivered_response_raises_then_the_retry_reposts_it(
    receiver: FlakyReceiver, dynamodb_endpoint: str
) -> None:
    runs: list[str] = []
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        stamp = await ctx.step("work", lambda: runs.append("work") or len(runs))
        return asynccfn.Success(physical_id="outbox", data={"Run": stamp})

    fast = asynccfn.DeliveryPolicy(attempts=3, base_delay=0.05, max_delay=0.1)
    handler = asynccfn.lambda_entry(
        resource, journal=create_journal_table(dynamodb_endpoint), delivery=fast
    )
    event: dict[str, Any] = event_for("create", receiver.url)
    with closing_handler(handler):
        with pytest.raises(asynccfn.DeliveryError):
            handler(event, FakeLambdaContext())  # Lambda will retry this invocation
        receiver.status = 200
        assert handler(event, FakeLambdaContext())["outcome"] == "re-posted"
        assert handler(event, FakeLambdaContext())["outcome"] == "finished"
    assert runs == ["work"]
    (body,) = receiver.bodies
    assert b'"Status":"SUCCESS"' in body and b'"Run":1' in body


def test_invariant_1_403_is_terminal_and_recorded_undeliverable(
    receiver: FlakyReceiver, dynamodb_endpoint: str
) -> None:
    receiver.status = 403
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="expired")

    table = create_journal_table(dynamodb_endpoint)
    handler = asynccfn.lambda_entry(resource, journal=table)
    event = event_for("create", receiver.url)
    with closing_handler(handler):
        assert handler(event, FakeLambdaContext())["outcome"] == "SUCCESS"  # returns normally
    models = bind(table, "us-east-1", dynamodb_endpoint)
    op_id = event_op_id(event)
    op = models.operation.get(op_pk(op_id), "op")
    assert op.status == "UNDELIVERABLE"
    assert "403" in (op.reason or "")
    assert receiver.url not in (op.reason or "")


def test_invariant_8_13_noecho_data_is_kept_only_until_posted(
    receiver: FlakyReceiver, dynamodb_endpoint: str
) -> None:
    secret = "noecho-" + "7f3a" * 8
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="db", data={"Password": secret}, no_echo=True)

    table = create_journal_table(dynamodb_endpoint)
    fast = asynccfn.DeliveryPolicy(attempts=2, base_delay=0.05, max_delay=0.1)
    handler = asynccfn.lambda_entry(resource, journal=table, delivery=fast)
    event: dict[str, Any] = event_for("create", receiver.url)
    models = bind(table, "us-east-1", dynamodb_endpoint)
    op_id = event_op_id(event)
    with closing_handler(handler):
        with pytest.raises(asynccfn.DeliveryError):
            handler(event, FakeLambdaContext())
        recorded = models.operation.get(op_pk(op_id), "op")
        assert recorded.posted_at is None
        assert secret in (recorded.response or "")  # what Lambda's retry must re-post
        receiver.status = 200
        assert handler(event, FakeLambdaContext())["outcome"] == "re-posted"
    (body,) = receiver.bodies
    assert json.loads(body)["Data"] == {"Password": secret}  # CloudFormation gets it all
    posted = models.operation.get(op_pk(op_id), "op")
    assert posted.posted_at is not None
    assert secret not in json.dumps(posted.serialize())
    kept = json.loads(posted.response or "{}")
    assert kept["Data"] == {"Password": "****"} and kept["NoEcho"] is True
    assert kept["PhysicalResourceId"] == "db" and kept["Status"] == "SUCCESS"
    assert posted.response_digest == hashlib.sha256(body).hexdigest()


def test_a_response_without_noecho_is_kept_as_sent_with_its_digest(
    receiver: FlakyReceiver, dynamodb_endpoint: str
) -> None:
    receiver.status = 200
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="plain", data={"Arn": "arn:aws:s3:::plain"})

    table = create_journal_table(dynamodb_endpoint)
    handler = asynccfn.lambda_entry(resource, journal=table)
    event = event_for("create", receiver.url)
    with closing_handler(handler):
        assert handler(event, FakeLambdaContext())["outcome"] == "SUCCESS"
    (body,) = receiver.bodies
    models = bind(table, "us-east-1", dynamodb_endpoint)
    op_id = event_op_id(event)
    op = models.operation.get(op_pk(op_id), "op")
    assert op.response == body.decode() and op.posted_at is not None
    assert op.response_digest == hashlib.sha256(body).hexdigest()
