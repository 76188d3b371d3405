"""The Context API against a real journal (DynamoDB Local), driven in-process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import asynccfn
from asynccfn.journal.models import bind, op_pk
from tests.support import (
    FakeLambdaContext,
    closing_handler,
    event_for,
    event_op_id,
)


@pytest.fixture
def journal(journal: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shared journal fixture, with Secrets Manager in moto too."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)
    return journal


@pytest.fixture
def operate(
    journal: str, presigned_response_url: Callable[[], Any]
) -> Iterator[Callable[..., dict[str, Any]]]:
    """Run one Create of ``resource`` to its response; returns the response body."""
    handlers: list[Any] = []

    def run(resource: asynccfn.Resource, event: dict[str, Any] | None = None, **kw: Any) -> Any:
        url, read = presigned_response_url()
        event = event or event_for("create", url)
        event["ResponseURL"] = url
        handler = asynccfn.lambda_entry(resource, journal=journal, **kw)
        handlers.append(handler)
        handler(event, FakeLambdaContext())
        raw = read()
        assert raw is not None
        return {"event": event, **json.loads(raw)}

    yield run
    for handler in handlers:
        with closing_handler(handler):
            pass


def steps_of(journal: str, dynamodb_endpoint: str, event: dict[str, Any]) -> list[Any]:
    models = bind(journal, "us-east-1", dynamodb_endpoint)
    op_id = event_op_id(event)
    return list(models.step.query(op_pk(op_id), models.step.sk.startswith("step#")))


def test_call_keeps_sensitive_members_out_of_the_journal_and_derives_tokens(
    operate: Callable[..., Any], journal: str, dynamodb_endpoint: str
) -> None:
    resource = asynccfn.Resource(update="replace", delete="nothing")
    seen: dict[str, Any] = {}

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        secrets = await ctx.client("secretsmanager")
        name = f"s-{request.request_id}"
        created = await ctx.call(
            "secretsmanager:CreateSecret", secrets.create_secret, Name=name, SecretString="hunter2"
        )
        value = await ctx.call(
            "secretsmanager:GetSecretValue", secrets.get_secret_value, SecretId=name
        )
        seen["live"] = value.get("SecretString")
        return asynccfn.Success(physical_id=created["ARN"])

    response = operate(resource)
    assert response["Status"] == "SUCCESS", response
    assert seen["live"] == "hunter2"  # the live call returns everything
    journaled = steps_of(journal, dynamodb_endpoint, response["event"])
    assert [s.name for s in journaled] == [
        "secretsmanager:CreateSecret",
        "secretsmanager:GetSecretValue",
    ]
    assert "hunter2" not in "".join(s.result for s in journaled)
    assert json.loads(journaled[1].result)["SecretString"] is None


def test_idempotency_tokens_are_derived_from_operation_and_position() -> None:
    from aiobotocore.session import get_session

    from asynccfn._aws import prepare_call

    async def tokens() -> list[str]:
        async with get_session().create_client("secretsmanager", region_name="us-east-1") as c:
            return [
                prepare_call(c.create_secret, {"Name": "x"}, seed=seed).request[
                    "ClientRequestToken"
                ]
                for seed in ("op/0#00001", "op/0#00001", "op/0#00002")
            ]

    first, again, other = asyncio.run(tokens())
    assert first == again and first != other


def test_step_failure_replays_as_the_same_type_and_message(operate: Callable[..., Any]) -> None:
    resource = asynccfn.Resource(update="replace", delete="nothing")
    runs: list[str] = []

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        def broken() -> None:
            runs.append("broken")
            raise KeyError("missing")

        try:
            await ctx.step("broken", broken)
        except KeyError as exc:
            return asynccfn.Success(data={"Caught": type(exc).__name__, "Message": str(exc)})
        raise AssertionError("the step's error did not propagate")

    response = operate(resource)
    assert response["Data"] == {"Caught": "KeyError", "Message": "'missing'"}
    # a new attempt of the same request keeps no failed step; the original attempt's replay
    # is exercised through a duplicate delivery after the response was lost (see outbox)
    assert runs == ["broken"]


def test_wait_until_times_out_with_wait_timeout(operate: Callable[..., Any]) -> None:
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.wait_until("never", lambda: False, interval=0.1, timeout=0.5)
        raise AssertionError("unreachable")

    response = operate(resource)
    assert response["Status"] == "FAILED"
    assert "wait 'never' gave up" in response["Reason"]


def test_wait_until_predicate_error_fails_the_wait(operate: Callable[..., Any]) -> None:
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        def predicate() -> bool:
            raise PermissionError("denied")

        await ctx.wait_until("denied", predicate, interval=0.1, timeout=5)
        raise AssertionError("unreachable")

    response = operate(resource)
    assert response["Reason"].startswith("PermissionError: denied")


def test_invariant_11_oversize_state_and_results_fail_clearly(operate: Callable[..., Any]) -> None:
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        if request.properties.get("Big") == "state":
            ctx.state["blob"] = "x" * 360_000
            await ctx.step("after", lambda: 1)
        await ctx.step("result", lambda: "y" * 420_000)
        raise AssertionError("unreachable")

    state = operate(resource, event_for("create", "", Big="state"))
    assert state["Status"] == "FAILED"
    assert "ctx.state is" in state["Reason"] and "350000" in state["Reason"]
    result = operate(resource)
    assert result["Status"] == "FAILED"
    assert "would journal" in result["Reason"] and "400000" in result["Reason"]


def test_non_json_result_fails_with_a_reason(operate: Callable[..., Any]) -> None:
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step("object", object)
        raise AssertionError("unreachable")

    response = operate(resource)
    assert "is not JSON-serialisable" in response["Reason"]


def test_now_and_uuid_are_journaled(
    operate: Callable[..., Any], journal: str, dynamodb_endpoint: str
) -> None:
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        now = await ctx.now()
        ident = await ctx.uuid()
        return asynccfn.Success(data={"Now": now.isoformat(), "Id": str(ident)})

    response = operate(resource)
    assert abs(time.time() - float(_epoch(response["Data"]["Now"]))) < 30
    steps = steps_of(journal, dynamodb_endpoint, response["event"])
    assert [s.kind for s in steps] == ["now", "uuid"]
    assert json.loads(steps[1].result) == response["Data"]["Id"]


def _epoch(iso: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(iso).timestamp()


def test_invariant_4_heartbeat_keeps_the_lease_for_a_long_invocation(
    journal: str, presigned_response_url: Callable[[], Any]
) -> None:
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step("long", asyncio.sleep, 7)
        return asynccfn.Success(physical_id="long")

    url, read = presigned_response_url()
    handler = asynccfn.lambda_entry(resource, journal=journal, lease=3)
    runtime = handler.runtime  # type: ignore[attr-defined]
    event = event_for("create", url)

    async def both() -> list[str]:
        first = asyncio.ensure_future(runtime.invoke(dict(event), FakeLambdaContext(60)))
        await asyncio.sleep(6)  # twice the lease: only the heartbeat keeps it
        duplicate = await runtime.invoke(dict(event), FakeLambdaContext(60))
        return [(await first).outcome, duplicate.outcome]

    from tests.support import run

    with closing_handler(handler):
        assert run(both()) == ["SUCCESS", "live-duplicate"]
    assert json.loads(read() or b"{}")["Status"] == "SUCCESS"


class QuotaError(Exception):
    """A handler's own error type, registered with the resource below."""


