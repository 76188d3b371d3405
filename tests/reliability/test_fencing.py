"""Area 7: fencing under overlap and forgery (DESIGN.md invariants 4, 5, 6, 9, 10).

Each test forces its interleaving with gates the handler waits on (asyncio events set by the
test), not with sleeps that may or may not overlap: two runtimes, as two warm containers of one
function, run in one event loop against DynamoDB Local, and the test decides which of them
moves when. A holder that "freezes" (a blocked loop, a paused container) is made so by ending
its lease in the journal, exactly what its missing renewals would have done.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import asynccfn
from asynccfn._entry import LambdaHandler
from asynccfn._errors import JournalError, LeaseLost, OperationBusy
from asynccfn._protocol import parse_request
from asynccfn._urls import allowed_hosts_from_env
from asynccfn.journal.models import op_pk
from asynccfn.journal.store import ClaimOutcome, ClaimRequest, JournalStore
from tests.journal.scenarios import FakeInvokeAPI
from tests.reliability._tally import count
from tests.reliability.conftest import URLs
from tests.support import (
    FakeLambdaContext,
    answering_resource,
    closing_handler,
    event_for,
    event_op_id,
    issued,
    run,
)

# -- plumbing ---------------------------------------------------------------------------------


class Gates:
    """Named asyncio events: the handler waits at one, the test opens it."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.handlers: list[asyncio.Task[Any]] = []  # handler tasks, some orphaned by a "crash"

    def __getitem__(self, name: str) -> asyncio.Event:
        return self._events.setdefault(name, asyncio.Event())

    async def reached(self, name: str, within: float = 10.0) -> None:
        await asyncio.wait_for(self[name].wait(), within)


def containers(
    resource: asynccfn.Resource, table: str, n: int = 2, **options: Any
) -> list[LambdaHandler]:
    """``n`` warm containers of one function, each with its own runtime and clients."""
    made = [asynccfn.lambda_entry(resource, journal=table, **options) for _ in range(n)]
    return [handler for handler in made if isinstance(handler, LambdaHandler)]


def close_all(handlers: list[LambdaHandler]) -> None:
    for handler in handlers:
        run(handler.runtime.close())


async def end_lease(handler: LambdaHandler, event: dict[str, Any]) -> None:
    """The holder froze: its lease has run out (as its missing renewals would have let it)."""
    client = await handler.runtime.clients.get("dynamodb")
    store = handler.runtime.journal
    assert isinstance(store, JournalStore)
    op_id = event_op_id(event)
    await client.update_item(
        TableName=store.table,
        Key={"pk": {"S": op_pk(op_id)}, "sk": {"S": "op"}},
        UpdateExpression="SET lease_until = :gone",
        ExpressionAttributeValues={":gone": {"N": "0"}},
    )


async def operation_item(handler: LambdaHandler, event: dict[str, Any]) -> dict[str, Any]:
    return await operation_item_of(handler, event_op_id(event))


async def operation_item_of(handler: LambdaHandler, op_id: str) -> dict[str, Any]:
    client = await handler.runtime.clients.get("dynamodb")
    store = handler.runtime.journal
    assert isinstance(store, JournalStore)
    answer = await client.get_item(
        TableName=store.table,
        Key={"pk": {"S": op_pk(op_id)}, "sk": {"S": "op"}},
        ConsistentRead=True,
    )
    item: dict[str, Any] = answer["Item"]
    return item


def gated_resource(
    gates: Gates, bodies: Counter[str], *, at_most_once: bool = False, names_id: bool = True
) -> asynccfn.Resource:
    """A Create that waits at gate ``enter-<invocation>`` before its one step, whose body
    counts itself and waits at gate ``body`` (both opened by the test). With ``names_id`` it
    sets ``ctx.physical_id`` first (journaled, fenced, before the step's live work)."""
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        task = asyncio.current_task()
        assert task is not None
        gates.handlers.append(task)
        if names_id:
            ctx.physical_id = "built-by-step"
        gates[f"waiting-{ctx.invocation}"].set()
        await gates[f"enter-{ctx.invocation}"].wait()

        async def body() -> str:
            bodies["build"] += 1
            gates["body-running"].set()
            await gates["body"].wait()
            return "built"

        built = await ctx.step("build", body, at_most_once=at_most_once)
        return asynccfn.Success(physical_id="built-by-step", data={"Built": built})

    return resource


