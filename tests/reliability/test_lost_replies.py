"""Conditional writes whose reply is lost after they took effect (DESIGN.md invariants 3, 7
and 11): the writer recognises its own record when botocore's retry meets it.

A planned-fault proxy (a subclass of the suite's fault proxy) answers one chosen DynamoDB
request with a 500 after forwarding it, so botocore's retry meets the write's own effect;
every fault is planned for one request picked by its operation and its body, never by chance.
One reply is held until a timer well past the soft deadline lets it go.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

import asynccfn
from asynccfn._entry import LambdaHandler
from tests.journal.scenarios import FakeInvokeAPI
from tests.reliability._ddb_proxy import DynamoDBFaultProxy
from tests.reliability._endpoint import IssuedURL
from tests.reliability.conftest import URLs
from tests.runtime.test_sensitive_inprocess import lambdas  # noqa: F401
from tests.support import FakeLambdaContext, event_for, run

# -- the planned-fault proxy --------------------------------------------------------------------


@dataclass
class Plan:
    operation: str
    kind: str  # "lost-reply", "no-item", "internal"
    match: Callable[[dict[str, Any]], bool]
    times: int = 1
    hits: int = 0
    # "lost-reply" only: the 500 is held back until this is set (the caller gave up first)
    until: threading.Event | None = None


# The held plan's event for the request being handled (each request runs in a task of its own).
_HELD_UNTIL: ContextVar[threading.Event | None] = ContextVar("_HELD_UNTIL", default=None)


class PlannedProxy(DynamoDBFaultProxy):
    """Forwards everything, except the requests a plan picks (by operation and body): those
    get the suite's proxy's fault of the plan's kind, a lost reply held back if planned so."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, seed=0, rate=0.0)
        self.plans: list[Plan] = []

    def plan(
        self,
        operation: str,
        kind: str,
        match: Callable[[dict[str, Any]], bool] = lambda _: True,
        times: int = 1,
        until: threading.Event | None = None,
    ) -> Plan:
        planned = Plan(operation, kind, match, times, until=until)
        with self._lock:
            self.plans.append(planned)
        return planned

    def _pick(self, operation: str, body: dict[str, Any]) -> Plan | None:
        with self._lock:
            for planned in self.plans:
                if planned.operation == operation and planned.hits < planned.times:
                    if planned.match(body):
                        planned.hits += 1
                        self.faults[planned.kind] += 1
                        return planned
        return None

    def _choose(self, operation: str, body: bytes) -> tuple[str | None, float]:
        planned = self._pick(operation, json.loads(body or b"{}"))
        if planned is None:
            _HELD_UNTIL.set(None)
            return None, 0.0
        _HELD_UNTIL.set(planned.until if planned.kind == "lost-reply" else None)
        return planned.kind, 0.0

    async def _forward(
        self, request: web.Request, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        forwarded = await super()._forward(request, body)
        until = _HELD_UNTIL.get()
        if until is not None:
            # the written effect stands meanwhile; the caller is gone by then
            await asyncio.get_running_loop().run_in_executor(None, until.wait)
        return forwarded


@pytest.fixture
def proxy(dynamodb_endpoint: str) -> Iterator[PlannedProxy]:
    with PlannedProxy(dynamodb_endpoint) as server:
        yield server


@pytest.fixture
def via_proxy(local_env: str, proxy: PlannedProxy, monkeypatch: pytest.MonkeyPatch) -> PlannedProxy:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint_url)
    return proxy


def step_named(name: str) -> Callable[[dict[str, Any]], bool]:
    """A PutItem of the step record named ``name``."""
    return lambda body: body.get("Item", {}).get("name", {}).get("S") == name


@contextmanager
def containers(
    resource: asynccfn.Resource, table: str, n: int, **options: Any
) -> Iterator[list[Any]]:
    """``n`` containers' handlers of ``resource``, their clients closed afterwards."""
    made = [asynccfn.lambda_entry(resource, journal=table, **options) for _ in range(n)]
    assert all(isinstance(h, LambdaHandler) for h in made)
    try:
        yield made
    finally:
        for handler in made:
            run(handler.runtime.close())


