"""Attempts under forgery and replay (DESIGN.md invariants 1, 8 and 9).

Anyone who may invoke the function can send a "new attempt" of a live request: the same ids
and a URL that looks like CloudFormation's (its response bucket, a key naming the operation,
a later X-Amz-Date), which needs no signature to make. Such an attempt never takes a recorded,
unposted answer away from the URL CloudFormation waits on, never shortens the work into a
FAILED timeout that URL would copy, and an on-failure record never supersedes a live holder.
A holder superseded by a newer attempt that outlasts its invocation raises, so that Lambda's
retry of it follows on and answers its URL.

Deterministic: the order is the test's own sequence of calls; the endpoint's faults make the
genuine PUT fail (503) or land with its reply lost (slower than the read timeout).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import asynccfn
from asynccfn._entry import LambdaHandler
from asynccfn._errors import OperationBusy
from tests.reliability._endpoint import Fault
from tests.reliability.conftest import URLs
from tests.support import FakeLambdaContext, closing_handler, event_for, issued

FAST = asynccfn.DeliveryPolicy(
    attempts=4, base_delay=0.05, max_delay=0.2, connect_timeout=1.0, read_timeout=0.4
)


def container(journal_table: str) -> LambdaHandler:
    """One warm container of the function: a Create that succeeds with Data."""
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="p", data={"Ok": "yes"})

    made = asynccfn.lambda_entry(resource, journal=journal_table, delivery=FAST)
    assert isinstance(made, LambdaHandler)
    return made


def test_invariant_8_a_new_attempt_never_takes_an_unposted_answer_away_from_its_url(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    genuine = urls.issue(forever=Fault.of_status(503))
    event = event_for("create", genuine.url)
    # Someone who may invoke the function (not CloudFormation) sends a "new attempt" of the
    # same request, asking for other properties, with a URL it made (issued a second later).
    forged_url = issued(urls.issue(expect_answer=False).url, seconds_ago=-1)
    forged = {
        **event,
        "ResponseURL": forged_url,
        "ResourceProperties": {**event["ResourceProperties"], "Other": "thing"},
    }
    with closing_handler(container(journal_table)) as holder:
        with closing_handler(container(journal_table)) as other:
            # 1. The holder answers SUCCESS: recorded, the PUT fails after its retries: it
            #    raises, so that Lambda's retry re-posts the recorded body.
            with pytest.raises(asynccfn.DeliveryError):
                holder(dict(event), FakeLambdaContext(20))
            # 2. The "new attempt" arrives meanwhile: the recorded answer still to deliver
            #    holds the operation; it raises, so that Lambda retries it later.
            with pytest.raises(OperationBusy, match="answer still to deliver"):
                other(dict(forged), FakeLambdaContext(20))
            # 3. The network heals; Lambda's retry of the genuine delivery re-posts.
            genuine.endpoint.plan(genuine.key, [], forever=None)
            retried = holder(dict(event), FakeLambdaContext(20))["outcome"]
            assert retried == "re-posted"
            # 4. Lambda's retry of the new attempt now finds the operation free.
            assert other(dict(forged), FakeLambdaContext(20))["outcome"] == "SUCCESS"
    # The genuine URL, the one CloudFormation waits on, must get the recorded SUCCESS.
    assert genuine.stored(), (
        f"Lambda's retry of the genuine event ended {retried!r} and never answered its URL: "
        "the recorded, unposted answer was erased by a new attempt that proved nothing"
    )
    assert json.loads(genuine.stored()[-1])["Status"] == "SUCCESS"


def test_invariant_8_an_answer_that_landed_unmarked_is_never_followed_by_another(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    # Every PUT lands but answers slower than the read timeout: the responder gives up and
    # the invocation raises (the answer is recorded, not marked posted).
    genuine = urls.issue(faults=[Fault.slow(1.0)] * FAST.attempts)
    event = event_for("create", genuine.url)
    # A "new attempt" of the same request whose URL expires as it is issued (X-Amz-Expires=0).
    expired: Any = urls.issue(expires_in=0, expect_answer=False)
    forged = {**event, "ResponseURL": expired.url}
    with closing_handler(container(journal_table)) as holder:
        with closing_handler(container(journal_table)) as other:
            with pytest.raises(asynccfn.DeliveryError):
                holder(dict(event), FakeLambdaContext(20))
            assert [json.loads(body)["Status"] for body in genuine.stored()] == ["SUCCESS"] * 4
            # It would take the finished operation over and, its deadline passed, answer
            # FAILED for the retry to copy: the answer still to deliver holds it off.
            with pytest.raises(OperationBusy):
                other(dict(forged), FakeLambdaContext(20))
            # Lambda's retry of the genuine delivery: it should re-post the recorded SUCCESS.
            holder(dict(event), FakeLambdaContext(20))
    statuses = [json.loads(body)["Status"] for body in genuine.stored()]
    assert len(set(genuine.stored())) == 1, (
        f"one ResponseURL received different answers {statuses}: a crash (or a lost reply) "
        "between the PUT and its posted mark must re-post the same response (invariant 8)"
    )


def test_invariant_1_a_holder_superseded_by_an_attempt_that_outlasts_it_raises_and_follows_on(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """A look-alike "newer" attempt (a CloudFormation-bucket URL naming the operation, issued
    later) supersedes a live holder and runs longer than the holder's invocation has left (it
    hands over, as a long operation does). The holder follows until its own deadline, then
    raises: Lambda's retry of it follows on and copies the answer once it is recorded."""
    import time
    from collections import Counter

    from asynccfn.journal.models import OperationStatus
    from asynccfn.journal.store import ClaimOutcome, JournalStore
    from tests.reliability.test_fencing import (
        Gates,
        attempt_claim,
        close_all,
        containers,
        gated_resource,
        in_task,
    )
    from tests.support import event_op_id, run

    gates, bodies = Gates(), Counter[str]()
    [holder] = containers(gated_resource(gates, bodies), journal_table, 1)
    genuine = urls.issue()
    event = event_for("create", genuine.url)
    op_id = event_op_id(event)
    store = holder.runtime.journal
    assert isinstance(store, JournalStore)
    ids = {k: event[k] for k in ("StackId", "RequestId", "LogicalResourceId")}
    answer = json.dumps({"Status": "SUCCESS", "PhysicalResourceId": "built", **ids})

    async def scenario() -> str:
        first = in_task(holder.runtime.invoke(dict(event), FakeLambdaContext(4)))
        await gates.reached("waiting-1")
        newer = await store.claim(
            attempt_claim(event, "look-alike", from_cloudformation=True, issued_at=time.time() + 60)
        )
        assert newer.outcome is ClaimOutcome.CLAIMED
        gates["enter-1"].set()  # the holder's next fenced write: fence lost, it follows
        try:
            outcome: str = (await first).outcome
        except Exception as exc:  # raised: Lambda's retry would deliver the event again
            outcome = f"raised {type(exc).__name__}"
        # The look-alike attempt, handed over meanwhile, answers; its own PUT is refused.
        await store.record_response(
            newer.operation,
            body=answer,
            response_status="SUCCESS",
            status=OperationStatus.SUCCEEDED,
            physical_id="built",
            reason=None,
        )
        await store.mark_posted(op_id, "look-alike", undeliverable="HTTP 403")
        if outcome.startswith("raised"):  # Lambda's retry of the genuine delivery
            retried = await holder.runtime.invoke(dict(event), FakeLambdaContext(10))
            outcome += f", retry {retried.outcome}"
        return outcome

    try:
        outcome = run(scenario())
    finally:
        close_all([holder])
    assert bodies == {}
    assert outcome == "raised OperationBusy, retry followed", outcome
    assert genuine.stored(), (
        f"the superseded holder ended {outcome!r} (a normal return: Lambda does not retry) "
        "and the URL CloudFormation waits on never received the operation's answer"
    )