def attempt_claim(
    event: dict[str, Any],
    digest: str,
    *,
    from_cloudformation: bool,
    issued_at: float,
    asking: dict[str, Any] | None = None,
) -> ClaimRequest:
    """The claim a new attempt (ResponseURL digest ``digest``) of ``event``'s request makes,
    sent to the store directly (its owner ``lambda-<digest>#nonce``), asking for what
    ``asking`` asks (the event itself by default)."""
    asked = parse_request(asking or event, allowed_hosts=allowed_hosts_from_env()).request_digest
    return ClaimRequest(
        op_id=event_op_id(event),
        stack_id=event["StackId"],
        logical_id=event["LogicalResourceId"],
        request_id=event["RequestId"],
        resource_type="Custom::Bucket",
        request_type="Create",
        attempt=digest,
        request_digest=asked,
        owner=f"lambda-{digest}#nonce",
        token=None,
        from_cloudformation=from_cloudformation,
        lease=30.0,
        issued_at=issued_at,
        deadline=time.time() + 600,
    )


def fake_arn_context(seconds: float, request_id: str | None = None) -> FakeLambdaContext:
    return FakeLambdaContext(seconds, request_id=request_id)


def in_task(coro: Awaitable[Any]) -> asyncio.Task[Any]:
    return asyncio.ensure_future(coro)


# -- 1. a forged "new attempt" ----------------------------------------------------------------