def charging(bodies: list[int]) -> asynccfn.Resource:
    """A Create running the at-most-once step "charge", whose body notes its invocation in
    ``bodies``; it answers the step's result as Data."""
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def charge() -> str:
            bodies.append(ctx.invocation)
            return "charged"

        result = await ctx.step("charge", charge, at_most_once=True)
        return asynccfn.Success(physical_id="p", data={"Result": result})

    return resource


# -- step writes ----------------------------------------------------------------------------------


def test_invariant_11_a_step_whose_reply_was_lost_records_its_eventstate(
    via_proxy: PlannedProxy,
    journal_table: str,
    urls: URLs,
    lambdas: FakeInvokeAPI,  # noqa: F811
) -> None:
    """Step a's body sets ctx.state["phase"]; its record (with that EventState) takes effect,
    its reply is lost, and botocore's retry meets the record (ALL_OLD, this invocation's own).
    The executor takes it for its own write and notes its state as recorded, so when step
    b's body puts the state back to {}, b journals that change, and replay after the
    hand-over takes the same branch (it once restored {"phase": "building"} after b: a
    NonDeterminismError, FAILED for a lost reply)."""
    proxy = via_proxy
    resource = asynccfn.Resource(update="replace", delete="nothing")
    bodies: list[str] = []

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def build() -> str:
            bodies.append("a")
            ctx.state["phase"] = "building"  # what the body left behind, journaled with it
            return "a"

        async def finish() -> str:
            bodies.append("b")
            del ctx.state["phase"]  # back to the EventState before step a
            return "b"

        async def other(name: str) -> str:
            bodies.append(name)
            return name

        await ctx.step("a", build)
        await ctx.step("b", finish)
        if ctx.state.get("phase") == "building":  # never true when run live
            await ctx.step("undo", other, "undo")
        await ctx.sleep(8.0, "settle")  # past the first invocation's soft deadline
        await ctx.step("c", other, "c")
        return asynccfn.Success(physical_id="p", data={"Phase": str(ctx.state.get("phase"))})

    proxy.plan("PutItem", "lost-reply", step_named("a"))
    url = urls.issue()
    event = event_for("create", url.url)
    with containers(resource, journal_table, 2, reserve=1.0) as (holder, successor):

        async def scenario() -> list[str]:
            handed = await holder.runtime.invoke(dict(event), FakeLambdaContext(5.0))
            [payload] = lambdas.payloads
            done = await successor.runtime.invoke(dict(payload), FakeLambdaContext(30))
            return [handed.outcome, done.outcome]

        outcomes = run(scenario())
    assert proxy.faults["lost-reply"] == 1
    response = url.single_response()
    assert outcomes == ["handed-over", "SUCCESS"], (outcomes, response.get("Reason"))
    assert response["Data"] == {"Phase": "None"}
    assert bodies == ["a", "b", "c"]


def step_status(name: str, status: str) -> Callable[[dict[str, Any]], bool]:
    """A PutItem of step ``name``'s record with ``status``."""
    return lambda body: step_named(name)(body) and body["Item"]["status"]["S"] == status


def test_invariant_3_an_at_most_once_start_refused_without_the_item_reads_its_own_slot(
    via_proxy: PlannedProxy, journal_table: str, urls: URLs
) -> None:
    """An at-most-once step's STARTED record takes effect, its reply is lost, and botocore's
    retry is refused without the Item (the no-item fault). The store reads the slot, finds
    its own start and the body runs once (it once called the slot "vanished" and raised;
    Lambda's retry then answered FAILED, StepInterrupted, for a body that never ran)."""
    proxy = via_proxy
    resource = asynccfn.Resource(update="replace", delete="nothing")
    bodies: list[str] = []

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def body() -> str:
            bodies.append("only")
            return "done"

        result = await ctx.step("only", body, at_most_once=True)
        return asynccfn.Success(physical_id="p", data={"Result": result})

    proxy.plan("PutItem", "lost-reply", step_status("only", "STARTED"))
    proxy.plan("PutItem", "no-item", step_status("only", "STARTED"))  # botocore's retry
    url = urls.issue()
    event = event_for("create", url.url)
    outcomes: list[str] = []
    with containers(resource, journal_table, 1) as [handler]:

        async def scenario() -> None:
            try:
                result = await handler.runtime.invoke(dict(event), FakeLambdaContext(30, "req-1"))
                outcomes.append(result.outcome)
            except Exception as exc:  # Lambda retries an invocation that raised
                outcomes.append(type(exc).__name__)
                retry = await handler.runtime.invoke(dict(event), FakeLambdaContext(30, "req-1"))
                outcomes.append(retry.outcome)

        run(scenario())
    assert proxy.faults == {"lost-reply": 1, "no-item": 1}, proxy.faults
    response = url.single_response()
    assert response["Status"] == "SUCCESS", (outcomes, response.get("Reason"))
    assert len(bodies) == 1, bodies


