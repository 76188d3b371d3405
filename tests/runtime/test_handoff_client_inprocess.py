"""When the hand-over's Lambda client is made: only for an operation that may hand over.

Inside Lambda the journal's client is made during the init phase; the Lambda client is made
once the handler has run for a second, or at once when its soft deadline is less than a
second away, so that a cold start of a quick operation never loads Lambda's service model
and a hand-over never waits for it inside its reserve. Driven in-process against DynamoDB
Local and moto's S3; the handler watches the runtime's client pool.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

import asynccfn
from asynccfn import _entry
from asynccfn._handoff import _WARM_AFTER
from tests.journal.scenarios import FakeInvokeAPI
from tests.support import FakeLambdaContext, answering_resource, closing_handler, event_for


@pytest.fixture(autouse=True)
def inside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_entry, "inside_lambda", lambda: True)  # as Lambda sets it up


def services(handler: Any) -> set[str]:
    return handler.runtime.clients.services()


def watching_resource(handler_box: list[Any], seen: list[tuple[float, set[str]]]) -> Any:
    """A Create that polls the pool until the Lambda client is there (5 s at most), noting
    when it saw it, then sleeps durably for ``Sleep`` seconds."""
    resource = asynccfn.Resource("Custom::Bucket", update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        began = time.monotonic()
        if ctx.invocation == 1:
            # the pool has no event to wait on: poll it
            while "lambda" not in services(handler_box[0]) and time.monotonic() - began < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            seen.append((time.monotonic() - began, services(handler_box[0])))
        await ctx.sleep(float(request.properties.get("Sleep", 0)), "settle")
        return asynccfn.Success(physical_id="watched")

    return resource


def test_a_quick_operation_never_makes_the_lambda_client(
    journal: str, presigned_response_url: Any
) -> None:
    handler = asynccfn.lambda_entry(answering_resource("Custom::Bucket"), journal=journal)
    assert services(handler) == {"dynamodb"}  # made during the init phase
    url, read = presigned_response_url()
    with closing_handler(handler):
        assert handler(event_for("create", url), FakeLambdaContext())["outcome"] == "SUCCESS"
        # a later invocation of the warm container does not meet a stale timer either
        url2, _ = presigned_response_url()
        assert handler(event_for("create", url2), FakeLambdaContext())["outcome"] == "SUCCESS"
        assert services(handler) == {"dynamodb"}
    assert json.loads(read() or b"")["Status"] == "SUCCESS"


def test_an_operation_running_a_second_gets_the_lambda_client_then(
    journal: str, presigned_response_url: Any
) -> None:
    box: list[Any] = []
    seen: list[tuple[float, set[str]]] = []
    handler = asynccfn.lambda_entry(watching_resource(box, seen), journal=journal)
    box.append(handler)
    url, read = presigned_response_url()
    with closing_handler(handler):
        assert handler(event_for("create", url), FakeLambdaContext(60))["outcome"] == "SUCCESS"
    [(waited, made)] = seen
    assert "lambda" in made
    assert waited >= _WARM_AFTER - 0.05  # not before the operation had run that long
    assert json.loads(read() or b"")["Status"] == "SUCCESS"


def test_near_its_soft_deadline_an_operation_gets_the_client_before_it_hands_over(
    journal: str, presigned_response_url: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box: list[Any] = []
    seen: list[tuple[float, set[str]]] = []
    with FakeInvokeAPI() as lambdas:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambdas.endpoint_url)
        handler = asynccfn.lambda_entry(watching_resource(box, seen), journal=journal, reserve=1.0)
        box.append(handler)
        url, read = presigned_response_url()
        event = event_for("create", url, Sleep=3)
        with closing_handler(handler):
            # 1.5 s left: the soft deadline is 0.5 s away, nearer than the warm-up's lead
            assert handler(event, FakeLambdaContext(1.5))["outcome"] == "handed-over"
            [(waited, made)] = seen
            assert "lambda" in made and waited < _WARM_AFTER
            assert handler(lambdas.payloads[-1], FakeLambdaContext(30))["outcome"] == "SUCCESS"
    assert json.loads(read() or b"")["Status"] == "SUCCESS"
