"""Area 4: the hand-over's self-invocation meets Lambda's Invoke API failing.

429 and 500 answers are retried (botocore's retry mode) and the operation goes on; an Invoke
that never succeeds, or refuses the payload for good, ends in a FAILED answer while the holder
still holds the lease, never in a stack left waiting. (What Lambda does with failing events,
the on-failure record, event age and the recursion cut: test_lambda_gives_up.py.)
"""

from __future__ import annotations

import json

import pytest

from asynccfn.journal.models import OperationStatus
from asynccfn.local import Outcome
from asynccfn.local._invoke_api import MAX_EVENT_PAYLOAD
from tests.reliability.conftest import Rel


def invokes(rel: Rel, fn: str) -> list[int]:
    """Statuses of the Invoke API calls the function made (its hand-overs)."""
    return [call.status for call in rel.service.api_calls(fn)]


@pytest.mark.parametrize("status", [429, 500])
def test_a_refused_hand_over_invoke_is_retried(rel: Rel, status: int) -> None:
    fn = rel.deploy("handing", timeout=8, environment={"REL_RESERVE": "5"})
    rel.service.invoke_faults(fn, status=status, times=2)
    sent = rel.send(fn, Steps=3, PauseAt=2)
    response = sent.response()
    assert response["Status"] == "SUCCESS", response
    assert response["Data"] == {"Done": "3", "Total": "60"}
    rel.wait_idle()
    assert invokes(rel, fn) == [status, status, 202]
    assert [r.result for r in rel.records(fn)] == [
        {"outcome": "handed-over"},
        {"outcome": "SUCCESS"},
    ]
    for i in (1, 2, 3):
        assert rel.ran(f"start {i}") == 1


def test_a_hand_over_invoke_that_never_succeeds_answers_failed(rel: Rel) -> None:
    fn = rel.deploy("stranded", timeout=8, environment={"REL_RESERVE": "5"})
    rel.service.invoke_faults(fn, status=429, times=None)
    sent = rel.send(fn, Steps=3, PauseAt=2)
    response = sent.response()
    assert response["Status"] == "FAILED", response
    assert "could not continue in a new invocation" in response["Reason"], response
    rel.wait_idle()
    assert len(invokes(rel, fn)) >= 2 and set(invokes(rel, fn)) == {429}
    # FAILED answered in the invocation, or (when recording it outlasted the invocation)
    # re-posted by Lambda's retry
    last = rel.records(fn)[-1]
    assert last.outcome is Outcome.SUCCESS, rel.records(fn)
    assert last.result in ({"outcome": "FAILED"}, {"outcome": "re-posted"}), last
    assert len(sent.url.stored()) == 1
    assert rel.detail(sent).operation.status is OperationStatus.FAILED
    assert rel.ran("start 2") == 0


def test_a_hand_over_payload_lambda_refuses_answers_failed_saying_why(rel: Rel) -> None:
    fn = rel.deploy("bulky", timeout=8, environment={"REL_RESERVE": "5"})
    # CloudFormation's event fits Lambda's 256 KB; the event plus the hand-over token does not
    sent = rel.event(Steps=2, PauseAt=2, Padding="")
    size = len(json.dumps(sent.event).encode())
    sent.event["ResourceProperties"]["Padding"] = "x" * (MAX_EVENT_PAYLOAD - 10 - size)
    assert len(json.dumps(sent.event).encode()) == MAX_EVENT_PAYLOAD - 10
    rel.deliver(fn, sent)
    response = sent.response()
    assert response["Status"] == "FAILED", response
    assert "RequestEntityTooLarge" in response["Reason"], response
    rel.wait_idle()
    assert invokes(rel, fn) == [413]  # refused for good: not retried