def test_invariant_9_forged_new_attempt_neither_takes_over_a_live_operation_nor_receives_its_answer(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    gates, bodies = Gates(), Counter[str]()
    holder, forger = containers(gated_resource(gates, bodies), journal_table)
    genuine = urls.issue()
    event = event_for("create", genuine.url)
    forged_url = urls.issue(expect_answer=False)  # on a host the user allowed (moto's, here)
    ids = "%7C".join(
        part.replace(":", "%3A")
        for part in (event["StackId"], event["LogicalResourceId"], event["RequestId"])
    )
    refused_outright = [
        # anyone's own S3 bucket: by default only CloudFormation's response buckets
        f"https://attacker-bucket.s3.amazonaws.com/{ids}?X-Amz-Date=20991231T000000Z",
        # CloudFormation's response bucket, but another operation's object
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/"
        "arn%3Aaws%3Acloudformation%3Aus-east-1%3A1%3Astack/x/y%7COther%7Cr?X-Amz-Signature=0",
    ]

    async def scenario() -> list[Any]:
        first = in_task(holder.runtime.invoke(dict(event), fake_arn_context(30)))
        await gates.reached("waiting-1")
        outcomes: list[Any] = []
        for url in refused_outright:
            result = await forger.runtime.invoke({**event, "ResponseURL": url}, fake_arn_context(3))
            outcomes.append(result.outcome)
        # The same ids on an allowed host, issued "later": it cannot prove it is CloudFormation's
        # newer attempt, so the live holder keeps the operation.
        later = issued(forged_url.url, seconds_ago=-3600)
        try:
            await forger.runtime.invoke({**event, "ResponseURL": later}, fake_arn_context(3))
        except OperationBusy as busy:
            outcomes.append(type(busy).__name__)
        gates["enter-1"].set()
        gates["body"].set()
        outcomes.append((await first).outcome)
        return outcomes

    try:
        outcomes = run(scenario())
        item = run(operation_item(holder, event))
        # The genuine event delivered again finds its own attempt answered.
        again = run(holder.runtime.invoke(dict(event), fake_arn_context(10))).outcome
    finally:
        close_all([holder, forger])
    count(forged_events_total=3)
    assert outcomes == [
        "malformed-unanswerable",
        "malformed-unanswerable",
        "OperationBusy",
        "SUCCESS",
    ], outcomes
    count(forged_events_refused=3)
    assert forged_url.puts() == []  # the forged URL received nothing, NoEcho or not
    assert genuine.single_response()["Data"] == {"Built": "built"}
    assert int(item["fence"]["N"]) == 1 and bodies == {"build": 1}
    assert again == "finished"


def test_invariant_9_only_a_cloudformation_url_issued_later_supersedes_a_live_holder(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """The store's rule for a new attempt of a request while the holder's lease is live."""
    handler = asynccfn.lambda_entry(answering_resource(), journal=journal_table)
    assert isinstance(handler, LambdaHandler)
    store = handler.runtime.journal
    assert isinstance(store, JournalStore)
    event = event_for("create", urls.issue(expect_answer=False).url)
    now = time.time()

    def attempt(digest: str, *, cloudformation: bool, issued_at: float) -> ClaimRequest:
        return attempt_claim(event, digest, from_cloudformation=cloudformation, issued_at=issued_at)

    with closing_handler(handler):
        first = run(store.claim(attempt("first", cloudformation=True, issued_at=now)))
        assert first.outcome is ClaimOutcome.CLAIMED
        unproven = run(store.claim(attempt("forged", cloudformation=False, issued_at=now + 60)))
        assert unproven.outcome is ClaimOutcome.BUSY
        not_newer = run(store.claim(attempt("same-time", cloudformation=True, issued_at=now)))
        assert not_newer.outcome is ClaimOutcome.BUSY
        older = run(store.claim(attempt("older", cloudformation=True, issued_at=now - 60)))
        assert older.outcome is ClaimOutcome.STALE_ATTEMPT
        # CloudFormation's URL, issued later, but the request asks for something else: a
        # superseded holder would PUT that attempt's answer to the URL CloudFormation waits on
        other = {**event, "ResourceProperties": {**event["ResourceProperties"], "Size": "huge"}}
        forged = attempt_claim(
            event, "other", from_cloudformation=True, issued_at=now + 60, asking=other
        )
        assert run(store.claim(forged)).outcome is ClaimOutcome.BUSY
        newer = run(store.claim(attempt("retry", cloudformation=True, issued_at=now + 60)))
        assert newer.outcome is ClaimOutcome.CLAIMED
        assert newer.operation.fence == first.operation.fence + 1
        assert newer.operation.past_attempts == ["first"]


def test_invariant_9_a_superseded_holder_answers_its_own_url_with_the_new_attempts_answer(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """A "newer" attempt whose URL only looks like CloudFormation's takes a live operation
    over, runs it, and cannot deliver its answer (its PUT is refused). The holder it
    superseded still knows the URL CloudFormation waits on: it stops its own work at its
    next fenced write, follows the operation, and PUTs the recorded answer there. The
    superseding attempt is played by its journal writes, in the order it makes them."""
    from asynccfn._follow import POLL
    from asynccfn.journal.models import OperationStatus

    gates, bodies = Gates(), Counter[str]()
    [holder] = containers(gated_resource(gates, bodies), journal_table, 1)
    genuine = urls.issue()
    event = event_for("create", genuine.url)
    op_id = event_op_id(event)
    store = holder.runtime.journal
    assert isinstance(store, JournalStore)
    answer = json.dumps(
        {
            "Status": "SUCCESS",
            "PhysicalResourceId": "built-by-the-new-attempt",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": {"Built": "built"},
        }
    )

    async def scenario() -> str:
        first = in_task(holder.runtime.invoke(dict(event), fake_arn_context(30)))
        await gates.reached("waiting-1")
        newer = await store.claim(
            attempt_claim(
                event, "the-newer-attempt", from_cloudformation=True, issued_at=time.time() + 60
            )
        )
        assert newer.outcome is ClaimOutcome.CLAIMED
        gates["enter-1"].set()  # the holder's fenced physical-id write: the fence is lost
        await asyncio.sleep(POLL * 1.5)  # it follows: nothing recorded yet
        assert not first.done() and genuine.puts() == []
        await store.record_response(
            newer.operation,
            body=answer,
            response_status="SUCCESS",
            status=OperationStatus.SUCCEEDED,
            physical_id="built-by-the-new-attempt",
            reason=None,
        )
        # its PUT to the look-alike URL is refused for good
        await store.mark_posted(op_id, "the-newer-attempt", undeliverable="HTTP 403")
        return str((await first).outcome)

    try:
        outcome = run(scenario())
        item = run(operation_item_of(holder, op_id))
    finally:
        close_all([holder])
    count(forged_events_total=1)
    assert outcome == "followed"
    assert bodies == {}  # the superseded holder never ran the body
    assert genuine.single_response()["PhysicalResourceId"] == "built-by-the-new-attempt"
    count(forged_events_refused=1)
    assert item["attempt"]["S"] == "the-newer-attempt" and item["status"]["S"] == "UNDELIVERABLE"


def test_invariant_9_an_attempt_asking_for_else_never_takes_over_a_lapsed_holder(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """A holder froze past its lease; an attempt with a CloudFormation-looking URL but other
    properties would take the lapsed operation over, and its answer (to another request) is
    not one the holder's URL can take. It is refused; the holder, back, renews its lease,
    finishes and answers its own URL."""

    gates, bodies = Gates(), Counter[str]()
    [holder] = containers(gated_resource(gates, bodies), journal_table, 1)
    genuine = urls.issue()
    event = event_for("create", genuine.url)
    store = holder.runtime.journal
    assert isinstance(store, JournalStore)
    other = {**event, "ResourceProperties": {**event["ResourceProperties"], "X": "y"}}

    async def scenario() -> str:
        first = in_task(holder.runtime.invoke(dict(event), fake_arn_context(30)))
        await gates.reached("waiting-1")
        await end_lease(holder, event)
        newer = await store.claim(
            attempt_claim(
                event, "else", from_cloudformation=True, issued_at=time.time() + 60, asking=other
            )
        )
        assert newer.outcome is ClaimOutcome.BUSY and newer.operation.fence == 1
        gates["enter-1"].set()
        gates["body"].set()
        return str((await first).outcome)

    try:
        outcome = run(scenario())
    finally:
        close_all([holder])
    count(forged_events_total=1)
    assert outcome == "SUCCESS" and bodies == {"build": 1}
    assert genuine.single_response()["Status"] == "SUCCESS"
    count(forged_events_refused=1)


def test_invariant_9_a_stale_attempt_whose_holder_crashed_answers_its_own_url_too(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """The holder of the genuine attempt crashed; a look-alike newer attempt of the same
    request took the operation over, and its PUT is refused. Lambda's retry of the genuine
    invocation is now a stale attempt: it follows the operation and PUTs the recorded answer
    to the URL CloudFormation waits on. One asking for something else cannot take a crashed
    holder's operation over: Lambda's retry of the genuine attempt resumes it."""
    import hashlib

    from asynccfn.journal.models import OperationStatus

    [retry] = containers(answering_resource(), journal_table, 1)
    store = retry.runtime.journal
    assert isinstance(store, JournalStore)
    genuine, unrelated = urls.issue(), urls.issue()
    now = time.time()

    def digest(url: str) -> str:
        return hashlib.sha256(url.encode()).hexdigest()

    def answer(event: dict[str, Any]) -> str:
        ids = {k: event[k] for k in ("StackId", "RequestId", "LogicalResourceId")}
        return json.dumps(
            {"Status": "SUCCESS", "PhysicalResourceId": "by-the-newer", "NoEcho": False, **ids}
        )

    async def superseded(event: dict[str, Any], asking: dict[str, Any]) -> Any:
        """The genuine attempt claimed (its holder then crashed); the newer one claims."""
        crashed = attempt_claim(
            event, digest(event["ResponseURL"]), from_cloudformation=True, issued_at=now
        ).replaced(lease=-10.0)  # its lease ran out with it
        assert (await store.claim(crashed)).outcome is ClaimOutcome.CLAIMED
        return await store.claim(
            attempt_claim(
                event, "newer", from_cloudformation=True, issued_at=now + 60, asking=asking
            )
        )

    async def scenario() -> tuple[str, str]:
        event = event_for("create", genuine.url)
        took = await superseded(event, event)
        assert took.outcome is ClaimOutcome.CLAIMED
        newer = took.operation
        following = in_task(retry.runtime.invoke(dict(event), fake_arn_context(30)))
        await asyncio.sleep(0.5)
        assert not following.done() and genuine.puts() == []  # nothing recorded yet
        await store.record_response(
            newer,
            body=answer(event),
            response_status="SUCCESS",
            status=OperationStatus.SUCCEEDED,
            physical_id="by-the-newer",
            reason=None,
        )
        await store.mark_posted(event_op_id(event), "newer", undeliverable="HTTP 403")
        # Another operation, whose newer attempt asks for other properties: refused.
        other = event_for("create", unrelated.url)
        changed = {**other, "ResourceProperties": {**other["ResourceProperties"], "X": "y"}}
        assert (await superseded(other, changed)).outcome is ClaimOutcome.BUSY
        resumed = await retry.runtime.invoke(dict(other), fake_arn_context(30))
        return str((await following).outcome), resumed.outcome

    try:
        followed, resumed = run(scenario())
    finally:
        close_all([retry])
    assert followed == "followed"
    assert genuine.single_response()["PhysicalResourceId"] == "by-the-newer"
    assert resumed == "SUCCESS" and unrelated.single_response()["Status"] == "SUCCESS"


# -- 2. the same Lambda request id, and a forged on-failure record ------------------------------


def test_invariant_4_the_same_request_id_does_not_walk_past_a_live_lease(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    gates, bodies = Gates(), Counter[str]()
    holder, duplicate = containers(gated_resource(gates, bodies), journal_table)
    url = urls.issue()
    event = event_for("create", url.url)
    request_id = "lambda-request-1"
    record = {
        "version": "1.0",
        "requestContext": {
            "requestId": request_id,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responsePayload": {"errorType": "Forged", "errorMessage": "forged"},
    }

    async def scenario() -> list[str]:
        first = in_task(holder.runtime.invoke(dict(event), fake_arn_context(30, request_id)))
        await gates.reached("waiting-1")
        refused: list[str] = []
        # a duplicate delivery carrying the holder's request id, and an on-failure record
        # naming it: both would otherwise run the body alongside, or answer FAILED
        for payload in (dict(event), record):
            with pytest.raises(OperationBusy):
                await duplicate.runtime.invoke(payload, fake_arn_context(3, request_id))
            refused.append("busy")
        gates["enter-1"].set()
        gates["body"].set()
        refused.append((await first).outcome)
        return refused

    try:
        outcomes = run(scenario())
    finally:
        close_all([holder, duplicate])
    count(overlaps_total=1, forged_events_total=1)
    assert outcomes == ["busy", "busy", "SUCCESS"]
    assert bodies == {"build": 1}
    count(overlaps_one_body=1, forged_events_refused=1)
    assert url.single_response()["Status"] == "SUCCESS"


def test_invariant_4_an_on_failure_record_waits_out_the_lease_and_reports_the_physical_id_set(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """Lambda gave up on a holder that had built something: the record claims once the lease
    has run out and answers FAILED with the physical id the handler set, so rollback's Delete
    reaches user code (not the failed-create marker)."""
    gates, bodies = Gates(), Counter[str]()
    resource = gated_resource(gates, bodies)
    holder, reporter = containers(resource, journal_table, lease=3, lease_skew=0.3)
    url = urls.issue()
    event = event_for("create", url.url)
    record = {
        "requestContext": {"requestId": "dead-1", "condition": "RetriesExhausted"},
        "requestPayload": event,
    }

    async def scenario() -> str:
        first = in_task(holder.runtime.invoke(dict(event), fake_arn_context(30, "dead-1")))
        gates["enter-1"].set()
        await gates.reached("body-running")  # ctx.physical_id was journaled before the body
        first.cancel()  # the container dies: no more renewals, nothing more written
        await asyncio.gather(first, return_exceptions=True)
        answered = await reporter.runtime.invoke(record, fake_arn_context(10))
        gates["body"].set()  # let the orphaned body end
        await asyncio.gather(*gates.handlers, return_exceptions=True)
        return str(answered.outcome)

    try:
        outcome = run(scenario())
    finally:
        close_all([holder, reporter])
    assert outcome == "FAILED"
    response = url.single_response()
    assert response["PhysicalResourceId"] == "built-by-step", response
    assert "Lambda gave up" in response["Reason"]


# -- 3. at-most-once under overlap -------------------------------------------------------------


def test_invariant_3_an_at_most_once_body_runs_once_when_invocations_overlap(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """The newcomer loaded the journal before the frozen holder started the step; the
    holder's STARTED slot is never started again, and the newcomer answers interrupted."""
    gates, bodies = Gates(), Counter[str]()
    # No ctx.physical_id here: its fenced write before the step would stop the frozen holder
    # first, and this test is about the slot rule alone.
    frozen, newcomer = containers(
        gated_resource(gates, bodies, at_most_once=True, names_id=False), journal_table
    )
    url = urls.issue()
    event = event_for("create", url.url)

    async def scenario() -> list[str]:
        first = in_task(frozen.runtime.invoke(dict(event), fake_arn_context(30)))
        await gates.reached("waiting-1")
        await end_lease(frozen, event)
        second = in_task(newcomer.runtime.invoke(dict(event), fake_arn_context(30)))
        await gates.reached("waiting-2")  # claimed with fence 2, journal loaded: no step yet
        gates["enter-1"].set()  # the frozen holder thaws: it starts the step, body runs
        await gates.reached("body-running")
        gates["enter-2"].set()  # the newcomer meets the holder's STARTED slot
        newcomer_outcome = (await second).outcome
        gates["body"].set()
        return [newcomer_outcome, (await first).outcome]

    try:
        outcomes = run(scenario())
    finally:
        close_all([frozen, newcomer])
    count(overlaps_total=1)
    assert bodies == {"build": 1}
    count(overlaps_one_body=1)
    assert outcomes == ["FAILED", "fence-lost"], outcomes
    response = url.single_response()
    assert "at-most-once step 'build' was interrupted" in response["Reason"], response


def test_invariant_5_a_hand_over_delivered_twice_runs_each_body_once_and_answers_once(
    local_env: str, journal_table: str, urls: URLs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hand-over's Invoke reached Lambda twice (its reply was lost and botocore sent it
    again): two successors carry the one token. The first claims with it (the claim takes the
    token away); the second, arriving while the first runs the next step's body, stands
    aside; the operation runs each body once and answers once."""
    gates, bodies = Gates(), Counter[str]()
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def first() -> str:
            bodies["first"] += 1
            return "one"

        async def second() -> str:
            bodies["second"] += 1
            gates["body-running"].set()
            await gates["body"].wait()
            return "two"

        await ctx.step("first", first)
        await ctx.sleep(2.0, "settle")  # past the first invocation's soft deadline
        await ctx.step("second", second)
        return asynccfn.Success(physical_id="twice-delivered")

    with FakeInvokeAPI() as lambdas:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambdas.endpoint_url)
        holder, successor, duplicate = containers(resource, journal_table, 3, reserve=1.0)
        url = urls.issue()
        event = event_for("create", url.url)

        async def scenario() -> list[str]:
            handed = await holder.runtime.invoke(dict(event), fake_arn_context(2.0))
            assert handed.outcome == "handed-over", handed
            [payload] = lambdas.payloads
            one = in_task(successor.runtime.invoke(dict(payload), fake_arn_context(30)))
            await gates.reached("body-running")
            other = await duplicate.runtime.invoke(dict(payload), fake_arn_context(30))
            gates["body"].set()
            return [other.outcome, (await one).outcome]

        try:
            outcomes = run(scenario())
        finally:
            close_all([holder, successor, duplicate])
    count(overlaps_total=1)
    assert bodies == {"first": 1, "second": 1}, bodies
    count(overlaps_one_body=1)
    assert outcomes == ["live-duplicate", "SUCCESS"], outcomes
    assert url.single_response()["PhysicalResourceId"] == "twice-delivered"
    assert len(url.stored()) == 1


# -- 4. the heartbeat under renewal failures ----------------------------------------------------


def with_journal(
    made: LambdaHandler,
    journal: Callable[[JournalStore], JournalStore],
    *,
    exit_process: Callable[[int], object] | None = None,
) -> LambdaHandler:
    """``made``'s function on a journal ``journal`` builds from its store (the same table,
    through the new runtime's own clients)."""
    from asynccfn._runtime import Runtime

    store = made.runtime.journal
    assert isinstance(store, JournalStore)
    runtimes: list[Runtime] = []
    ours = journal(
        JournalStore(
            store.table,
            lambda: runtimes[0].clients.own("dynamodb"),
            retention=store.retention,
            lease_skew=store.lease_skew,
        )
    )
    runtimes.append(Runtime(made.runtime.config, journal=ours))
    run(made.runtime.close())
    if exit_process is None:
        return LambdaHandler(runtimes[0])
    return LambdaHandler(runtimes[0], exit_process=exit_process)


class FlakyRenewals(JournalStore):
    """The journal, with lease renewals failing as ``fail`` decides (DynamoDB stays real)."""

    __slots__ = ("attempts", "fail", "failed", "first_failure", "renewed_after_failure")

    def __init__(self, store: JournalStore, fail: Callable[[int], bool]) -> None:
        super().__init__(
            store.table, store._client, retention=store.retention, lease_skew=store.lease_skew
        )
        self.fail = fail
        self.attempts = 0
        self.failed = 0
        self.first_failure = asyncio.Event()
        self.renewed_after_failure = asyncio.Event()

    async def renew_lease(self, op_id: str, fence: int, lease_until: float) -> None:
        self.attempts += 1
        if self.fail(self.attempts):
            self.failed += 1
            self.first_failure.set()
            raise JournalError("DynamoDB ThrottlingException: Rate exceeded")
        await super().renew_lease(op_id, fence, lease_until)
        if self.failed:
            self.renewed_after_failure.set()


def heartbeat_handler(
    table: str, fail: Callable[[int], bool], until: Callable[[FlakyRenewals], asyncio.Event]
) -> tuple[LambdaHandler, FlakyRenewals, Counter[str]]:
    """A Create whose one step runs until ``until(store)`` is set, renewals failing per
    ``fail``."""
    bodies: Counter[str] = Counter()
    resource = asynccfn.Resource(update="replace", delete="nothing")
    holder: list[FlakyRenewals] = []

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def body() -> str:
            bodies["long"] += 1
            await until(holder[0]).wait()
            return "done"

        return asynccfn.Success(physical_id="p", data={"Step": await ctx.step("long", body)})

    made = asynccfn.lambda_entry(resource, journal=table, lease=3, lease_skew=0.3)
    assert isinstance(made, LambdaHandler)
    handler = with_journal(made, lambda store: FlakyRenewals(store, fail))
    flaky = handler.runtime.journal
    assert isinstance(flaky, FlakyRenewals)
    holder.append(flaky)
    return handler, flaky, bodies


def test_invariant_4_failed_renewals_are_retried_inside_the_lease_and_the_work_goes_on(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    handler, store, bodies = heartbeat_handler(
        journal_table, lambda n: n <= 2, lambda s: s.renewed_after_failure
    )
    url = urls.issue()
    with closing_handler(handler):
        outcome = handler(event_for("create", url.url), fake_arn_context(30))
    assert outcome == {"outcome": "SUCCESS"}
    assert store.failed == 2 and store.attempts >= 3
    assert bodies == {"long": 1}
    assert url.single_response()["Data"] == {"Step": "done"}


def test_invariant_4_a_lease_that_cannot_be_renewed_stops_the_work_for_lambdas_retry(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    never = asyncio.Event()  # the body would run on forever: only the lost lease ends it
    handler, store, bodies = heartbeat_handler(journal_table, lambda n: True, lambda s: never)
    url = urls.issue(expect_answer=False)
    started = time.monotonic()
    with closing_handler(handler), pytest.raises(LeaseLost):
        handler(event_for("create", url.url), fake_arn_context(30))
    # renewed from 1 s on, retried with backoff, given up before the held 2.7 s ran out
    assert time.monotonic() - started < 4.0
    assert store.failed >= 2 and bodies == {"long": 1}
    assert url.puts() == []  # no answer: Lambda's retry continues from the journal


def test_invariant_4_a_heartbeat_error_never_overrides_a_handler_that_finished(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    handler, store, _bodies = heartbeat_handler(
        journal_table, lambda n: True, lambda s: s.first_failure
    )
    url = urls.issue()
    with closing_handler(handler):
        outcome = handler(event_for("create", url.url), fake_arn_context(30))
    assert outcome == {"outcome": "SUCCESS"} and store.failed >= 1
    assert url.single_response()["Data"] == {"Step": "done"}


# -- 5. a worker thread after an invocation that raises -----------------------------------------


class HandOverFails(JournalStore):
    __slots__ = ()

    @classmethod
    def of(cls, store: JournalStore) -> HandOverFails:
        return cls(store.table, store._client, retention=store.retention)

    async def record_handover(self, current: Any, **kwargs: Any) -> None:
        raise JournalError("DynamoDB InternalServerError: the hand-over was not recorded")


def test_invariant_6_a_worker_thread_ends_with_the_process_when_the_invocation_raises(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    release = threading.Event()
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step("blocking", lambda: release.wait(30))  # sync: runs in a worker thread
        return asynccfn.Success(physical_id="p")

    exits: list[int] = []
    made = asynccfn.lambda_entry(resource, journal=journal_table)
    assert isinstance(made, LambdaHandler)
    handler = with_journal(made, HandOverFails.of, exit_process=exits.append)
    url = urls.issue(expect_answer=False)
    try:
        with closing_handler(handler), pytest.raises(JournalError, match="hand-over"):
            handler(event_for("create", url.url), fake_arn_context(3))
        assert exits == [1]  # ended the process (non-zero: Lambda retries the invocation)
    finally:
        release.set()


# -- 6. no chain without end -------------------------------------------------------------------


def test_invariant_10_a_far_future_issue_date_does_not_stretch_the_operation_deadline(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="p")

    handler = asynccfn.lambda_entry(resource, journal=journal_table, timeout=600)
    assert isinstance(handler, LambdaHandler)
    # X-Amz-Date=2099...: 73 years ahead, with a week's expiry
    url = urls.issue(issued_ago=-73 * 365 * 86_400, expires_in=604_800)
    event = event_for("create", url.url)
    before = time.time()
    with closing_handler(handler):
        assert handler(event, fake_arn_context(10)) == {"outcome": "SUCCESS"}
        item = run(operation_item(handler, event))
    assert float(item["deadline"]["N"]) <= before + 600 + 5
    assert float(item["issued_at"]["N"]) <= time.time() + 2.0


def test_invariant_10_a_future_issue_date_is_clamped_by_the_configured_skew(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="p")

    handler = asynccfn.lambda_entry(resource, journal=journal_table, lease_skew=0.25)
    url = urls.issue(issued_ago=-3600, expires_in=7200)  # an hour ahead of this clock
    event = event_for("create", url.url)
    with closing_handler(handler):
        assert handler(event, fake_arn_context(10)) == {"outcome": "SUCCESS"}
        item = run(operation_item(handler, event))
    # now + lambda_entry(lease_skew=0.25), not now + the default 2 s
    assert float(item["issued_at"]["N"]) <= time.time() + 0.25


def test_invariant_10_max_invocations_ends_a_chain_that_makes_no_progress_towards_an_end(
    local_env: str, journal_table: str, urls: URLs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sleep on a property's value counts as progress each time: only the cap ends it."""
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.sleep(float(request.properties["Sleep"]), name="nap")
        return asynccfn.Success(physical_id="p")

    url = urls.issue()
    with FakeInvokeAPI() as lambdas:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambdas.endpoint_url)
        # A reserve of 1.5 s of a 2.5 s invocation: the hand-over (the first one creates the
        # Lambda client) has about a second, on a machine as busy as CI's.
        handler = asynccfn.lambda_entry(
            resource, journal=journal_table, max_invocations=3, reserve=1.5
        )
        assert isinstance(handler, LambdaHandler)
        payload: dict[str, Any] = event_for("create", url.url, Sleep="100000")
        outcomes = []
        with closing_handler(handler):
            for _ in range(4):
                outcomes.append(handler(payload, fake_arn_context(2.5))["outcome"])
                if outcomes[-1] != "handed-over":
                    break
                payload = lambdas.payloads[-1]
    assert outcomes == ["handed-over", "handed-over", "handed-over", "FAILED"], outcomes
    response = url.single_response()
    assert "did not finish in 3 invocations" in response["Reason"]
    assert "max_invocations" in response["Reason"]


# -- 7. at most once per retry ------------------------------------------------------------------


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_invariant_3_an_interrupted_at_most_once_attempt_counts_as_a_failed_attempt(
    local_env: str, journal_table: str, urls: URLs, max_attempts: int
) -> None:
    """A crash cut off attempt 1 of an at-most-once step. With a retry policy that allows it,
    attempt 2 runs (journaled as such); attempt 1 never runs again; without, StepInterrupted."""
    gates, runs = Gates(), Counter[int]()
    resource = asynccfn.Resource(update="replace", delete="nothing")
    policy = asynccfn.RetryPolicy(max_attempts=max_attempts, initial_delay=0.0, jitter=0.0)
    orphans: list[asyncio.Task[Any]] = []

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def body() -> int:
            runs[ctx.invocation] += 1
            if ctx.invocation == 1:
                task = asyncio.current_task()
                assert task is not None
                orphans.append(task)
                gates["body-running"].set()
                await gates["never"].wait()  # the container dies in here
            return ctx.invocation

        value = await ctx.step("charge", body, at_most_once=True, retry=policy)
        return asynccfn.Success(physical_id="p", data={"By": value})

    first, second = containers(resource, journal_table, lease=3, lease_skew=0.3)
    url = urls.issue()
    event = event_for("create", url.url)

    async def scenario() -> str:
        crashed = in_task(first.runtime.invoke(dict(event), fake_arn_context(30)))
        await gates.reached("body-running")
        crashed.cancel()
        await asyncio.gather(crashed, return_exceptions=True)
        await end_lease(first, event)
        outcome = (await second.runtime.invoke(dict(event), fake_arn_context(10))).outcome
        for orphan in orphans:
            orphan.cancel()
        await asyncio.gather(*orphans, return_exceptions=True)
        return str(outcome)

    try:
        outcome = run(scenario())
    finally:
        close_all([first, second])
    response = url.single_response()
    if max_attempts == 1:
        assert outcome == "FAILED" and runs == {1: 1}
        assert "at-most-once step 'charge' was interrupted" in response["Reason"]
        assert "attempt 1" in response["Reason"]
    else:
        assert outcome == "SUCCESS" and runs == {1: 1, 2: 1}
        assert response["Data"] == {"By": "2"} or response["Data"] == {"By": 2}
