"""When Lambda gives up: retries exhausted, an event too old, a recursive chain cut.

The function is its own on-failure destination (as `asynccfn table template` deploys it). Lambda
retries a failed async event twice, then sends the on-failure record; the runtime answers
FAILED for the original request, saying what Lambda reported and how many attempts it made.
Duplicates of the record change nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from asynccfn.local import Outcome
from tests.reliability.conftest import LEASE_OUTLASTING_RETRIES, Rel, wait_for


def on_failure_records(rel: Rel, function: str) -> list[Any]:
    return [
        r
        for r in rel.records(function)
        if isinstance(r.payload, dict) and "requestContext" in r.payload
    ]


@pytest.mark.parametrize(
    ("misbehaviour", "error_type"),
    [({"AlwaysCrash": True}, "Runtime.ExitError"), ({"Hang": 30}, "Sandbox.Timedout")],
    ids=["crash", "timeout"],
)
def test_retries_exhausted_answers_failed_with_attempts_and_lambdas_error(
    rel: Rel, misbehaviour: dict[str, Any], error_type: str
) -> None:
    # Each retry (and the on-failure record) carries the request id of the attempt that died,
    # and claims once that attempt's lease has run out: the record may wait for it.
    fn = rel.deploy(
        "doomed", timeout=4.5, on_failure="doomed", retry_delays=LEASE_OUTLASTING_RETRIES
    )
    sent = rel.send(fn, **misbehaviour)
    response = sent.response(timeout=40)
    assert response["Status"] == "FAILED", response
    reason = response["Reason"]
    assert "RetriesExhausted" in reason and "3 attempts" in reason, reason
    assert error_type in reason, reason
    assert response["PhysicalResourceId"].startswith("asynccfn-failed-create:")
    rel.wait_idle()

    attempts = [r for r in rel.records(fn) if r.request_id == rel.records(fn)[0].request_id]
    assert [r.attempt for r in attempts] == [1, 2, 3]
    assert all(r.outcome is not Outcome.SUCCESS for r in attempts)
    assert attempts[1].started - attempts[0].ended >= LEASE_OUTLASTING_RETRIES[0]
    assert attempts[2].started - attempts[1].ended >= LEASE_OUTLASTING_RETRIES[1]

    # Duplicates of the record change nothing: no second answer, no work.
    [record] = on_failure_records(rel, fn)
    assert record.result == {"outcome": "FAILED"}
    ran_before = rel.runs()
    for _ in range(2):
        rel.deliver(fn, record.payload)
    rel.wait_idle()
    assert len(sent.url.stored()) == 1
    duplicates = on_failure_records(rel, fn)[1:]
    assert [r.result for r in duplicates] == [{"outcome": "finished"}] * 2
    assert rel.runs() == ran_before


def test_an_event_too_old_answers_failed(rel: Rel) -> None:
    fn = rel.deploy(
        "aging", timeout=4.5, on_failure="aging", max_event_age=1.0, retry_delays=(1.5,)
    )
    sent = rel.send(fn, AlwaysCrash=True)
    response = sent.response(timeout=30)
    assert response["Status"] == "FAILED"
    assert "EventAgeExceeded" in response["Reason"] and "1 attempt" in response["Reason"]
    rel.wait_idle()
    outcomes = [r.outcome for r in rel.records(fn)]
    assert Outcome.DROPPED in outcomes, outcomes


@pytest.mark.parametrize("loop", ["Terminate", "Allow"])
def test_a_long_chain_of_hand_overs_and_the_recursion_cut(rel: Rel, loop: str) -> None:
    fn = rel.deploy(
        "chain",
        timeout=2.0,
        on_failure="chain",
        recursive_loop=loop,
        concurrency=1,
        environment={"REL_RESERVE": "1.0"},
    )
    rel.warm(fn)  # the chain's first hop must not pay for a cold start
    sent = rel.send(fn, Sleep=18, Steps=1)
    response = sent.response(timeout=60)
    rel.wait_idle()
    records = rel.records(fn)[1:]
    hops = max(r.hops for r in records)
    if loop == "Allow":
        assert response["Status"] == "SUCCESS", response
        assert hops > 16, hops  # past Lambda's cut
        assert not any(r.outcome is Outcome.RECURSION_CUT for r in records)
    else:
        assert response["Status"] == "FAILED", response
        assert "RecursiveInvocationDetected" in response["Reason"], response
        [cut] = [r for r in records if r.outcome is Outcome.RECURSION_CUT]
        assert cut.hops == 17
    assert len(sent.url.stored()) == 1
    wait_for(lambda: rel.detail(sent).finished)
