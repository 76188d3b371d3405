"""Area 6: races. Many deliveries of one event at once, an invocation overtaken by a newer
fence, and two attempts of one RequestId: one response per attempt, each body once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from typing import Any

import asynccfn
from asynccfn._entry import LambdaHandler
from asynccfn.journal.models import OperationStatus
from asynccfn.local import Outcome
from tests.reliability.conftest import Rel, URLs, wait_for
from tests.support import FakeLambdaContext, closing_handler, event_for, run


def counting(calls: Counter[str], *, seconds: float = 0.2, fail: str | None = None) -> Any:
    """A resource whose steps count their bodies in ``calls``."""
    resource = asynccfn.Resource(update="replace", delete="nothing")
    lock = threading.Lock()

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        ctx.state.setdefault("done", 0)
        for name in request.properties.get("Steps", ["a", "b"]):

            async def body(name: str = name) -> str:
                with lock:
                    calls[name] += 1
                await asyncio.sleep(seconds)
                if name == fail:
                    raise RuntimeError(f"{name} broke")
                return name.upper()

            await ctx.step(name, body)
            ctx.state["done"] += 1
        return asynccfn.Success(physical_id="raced", data={"Done": str(ctx.state["done"])})

    return resource


def handlers(resource: asynccfn.Resource, table: str, n: int) -> list[LambdaHandler]:
    """``n`` warm containers of one function: each its own runtime and clients."""
    made = [asynccfn.lambda_entry(resource, journal=table, lease=3) for _ in range(n)]
    warm = [h for h in made if isinstance(h, LambdaHandler)]
    for handler in warm:
        run(handler.runtime.clients.own("dynamodb"))
        run(handler.runtime.clients.get("lambda"))
    return warm


def close_all(made: list[LambdaHandler]) -> None:
    for handler in made:
        run(handler.runtime.close())


def deliver_all(made: list[LambdaHandler], events: list[dict[str, Any]]) -> list[str]:
    """Deliver ``events[i]`` to container ``i % len(made)``, all at once; the outcomes."""

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(
            *(
                made[i % len(made)].runtime.invoke(dict(e), FakeLambdaContext(30))
                for i, e in enumerate(events)
            )
        )

    return [result.outcome for result in run(all_at_once())]


def test_fifty_concurrent_deliveries_answer_once_and_run_each_body_once(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    calls: Counter[str] = Counter()
    url = urls.issue()
    event = event_for("create", url.url, Steps=["a", "b"])
    made = handlers(counting(calls), journal_table, 10)
    try:
        outcomes = deliver_all(made, [event] * 50)
    finally:
        close_all(made)
    assert outcomes.count("SUCCESS") == 1, Counter(outcomes)
    assert set(outcomes) <= {"SUCCESS", "live-duplicate", "finished"}, Counter(outcomes)
    assert calls == {"a": 1, "b": 1}
    assert [json.loads(b)["Data"] for b in url.stored()] == [{"Done": "2"}]


def test_fifty_deliveries_through_lambda_answer_once(rel: Rel) -> None:
    fn = rel.deploy("busy", timeout=10, concurrency=4)
    sent = rel.event(Steps=2, Seconds=0.3)
    for _ in range(50):
        rel.deliver(fn, sent)
    assert sent.response()["Data"] == {"Done": "2", "Total": "30"}
    rel.wait_idle()
    # A duplicate that finds the response recorded but not yet marked posted re-posts the
    # same bytes: still one response.
    assert len(set(sent.url.stored())) == 1
    assert rel.ran("start 1") == 1 and rel.ran("start 2") == 1, rel.runs()
    results = Counter(str(r.result) for r in rel.records(fn))
    assert sum(results.values()) == 50 and results["{'outcome': 'SUCCESS'}"] == 1, results
    assert set(results) <= {
        "{'outcome': 'SUCCESS'}",
        "{'outcome': 'live-duplicate'}",
        "{'outcome': 'finished'}",
        "{'outcome': 're-posted'}",
    }, results


def test_an_invocation_overtaken_by_a_newer_fence_stops_without_running_a_body_again(
    rel: Rel,
) -> None:
    """The first invocation freezes after step 1 (its loop blocked: no heartbeat); once its
    lease has run out a redelivery claims the operation with a newer fence and finishes it.
    When the first thaws it must not run the later steps' bodies again, nor answer."""
    fn = rel.deploy("frozen", timeout=40, lease=3.0, concurrency=2)
    sent = rel.send(fn, Steps=3, Seconds=0.2, BlockAfterStep=1, BlockSeconds=30)
    wait_for(lambda: rel.ran("blocking"), timeout=30)

    def lease_over() -> bool:
        op = rel.detail(sent).operation
        until = op.lease_until.timestamp() if op.lease_until else 0.0
        return time.time() > until + 2.3

    wait_for(lease_over, timeout=20, interval=0.2)
    rel.deliver(fn, sent)
    response = sent.response(timeout=40)
    assert response["Status"] == "SUCCESS" and response["Data"]["Done"] == "3", response
    (rel.run_dir / "thaw").touch()  # the first invocation wakes up, overtaken
    rel.wait_idle()
    assert len(sent.url.stored()) == 1
    for i in (1, 2, 3):
        assert rel.ran(f"start {i}") == 1, rel.runs()
    outcomes = sorted(str(r.result) for r in rel.records(fn))
    assert outcomes == ["{'outcome': 'SUCCESS'}", "{'outcome': 'fence-lost'}"], outcomes
    assert all(r.outcome is Outcome.SUCCESS for r in rel.records(fn))
    op = rel.detail(sent).operation
    assert op.status is OperationStatus.SUCCEEDED and op.fence == 2