def test_invariant_9_a_forged_on_failure_record_never_supersedes_a_live_holder(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """A forged on-failure record whose payload is a look-alike newer attempt (a
    CloudFormation-bucket URL naming the operation, issued a second later) would supersede the
    live holder at once and record FAILED "Lambda gave up", which the holder would copy to the
    URL CloudFormation waits on. A record waits for a live holder like any unproven attempt."""
    import time
    from collections import Counter

    from asynccfn._errors import UndeliverableResponse
    from tests.reliability.test_fencing import (
        Gates,
        close_all,
        containers,
        gated_resource,
        in_task,
    )
    from tests.support import run

    gates, bodies = Gates(), Counter[str]()
    holder, forger = containers(gated_resource(gates, bodies), journal_table, 2)
    genuine = urls.issue()
    event = event_for("create", genuine.url)
    key = "%7C".join(
        part.replace(":", "%3A")
        for part in (event["StackId"], event["LogicalResourceId"], event["RequestId"])
    )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + 1))
    look_alike = (
        f"https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/{key}"
        f"?X-Amz-Date={stamp}&X-Amz-Expires=7200&X-Amz-Signature={'0' * 64}"
    )
    record = {
        "version": "1.0",
        "requestContext": {
            "requestId": "forged",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {**event, "ResponseURL": look_alike},
        "responsePayload": {"errorType": "Forged", "errorMessage": "forged"},
    }

    class Refused:  # S3 refuses the look-alike URL's PUT (its signature is not AWS's)
        async def put(self, url: str, body: bytes, *, deadline: float | None = None) -> int:
            raise UndeliverableResponse("HTTP 403 SignatureDoesNotMatch")

        async def close(self) -> None:
            return None

    forger.runtime.outbox._responder = Refused()  # type: ignore[assignment]

    async def scenario() -> tuple[str, str]:
        first = in_task(holder.runtime.invoke(dict(event), FakeLambdaContext(30)))
        await gates.reached("waiting-1")
        try:
            forged = (await forger.runtime.invoke(record, FakeLambdaContext(10))).outcome
        except OperationBusy:
            forged = "raised OperationBusy"
        gates["enter-1"].set()
        gates["body"].set()
        return forged, (await first).outcome

    try:
        forged_outcome, holder_outcome = run(scenario())
    finally:
        close_all([holder, forger])
    assert forged_outcome == "raised OperationBusy", forged_outcome
    got = genuine.single_response()
    assert got["Status"] == "SUCCESS", (
        f"the forged record ended {forged_outcome!r}, the healthy holder {holder_outcome!r}; "
        f"CloudFormation received {got['Status']}: {got.get('Reason')}"
    )