def held_start(
    proxy: PlannedProxy,
    resource: asynccfn.Resource,
    journal_table: str,
    urls: URLs,
    lambdas: FakeInvokeAPI,  # noqa: F811
    *,
    seconds: float,
    reserve: float,
    release: float,
) -> tuple[list[str], IssuedURL]:
    """A holder (a ``seconds`` invocation keeping ``reserve``) runs ``resource``'s Create while
    the reply to step "charge"'s STARTED write is held until ``release`` seconds into it,
    then lost (a 500: botocore's retry meets the write's own record); then a successor runs
    the hand-over, if there was one. The holder's outcome (or what it raised) and the
    successor's, and the URL they answer."""
    released = threading.Event()
    proxy.plan("PutItem", "lost-reply", step_status("charge", "STARTED"), until=released)
    url = urls.issue()
    event = event_for("create", url.url)
    with containers(resource, journal_table, 2, reserve=reserve) as (holder, successor):

        async def scenario() -> list[str]:
            timer = threading.Timer(release, released.set)
            timer.start()
            try:
                handed = await holder.runtime.invoke(dict(event), FakeLambdaContext(seconds))
                outcomes = [handed.outcome]
            except Exception as exc:
                outcomes = [f"{type(exc).__name__}: {exc}"]
            finally:
                timer.cancel()
                released.set()
            assert len(lambdas.payloads) <= 1, "one hand-over at most"
            for payload in lambdas.payloads:
                done = await successor.runtime.invoke(dict(payload), FakeLambdaContext(30))
                outcomes.append(done.outcome)
            return outcomes

        try:
            return run(scenario()), url
        finally:
            released.set()


def test_invariant_3_an_at_most_once_start_recorded_as_the_soft_deadline_came_runs_once_later(
    via_proxy: PlannedProxy,
    journal_table: str,
    urls: URLs,
    lambdas: FakeInvokeAPI,  # noqa: F811
) -> None:
    """An at-most-once step starts well before the soft deadline; its STARTED record takes
    effect, but the reply is held past the soft deadline (then lost: a 500, and botocore's
    retry meets the record itself). The body never ran: the holder waits for the write and
    withdraws the start (the attempt recorded as not run) before it hands over, and the
    successor runs the body, once, instead of failing it as interrupted."""
    proxy = via_proxy
    bodies: list[int] = []
    # The reply is let go 0.3 s after the soft deadline (4 s into an 8 s invocation with a
    # 4 s reserve); the holder waits for it until half the reserve (1.95 s) has passed,
    # which leaves botocore's retry (its first backoff is under 1 s) and the withdrawal
    # 1.65 s, and the hand-over the other half.
    outcomes, url = held_start(
        proxy,
        charging(bodies),
        journal_table,
        urls,
        lambdas,
        seconds=8.0,
        reserve=4.0,
        release=4.3,
    )
    assert proxy.faults["lost-reply"] == 1
    response = url.single_response()
    assert outcomes == ["handed-over", "SUCCESS"], (outcomes, response.get("Reason"))
    assert bodies == [2]