class UnlistedError(Exception):
    """A handler's own error type nobody registered."""


def test_replayed_step_errors_rebuild_only_registered_types(
    journal: str, presigned_response_url: Callable[[], Any]
) -> None:
    resource = asynccfn.Resource(errors=[QuotaError], update="replace", delete="nothing")
    seen: list[tuple[str, str]] = []

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        for name, error in (("quota", QuotaError), ("unlisted", UnlistedError)):

            def fail(error: type[Exception] = error) -> None:
                raise error(f"{error.__name__} says no")

            try:
                await ctx.step(name, fail)
            except Exception as exc:
                seen.append((type(exc).__name__, str(exc)))
        if not ctx.is_replaying and len(seen) == 2:
            # The journal, not the handler, failed: Lambda retries this invocation, which
            # replays both failed steps from the journal.
            raise asynccfn.JournalError("the journal went away")
        return asynccfn.Success(data={"Seen": len(seen)})

    url, read = presigned_response_url()
    event = event_for("create", url)
    handler = asynccfn.lambda_entry(resource, journal=journal)
    lambda_context = FakeLambdaContext()
    with closing_handler(handler):
        with pytest.raises(asynccfn.JournalError):
            handler(event, lambda_context)
        handler(event, lambda_context)  # Lambda's retry of the same invocation
    assert json.loads(read() or b"{}")["Status"] == "SUCCESS"
    assert seen == [
        ("QuotaError", "QuotaError says no"),
        ("UnlistedError", "UnlistedError says no"),
        ("QuotaError", "QuotaError says no"),  # replayed: the registered type itself
        ("StepFailed", "UnlistedError: UnlistedError says no"),  # replayed: not registered
    ]