def test_a_retried_deployment_keeps_succeeded_steps_and_answers_each_attempt_once(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    calls: Counter[str] = Counter()
    first = urls.issue(issued_ago=600)
    second = urls.issue()
    event = event_for("create", first.url, Steps=["a", "b"])
    retry = {**event, "ResponseURL": second.url}
    failing = handlers(counting(calls, fail="b"), journal_table, 1)[0]
    with closing_handler(failing):
        assert failing(event, FakeLambdaContext(20))["outcome"] == "FAILED"
    healthy = handlers(counting(calls), journal_table, 6)
    try:
        # the new attempt and its duplicates, with late duplicates of the old one
        outcomes = deliver_all(healthy, [retry] * 6 + [event] * 6)
    finally:
        close_all(healthy)
    assert outcomes[:6].count("SUCCESS") == 1, outcomes
    assert set(outcomes[6:]) <= {"stale-attempt", "live-duplicate", "finished"}, outcomes
    assert calls == {"a": 1, "b": 2}  # a kept; b failed in attempt 1, ran again in attempt 2
    assert [json.loads(b)["Status"] for b in first.stored()] == ["FAILED"]
    assert [json.loads(b)["Status"] for b in second.stored()] == ["SUCCESS"]


def test_a_late_first_attempt_does_not_supersede_the_retry(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """CloudFormation's retry (a newer ResponseURL) is answered even when the first attempt's
    event, held back in Lambda's queue, arrives while the retry runs or after it."""
    calls: Counter[str] = Counter()
    old = urls.issue(issued_ago=900, expect_answer=False)
    new = urls.issue()
    event = event_for("create", new.url, Steps=["a", "b"])
    late = {**event, "ResponseURL": old.url}
    made = handlers(counting(calls, seconds=0.5), journal_table, 2)

    async def retry_then_late_first() -> list[Any]:
        retry = asyncio.ensure_future(made[0].runtime.invoke(dict(event), FakeLambdaContext(20)))
        await asyncio.sleep(0.3)  # the retry holds the operation, inside step a
        first = await made[1].runtime.invoke(dict(late), FakeLambdaContext(20))
        return [await retry, first]

    try:
        outcomes = [r.outcome for r in run(retry_then_late_first())]
    finally:
        close_all(made)
    assert outcomes == ["SUCCESS", "stale-attempt"], outcomes
    assert [json.loads(b)["Status"] for b in new.stored()] == ["SUCCESS"]
    assert old.stored() == []
    assert calls == {"a": 1, "b": 1}
