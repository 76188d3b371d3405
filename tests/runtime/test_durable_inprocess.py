"""The durable runtime driven in-process against DynamoDB Local and moto's S3.

The end-to-end tests (tests/e2e) run the same code under awslambdaric; these pin down the
journal's protocol (fences, slots, outbox, attempts) where timing can be controlled.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest

import asynccfn
from asynccfn._errors import FenceLost
from asynccfn.journal.models import OperationStatus, operation_id
from tests.support import (
    FakeLambdaContext,
    answering_resource,
    closing_handler,
    event_for,
    event_op_id,
    issued,
    run,
)


def body_of(read: Any) -> dict[str, Any]:
    raw = read()
    assert raw is not None, "no response was posted"
    return json.loads(raw)


def counting_resource(calls: list[str], *, fail_step: bool = False) -> asynccfn.Resource:
    resource = asynccfn.Resource("Custom::Bucket", update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        for name in request.properties.get("Steps", []):

            async def body(name: str = name) -> str:
                calls.append(name)
                if fail_step and name == "b":
                    raise RuntimeError("b broke")
                return name.upper()

            await ctx.step(name, body)
        return asynccfn.Success(physical_id="pid", data={"Calls": len(calls)})

    return resource


def test_noop_create_costs_three_requests(journal: str, presigned_response_url: Any) -> None:
    url, read = presigned_response_url()
    handler = asynccfn.lambda_entry(counting_resource([]), journal=journal)
    with closing_handler(handler):
        assert handler(event_for("create", url), FakeLambdaContext()) == {"outcome": "SUCCESS"}
        assert handler.runtime.journal.requests == 3  # type: ignore[attr-defined]
    assert body_of(read)["Status"] == "SUCCESS"


def test_n_steps_cost_n_plus_three_requests(journal: str, presigned_response_url: Any) -> None:
    url, read = presigned_response_url()
    calls: list[str] = []
    handler = asynccfn.lambda_entry(counting_resource(calls), journal=journal)
    with closing_handler(handler):
        handler(event_for("create", url, Steps=["a", "b", "c", "d"]), FakeLambdaContext())
        assert handler.runtime.journal.requests == 4 + 3  # type: ignore[attr-defined]
    assert calls == ["a", "b", "c", "d"]
    assert body_of(read)["Data"] == {"Calls": 4}


def test_invariant_8_9_duplicate_of_finished_attempt_does_nothing_twice(
    journal: str, presigned_response_url: Any
) -> None:
    url, read = presigned_response_url()
    calls: list[str] = []
    handler = asynccfn.lambda_entry(counting_resource(calls), journal=journal)
    event = event_for("create", url, Steps=["a", "b"])
    with closing_handler(handler):
        assert handler(event, FakeLambdaContext())["outcome"] == "SUCCESS"
        assert handler(dict(event), FakeLambdaContext())["outcome"] == "finished"
    assert calls == ["a", "b"]
    assert body_of(read)["Status"] == "SUCCESS"


def test_invariant_9_concurrent_deliveries_run_the_body_once(
    journal: str, presigned_response_url: Any
) -> None:
    url, read = presigned_response_url()
    calls: list[str] = []
    handler = asynccfn.lambda_entry(counting_resource(calls), journal=journal)
    event = event_for("create", url, Steps=["a"])
    runtime = handler.runtime  # type: ignore[attr-defined]

    async def deliveries() -> list[Any]:
        return await asyncio.gather(
            *(runtime.invoke(dict(event), FakeLambdaContext()) for _ in range(10))
        )

    with closing_handler(handler):
        outcomes = [r.outcome for r in run(deliveries())]
    assert outcomes.count("SUCCESS") == 1, outcomes
    # a duplicate between the outbox write and its "posted" mark re-posts the same body
    assert set(outcomes) <= {"SUCCESS", "live-duplicate", "finished", "re-posted"}
    assert calls == ["a"]
    assert body_of(read)["Status"] == "SUCCESS"


def test_invariant_9_retried_deployment_reruns_the_failed_step_and_answers_the_new_url(
    journal: str, presigned_response_url: Any
) -> None:
    first_url, read_first = presigned_response_url()
    second_url, read_second = presigned_response_url()
    calls: list[str] = []
    failing = asynccfn.lambda_entry(counting_resource(calls, fail_step=True), journal=journal)
    event = event_for("create", first_url, Steps=["a", "b"])
    with closing_handler(failing):
        failing(event, FakeLambdaContext())
    assert body_of(read_first)["Status"] == "FAILED"
    assert "RuntimeError: b broke" in body_of(read_first)["Reason"]

    healthy = asynccfn.lambda_entry(counting_resource(calls), journal=journal)
    retry = {**event, "ResponseURL": second_url}
    with closing_handler(healthy):
        assert healthy(retry, FakeLambdaContext())["outcome"] == "SUCCESS"
        # a late duplicate of the first attempt changes nothing
        assert healthy(dict(event), FakeLambdaContext())["outcome"] == "stale-attempt"
    assert calls == ["a", "b", "b"]  # a kept, b re-run
    assert body_of(read_second)["Status"] == "SUCCESS"


def test_invariant_2_renamed_step_fails_with_non_determinism_error(
    journal: str, presigned_response_url: Any
) -> None:
    url, _ = presigned_response_url()
    resource = asynccfn.Resource(update="replace", delete="nothing")
    names = iter(["first", "renamed"])

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step(next(names), lambda: 1)
        raise asynccfn.Failed("stop after the first step")

    handler = asynccfn.lambda_entry(resource, journal=journal)
    event = event_for("create", url)
    with closing_handler(handler):
        handler(event, FakeLambdaContext())
        # a new attempt replays the journal: the handler now names the position differently
        url2, read2 = presigned_response_url()
        handler({**event, "ResponseURL": url2}, FakeLambdaContext())
    reason = body_of(read2)["Reason"]
    assert "'first'" in reason and "'renamed'" in reason and "non-deterministic" in reason


def test_invariant_4_stale_invocation_cannot_write_the_operation_item(
    journal: str, presigned_response_url: Any
) -> None:
    from asynccfn.journal.store import ClaimOutcome, ClaimRequest

    url, _ = presigned_response_url()
    handler = asynccfn.lambda_entry(answering_resource(), journal=journal, lease=3)
    store = handler.runtime.journal  # type: ignore[attr-defined]
    event = event_for("create", url)
    op_id = event_op_id(event)

    def claim(owner: str) -> Any:
        return store.claim(
            ClaimRequest(
                op_id=op_id,
                stack_id=event["StackId"],
                logical_id="DemoBucket",
                request_id=event["RequestId"],
                resource_type="Custom::Bucket",
                request_type="Create",
                attempt="digest",
                request_digest="asked",
                owner=owner,
                token=None,
                from_cloudformation=False,
                lease=0.0,
                issued_at=time.time(),
                deadline=time.time() + 600,
            )
        )

    with closing_handler(handler):
        first = run(claim("first"))
        assert first.outcome is ClaimOutcome.CLAIMED
        time.sleep(2.1)  # the lease (0 s) plus the skew margin has passed
        second = run(claim("second"))
        assert second.outcome is ClaimOutcome.CLAIMED
        assert int(second.operation.fence) == int(first.operation.fence) + 1
        with pytest.raises(FenceLost):
            run(
                store.record_response(
                    first.operation,
                    body="{}",
                    response_status="SUCCESS",
                    status=OperationStatus.SUCCEEDED,
                    physical_id="x",
                    reason=None,
                )
            )
        with pytest.raises(FenceLost):
            run(store.renew_lease(op_id, int(first.operation.fence), time.time() + 30))


def test_invariant_4_lost_slot_race_adopts_the_recorded_value(journal: str) -> None:
    handler = asynccfn.lambda_entry(answering_resource(), journal=journal)
    store = handler.runtime.journal  # type: ignore[attr-defined]

    def step(result: str, fence: int) -> Any:
        return store.new_step(
            "op-race",
            "0#00001",
            name="s",
            kind="step",
            status="SUCCEEDED",
            attempt=1,
            op_attempt=1,
            started_at=time.time(),
            invocation=1,
            fence=fence,
            result=result,
        )

    with closing_handler(handler):
        winner = run(store.write_step(step('"winner"', 1), previous=None))
        loser = run(store.write_step(step('"loser"', 2), previous=None))
    assert winner.result == '"winner"'
    assert loser.result == '"winner"' and int(loser.fence) == 1


def test_invariant_10_expired_operation_deadline_answers_failed_with_elapsed_time(
    journal: str, presigned_response_url: Any
) -> None:
    url, read = presigned_response_url()
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        raise AssertionError("must not run past the deadline")

    handler = asynccfn.lambda_entry(resource, journal=journal, timeout=60)
    event = event_for("create", url)
    event["ServiceTimeout"] = 30
    # CloudFormation issued the request 50 s ago: the operation's 30 s deadline has passed
    event["ResponseURL"] = issued(url, seconds_ago=50)
    with closing_handler(handler):
        handler(event, FakeLambdaContext())
    reason = body_of(read)["Reason"]
    assert re.search(r"deadline: 5[0-9] s since", reason), reason
    assert "1 invocation" in reason


def test_invariant_10_answers_before_the_response_url_expires(
    journal: str, presigned_response_url: Any
) -> None:
    url, read = presigned_response_url()
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    handler = asynccfn.lambda_entry(resource, journal=journal)
    # issued almost two hours ago: the URL expires in 15 s
    event = event_for("create", issued(url, seconds_ago=7200 - 15))
    started = time.monotonic()
    with closing_handler(handler):
        assert handler(event, FakeLambdaContext(60))["outcome"] == "FAILED"
    assert time.monotonic() - started < 12
    assert "did not finish within its deadline" in body_of(read)["Reason"]


def test_handover_successor_queries_its_journal_alongside_its_claim(
    journal: str, presigned_response_url: Any
) -> None:
    """The successor's Query goes out first and its claim is sent before the Query's answer
    is back; it replays what the predecessor journaled, then runs the rest live."""
    from asynccfn._continuation import HANDOVER_KEY
    from asynccfn._protocol import allowed_hosts_from_env, parse_request
    from asynccfn.journal.store import ClaimRequest

    url, read = presigned_response_url()
    calls: list[str] = []
    handler = asynccfn.lambda_entry(counting_resource(calls), journal=journal)
    runtime = handler.runtime  # type: ignore[attr-defined]
    store = runtime.journal
    event = event_for("create", url, Steps=["a", "b", "c"])
    request = parse_request(event, allowed_hosts=allowed_hosts_from_env())
    op_id = operation_id(request.stack_id, request.logical_id, request.request_id)

    async def predecessor() -> str:
        """The first invocation: journals "a" and "b", then hands over."""
        now = time.time()
        claim = await store.claim(
            ClaimRequest.for_request(
                request,
                owner="predecessor",
                token=None,
                lease=300,
                issued_at=request.issued_at or now,
                deadline=now + 600,
            )
        )
        op = claim.operation
        for seq, name in enumerate(["a", "b"], start=1):
            step = store.new_step(
                op_id,
                f"0#{seq:05d}",
                name=name,
                kind="step",
                status="SUCCEEDED",
                attempt=1,
                op_attempt=int(op.attempt_no),
                started_at=now,
                ended_at=now,
                invocation=1,
                fence=int(op.fence),
                result=json.dumps(name.upper()),
            )
            await store.write_step(step, previous=None)
        await store.record_handover(
            op,
            token="tok-1",
            state=None,
            positions=[],
            physical_id=None,
            wake_at=None,
            stalled=0,
            note="handed over",
        )
        return "tok-1"

    order: list[tuple[str, str]] = []

    def sent(model: Any, **_: Any) -> None:
        order.append(("sent", model.name))

    def answered(model: Any, **_: Any) -> None:
        order.append(("answered", model.name))

    with closing_handler(handler):
        token = run(predecessor())
        client = run(runtime.clients.own("dynamodb"))
        client.meta.events.register("before-call.dynamodb", sent)
        client.meta.events.register("after-call.dynamodb", answered)
        successor = {**event, HANDOVER_KEY: {"token": token}}
        assert handler(successor, FakeLambdaContext()) == {"outcome": "SUCCESS"}
        # delivered again (Lambda's own retry of the async invoke): nothing runs twice
        assert handler(dict(successor), FakeLambdaContext())["outcome"] == "finished"
    # the claim is sent before the Query is answered: it did not wait for the journal
    assert order[:2] == [("sent", "Query"), ("sent", "UpdateItem")], order
    assert calls == ["c"]
    assert body_of(read)["Data"] == {"Calls": 1}


def test_invariant_1_a_state_too_large_to_hand_over_is_answered_failed(
    journal: str, presigned_response_url: Any
) -> None:
    """ctx.state grown past the journal's cap after the last step write, then the deadline:
    the hand-over cannot record it, and the stack gets FAILED saying why (the invocation
    raised instead, and its retries met the same state: nobody answered)."""
    from asynccfn.journal.size import STATE_CAP

    resource = asynccfn.Resource("Custom::Bucket", update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step("first", lambda: "ok")
        ctx.state["blob"] = "x" * (STATE_CAP + 1)
        await asyncio.sleep(30)  # cut off by the soft deadline: a hand-over
        return asynccfn.Success(physical_id="never")

    url, read = presigned_response_url()
    handler = asynccfn.lambda_entry(resource, journal=journal, reserve=1.0)
    with closing_handler(handler):
        assert handler(event_for("create", url), FakeLambdaContext(3))["outcome"] == "FAILED"
    body = body_of(read)
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("cannot hand over: ctx.state is "), body["Reason"]
    assert "x" * 100 not in body["Reason"]