def test_invariant_7_steps_whose_replies_were_lost_count_as_progress(
    via_proxy: PlannedProxy,
    journal_table: str,
    urls: URLs,
    lambdas: FakeInvokeAPI,  # noqa: F811
) -> None:
    """Each invocation of a chain runs one long step to its end and hands over before the
    next (its ``needs`` exceeds what is left). Each step's record takes effect and its reply
    is lost (botocore's retry meets it: ALL_OLD, the invocation's own record). Each counts
    as progress, so the chain goes on to SUCCESS (it once answered FAILED "no progress in 5
    invocations in a row" although every invocation completed a step)."""
    proxy = via_proxy
    resource = asynccfn.Resource(update="replace", delete="nothing")
    bodies: list[str] = []
    steps = [f"s{i}" for i in range(1, 7)]

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def body(name: str) -> str:
            bodies.append(name)
            await asyncio.sleep(1.2)
            return name

        for name in steps:
            await ctx.step(name, body, name, needs=2.5)
        return asynccfn.Success(physical_id="p", data={"Steps": str(len(steps))})

    for name in steps:
        proxy.plan("PutItem", "lost-reply", step_named(name))
    url = urls.issue()
    event = event_for("create", url.url)
    with containers(resource, journal_table, 1, reserve=1.0) as [handler]:

        async def scenario() -> list[str]:
            outcomes: list[str] = []
            payload: dict[str, Any] = dict(event)
            for _ in range(len(steps) + 1):
                result = await handler.runtime.invoke(payload, FakeLambdaContext(4.0))
                outcomes.append(result.outcome)
                if result.outcome != "handed-over":
                    break
                payload = dict(lambdas.payloads[-1])
            return outcomes

        outcomes = run(scenario())
    response = url.single_response()
    assert bodies == steps, (bodies, outcomes)
    assert outcomes[-1] == "SUCCESS", (outcomes, response.get("Reason"))
    assert response["Status"] == "SUCCESS"


def test_invariant_3_a_withdrawn_at_most_once_start_does_not_use_up_a_retry_attempt(
    via_proxy: PlannedProxy,
    journal_table: str,
    urls: URLs,
    lambdas: FakeInvokeAPI,  # noqa: F811
) -> None:
    """``at_most_once=True, retry=RetryPolicy(max_attempts=2)``: the first attempt's start is
    recorded as the soft deadline comes and withdrawn ("it did not run"). The body still
    gets its two real attempts: the withdrawn one, which never ran, is not counted (it once
    was, and the body's first transient failure was final)."""
    proxy = via_proxy
    resource = asynccfn.Resource(update="replace", delete="nothing")
    bodies: list[int] = []

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def charge() -> str:
            bodies.append(ctx.invocation)
            if len(bodies) == 1:
                raise ConnectionError("the payment service was briefly unreachable")
            return "charged"

        result = await ctx.step(
            "charge",
            charge,
            at_most_once=True,
            retry=asynccfn.RetryPolicy(max_attempts=2, initial_delay=0.0, jitter=0.0),
        )
        return asynccfn.Success(physical_id="p", data={"Result": result})

    outcomes, url = held_start(
        proxy,
        resource,
        journal_table,
        urls,
        lambdas,
        seconds=8.0,
        reserve=4.0,
        release=4.3,
    )
    response = url.single_response()
    assert outcomes[0] == "handed-over", (outcomes, response.get("Reason"))
    assert outcomes[1] == "SUCCESS", (outcomes, bodies, response.get("Reason"))
    assert bodies == [2, 2]


def test_invariant_10_a_slow_at_most_once_start_at_the_soft_deadline_leaves_time_to_hand_over(
    via_proxy: PlannedProxy,
    journal_table: str,
    urls: URLs,
    lambdas: FakeInvokeAPI,  # noqa: F811
) -> None:
    """The STARTED write of an at-most-once step is slow (its reply comes 1.5 s after the
    invocation's hard deadline; a 6 s invocation with a 3 s reserve). The holder waits for
    it half the reserve at most, then gives it up and hands over in time (invariants 5 and
    10). The start it could not confirm stays: the successor counts it as interrupted, and
    the body never runs (at most once, never twice)."""
    proxy = via_proxy
    bodies: list[int] = []
    outcomes, url = held_start(
        proxy,
        charging(bodies),
        journal_table,
        urls,
        lambdas,
        seconds=6.0,
        reserve=3.0,
        release=7.5,
    )
    assert outcomes == ["handed-over", "FAILED"], outcomes
    [answer] = [json.loads(body) for body in url.stored()]
    assert "at-most-once step 'charge' was interrupted" in answer["Reason"], answer
    assert bodies == []
