"""Area 2: DynamoDB answering throttling errors, 500s (some after the write took effect) and
slowly, through a fault-injecting proxy in front of DynamoDB Local.

Random faults must be absorbed by botocore's own retries (the clients' standard retry mode):
every operation completes, no invocation fails, no step body runs twice. An outage longer than
those retries makes the invocation raise, so that Lambda's retry finishes the operation from
its journal: the stack never gets a FAILED answer for DynamoDB's trouble.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

import asynccfn
from asynccfn._entry import LambdaHandler
from asynccfn._errors import JournalError
from asynccfn.journal.models import OperationStatus, StepStatus
from asynccfn.journal.query import Journal
from asynccfn.local import Outcome
from tests.reliability._ddb_proxy import KINDS, DynamoDBFaultProxy
from tests.reliability._tally import count
from tests.reliability.conftest import Rel, URLs, wait_for
from tests.support import FakeLambdaContext, event_for, event_op_id, run


@pytest.fixture
def proxy(dynamodb_endpoint: str, request: pytest.FixtureRequest) -> Iterator[DynamoDBFaultProxy]:
    seed = sum(map(ord, request.node.name))
    with DynamoDBFaultProxy(dynamodb_endpoint, seed=seed, rate=0.3) as server:
        yield server


def survived(proxy: DynamoDBFaultProxy) -> None:
    """Count the proxy's faults; the test has shown every operation came through them."""
    injected = proxy.injected
    count(ddb_faults_injected=injected, ddb_faults_survived=injected)


def test_operations_complete_through_random_dynamodb_faults(
    rel: Rel, proxy: DynamoDBFaultProxy
) -> None:
    # A lease long enough for renewals retried through the faults: a renewal never outlasts
    # the lease, and with 3 s one that botocore spaced out can end the invocation (Lambda's
    # retry then finishes the operation; this test asks every invocation to succeed). One
    # invocation of four operations did not succeed in a CI run with 3 s.
    fn = rel.deploy("faulty", timeout=15, dynamodb=proxy.endpoint_url, concurrency=3, lease=10)
    shapes: list[dict[str, Any]] = [
        {"Steps": 3},
        {"Steps": 4, "Seconds": 0.2},
        {"Steps": 3, "Secret": "not-for-logs-" + "q" * 20},
        {"Steps": 3, "PauseAt": 2},  # a hand-over through the faults too
    ]
    sent = [rel.send(fn, Tag=f"t{i}", **shape) for i, shape in enumerate(shapes)]
    for i, (one, shape) in enumerate(zip(sent, shapes, strict=True)):
        response = one.response(timeout=60)
        assert response["Status"] == "SUCCESS", response
        if "Secret" not in shape:
            assert response["Data"]["Done"] == str(shape["Steps"]), response
        for step in range(1, shape["Steps"] + 1):
            assert rel.ran(f"start {step}", tag=f"t{i}") == 1, rel.runs()
    rel.wait_idle()
    assert all(r.outcome is Outcome.SUCCESS for r in rel.records(fn)), rel.records(fn)
    assert all(r.result["outcome"] != "FAILED" for r in rel.records(fn))
    for one, shape in zip(sent, shapes, strict=True):
        detail = rel.detail(one)
        assert detail.finished and detail.operation.status is OperationStatus.SUCCEEDED
        done = [s for s in detail.steps if s.name.startswith("step-")]
        assert len(done) == shape["Steps"]
        assert all(s.status is StepStatus.SUCCEEDED for s in done)
    assert proxy.injected >= 5, proxy.faults
    assert len(proxy.faults) >= 3, proxy.faults  # several kinds, lost replies among them
    survived(proxy)


def test_a_dynamodb_outage_raises_and_lambdas_retry_finishes_the_operation(
    rel: Rel, proxy: DynamoDBFaultProxy
) -> None:
    proxy.rate = 0.0
    # botocore spaces its five attempts by up to 1, 2, 4 and 8 s: room for all of them
    fn = rel.deploy("outage", timeout=30, dynamodb=proxy.endpoint_url, retry_delays=(0.5, 1.0))
    sent = rel.send(fn, Steps=3, Seconds=0.6)
    wait_for(lambda: rel.ran("start 2"), timeout=30)
    # every attempt botocore makes to record step 2 fails
    proxy.fail_next("PutItem", times=5, kind="internal")
    response = sent.response(timeout=60)
    assert response["Status"] == "SUCCESS", response
    assert response["Data"] == {"Done": "3", "Total": "60"}
    rel.wait_idle()
    outcomes = [(r.attempt, r.outcome) for r in rel.records(fn)]
    assert outcomes == [(1, Outcome.ERROR), (2, Outcome.SUCCESS)], outcomes
    error = rel.records(fn)[0].error or {}
    assert error.get("errorType") == "JournalError", error
    assert rel.ran("start 1") == 1 and rel.ran("start 3") == 1
    assert rel.ran("start 2") == 2 and rel.ran("end 2") == 2  # its record was lost: ran again
    survived(proxy)


