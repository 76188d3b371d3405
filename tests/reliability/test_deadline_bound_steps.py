"""Deadlines that bind a step or a hand-over (DESIGN.md invariants 7 and 10): a step that
needs more time than the operation's own deadline leaves fails the operation at once instead
of handing over without end, and the hand-over waits for its Lambda client only within the
time its invoke has."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

import asynccfn
from tests.support import FakeLambdaContext, closing_handler, event_for


def test_a_step_needing_more_than_the_operation_has_left_fails_it_at_once(
    journal: str, presigned_response_url: Any
) -> None:
    """ServiceTimeout 30 s: the operation must answer within ~27 s, the function has 60 s.
    A step with needs=40 can never start before the operation's deadline, and no successor
    gets more time (the operation's deadline, not Lambda's, binds): the operation is answered
    FAILED at once, saying so, not handed over from invocation to invocation until
    max_stalled blames the function's timeout."""
    url, read = presigned_response_url()
    ran: list[str] = []
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step("long", lambda: ran.append("long"), needs=40)
        return asynccfn.Success(physical_id="pid")

    handler = asynccfn.lambda_entry(resource, journal=journal, timeout=3600)
    event = event_for("create", url)
    event["ServiceTimeout"] = 30
    with closing_handler(handler):
        outcome = handler(event, FakeLambdaContext(60))["outcome"]
    body = json.loads(read() or b"{}")
    assert ran == [] and outcome == "FAILED", outcome
    assert body["Status"] == "FAILED" and "a step needs 40 s" in body["Reason"], body


def test_the_hand_over_waits_for_a_slow_lambda_client_only_within_its_budget(
    journal: str, presigned_response_url: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Making the Lambda client (begun early in the invocation: HandOff.warm_later) is held
    up (asynccfn's client pool made slow for "lambda"). At the soft deadline the hand-over
    records its token and waits for that client only until its invoke's time is up, then
    answers or raises in time, never running past the invocation's hard deadline (where
    Lambda would kill it)."""
    from asynccfn._clients import ClientPool

    url, _read = presigned_response_url()
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.sleep(600)
        return asynccfn.Success(physical_id="pid")

    real_get = ClientPool.get

    async def slow_get(self: ClientPool, service: str, **options: Any) -> Any:
        if service == "lambda":
            await asyncio.sleep(8)  # e.g. a stalled credentials or endpoint lookup
            return object()
        return await real_get(self, service, **options)

    async def fake_invoke_self(client: Any, arn: str, event: Any, *, token: str) -> None:
        return None

    monkeypatch.setattr(ClientPool, "get", slow_get)
    monkeypatch.setattr("asynccfn._handoff.invoke_self", fake_invoke_self)
    handler = asynccfn.lambda_entry(resource, journal=journal)
    started = time.monotonic()
    outcome: object
    with closing_handler(handler):
        try:
            outcome = handler(event_for("create", url), FakeLambdaContext(4))
        except Exception as exc:  # raising in time would be acceptable
            outcome = exc
        took = time.monotonic() - started
    assert took < 4.0, f"the invocation took {took:.1f} s of its 4 s (outcome {outcome!r})"