def test_many_concurrent_operations_in_process_through_random_faults(
    local_env: str,
    journal_table: str,
    urls: URLs,
    proxy: DynamoDBFaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint_url)
    proxy.rate = 0.35
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        ctx.state["n"] = 0
        for i in range(3):
            await ctx.step(f"s{i}", asyncio.sleep, 0.05, i)
            ctx.state["n"] += 1
        return asynccfn.Success(physical_id="p", data={"N": str(ctx.state["n"])})

    # A lease long enough for a renewal retried through the faults (botocore's backoff, 16
    # operations on two shared cores) to succeed inside it: a renewal never outlasts the lease.
    made = [asynccfn.lambda_entry(resource, journal=journal_table, lease=10) for _ in range(4)]
    handlers = [h for h in made if isinstance(h, LambdaHandler)]
    issued = [urls.issue() for _ in range(16)]
    events = [event_for("create", u.url) for u in issued]

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(
            *(
                handlers[i % 4].runtime.invoke(dict(e), FakeLambdaContext(60))
                for i, e in enumerate(events)
            )
        )

    try:
        outcomes = [r.outcome for r in run(all_at_once())]
    finally:
        for handler in handlers:
            run(handler.runtime.close())
    assert outcomes == ["SUCCESS"] * 16, outcomes
    for url in issued:
        assert [json.loads(b)["Data"] for b in url.stored()] == [{"N": "3"}]
    reader = Journal(journal_table, region="us-east-1", endpoint_url=local_env)
    for event in events:
        op_id = event_op_id(event)
        detail = reader.get_operation(op_id)
        assert detail.finished and [s.result for s in detail.steps] == [0, 1, 2]
    assert set(proxy.faults) == set(KINDS), proxy.faults
    survived(proxy)


def _one_step_resource(ran: list[str]) -> asynccfn.Resource:
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def body() -> str:
            ran.append(request.request_id)
            return "done"

        await ctx.step("only", body)
        return asynccfn.Success(physical_id="p")

    return resource


def test_invariant_4_a_claim_whose_reply_was_lost_is_recognised_as_its_own(
    local_env: str,
    journal_table: str,
    urls: URLs,
    proxy: DynamoDBFaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The claim's UpdateItem takes effect and its reply is lost; botocore's retry then meets
    the claim's own effect (condition failed). The invocation must know its own hand (the
    owner it wrote carries its nonce) and run: not wait out its own lease as another
    holder's, and above all not stand aside as a duplicate, leaving the stack unanswered.
    The step's record (a conditional PutItem) loses its reply too: its fence says it is the
    invocation's own, and the body does not run again."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint_url)
    proxy.rate = 0.0
    ran: list[str] = []
    handler = asynccfn.lambda_entry(_one_step_resource(ran), journal=journal_table, lease=30)
    assert isinstance(handler, LambdaHandler)
    url = urls.issue()
    event = event_for("create", url.url)
    reader = Journal(journal_table, region="us-east-1", endpoint_url=local_env)
    try:
        proxy.fail_next("UpdateItem", times=1, kind="lost-reply")  # the first claim
        proxy.fail_next("PutItem", times=1, kind="lost-reply")  # ... and its step's record
        assert run(handler.runtime.invoke(dict(event), FakeLambdaContext(60))).outcome == (
            "SUCCESS"
        )
        operation = reader.get_operation(event_op_id(event)).operation
        assert operation.fence == 1 and operation.invocations == 1  # claimed once
        # a retried deployment (new URL): the new attempt's claim loses its reply too
        retry_url = urls.issue()
        proxy.fail_next("UpdateItem", times=1, kind="lost-reply")
        retry = {**event, "ResponseURL": retry_url.url}
        assert run(handler.runtime.invoke(retry, FakeLambdaContext(60))).outcome == "SUCCESS"
    finally:
        run(handler.runtime.close())
    operation = reader.get_operation(event_op_id(event)).operation
    assert operation.fence == 2 and operation.invocations == 2
    assert proxy.faults["lost-reply"] == 3
    assert ran == [event["RequestId"]]  # its own record stood, and for the new attempt
    assert [json.loads(b)["Status"] for b in url.stored()] == ["SUCCESS"]
    assert [json.loads(b)["Status"] for b in retry_url.stored()] == ["SUCCESS"]
    survived(proxy)


def test_a_table_that_never_returns_the_refused_item_fails_the_claim_after_a_few_tries(
    local_env: str,
    journal_table: str,
    urls: URLs,
    proxy: DynamoDBFaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A live holder, and a duplicate delivery whose refused claims come back without the
    item (as from a table that ignores ReturnValuesOnConditionCheckFailure): the claim looks
    again a bounded number of times, then raises JournalError for Lambda's retry, instead of
    recursing without end."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint_url)
    proxy.rate = 0.0
    resource = asynccfn.Resource(update="replace", delete="nothing")
    holding, release = asyncio.Event(), asyncio.Event()

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        holding.set()
        await release.wait()
        return asynccfn.Success(physical_id="p")

    holder, duplicate = (
        asynccfn.lambda_entry(resource, journal=journal_table, lease=60) for _ in range(2)
    )
    assert isinstance(holder, LambdaHandler) and isinstance(duplicate, LambdaHandler)
    url = urls.issue()
    event = event_for("create", url.url)

    async def scenario() -> None:
        held = asyncio.ensure_future(holder.runtime.invoke(dict(event), FakeLambdaContext(60)))
        await asyncio.wait_for(holding.wait(), 10)
        proxy.fail_next("UpdateItem", times=5, kind="no-item")
        try:
            with pytest.raises(JournalError, match="does not return the item of a failed"):
                await duplicate.runtime.invoke(dict(event), FakeLambdaContext(60))
        finally:
            release.set()
        assert (await held).outcome == "SUCCESS"

    try:
        run(scenario())
    finally:
        run(holder.runtime.close())
        run(duplicate.runtime.close())
    assert duplicate.runtime.journal.requests == 5  # five claims, then it gave up
    assert [json.loads(b)["Status"] for b in url.stored()] == ["SUCCESS"]
