"""Area 1: the process is killed at every named point of asynccfn/_probe.py, and inside a step.

Each operation runs three steps over two invocations (one hand-over, forced by a durable
sleep before the second step), so every point is reached. The crash is redelivered as Lambda
would: by Lambda's own retry of the same invocation (same request id), or as a duplicate
delivery of the original event once the crashed holder's lease has run out. Either way the
stack gets one answer, each step body runs at most once more than the crash forced, the
journal ends consistent and the EventState counted each step once.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from asynccfn._probe import POINTS
from asynccfn.journal.models import OperationStatus, StepKind, StepStatus
from asynccfn.local import Outcome
from tests.reliability._tally import count
from tests.reliability.conftest import (
    LEASE_OUTLASTING_RETRIES,
    REL_LEASE_SKEW,
    Rel,
    Sent,
    wait_for,
)

STEPS = 3
CRASHES = [*POINTS, "after-step-recorded@2", "mid-step"]


def crash_environment(point: str, markers: str) -> dict[str, str]:
    if point == "mid-step":
        return {}
    return {"REL_CRASH_AT": point, "REL_CRASH_MARKERS": markers}


def operation(rel: Rel, function: str, point: str) -> Sent:
    properties: dict[str, Any] = {"Steps": STEPS, "Seconds": 0.3, "Needs": 0.35, "PauseAt": 2}
    if point == "mid-step":
        properties["CrashInStep"] = 2
    return rel.send(function, **properties)


def wait_after_lease(rel: Rel, sent: Sent) -> None:
    """Until the crashed holder's lease (plus the skew margin) has run out."""

    def lease_over() -> bool:
        op = rel.detail(sent).operation
        until = op.lease_until.timestamp() if op.lease_until else 0.0
        return time.time() > until + REL_LEASE_SKEW + 0.2

    wait_for(lease_over, timeout=40, interval=0.2)


def check_journal(rel: Rel, sent: Sent) -> None:
    detail = rel.detail(sent)
    op = detail.operation
    assert op.status is OperationStatus.SUCCEEDED, op
    assert detail.finished and op.response is not None and op.response.posted_at is not None
    assert not op.handover_pending
    assert [s.name for s in detail.steps] == ["step-1", "pause", "step-2", "step-3"]
    assert [s.position for s in detail.steps] == [f"0#{i:05d}" for i in range(1, STEPS + 2)]
    for step in detail.steps:
        if step.name == "pause":  # the durable sleep that forced the hand-over
            assert step.kind is StepKind.SLEEP and step.state == {"done": 1}, step
            continue
        i = int(step.name.split("-")[1])
        assert step.status is StepStatus.SUCCEEDED, step
        assert step.name == f"step-{i}" and step.result == i * 10
        assert step.invocation <= op.invocations
        # EventState as of each step (recorded when it changed): the steps before it each
        # counted once
        if step.state is not None:
            assert step.state == {"done": i - 1}, step
    whats = [event.what for event in op.events]
    assert "posted" in whats, whats


@pytest.mark.parametrize("redelivery", ["lambda-retry", "after-lease"])
@pytest.mark.parametrize("point", CRASHES)
def test_a_crash_at_every_point_is_survived(rel: Rel, point: str, redelivery: str) -> None:
    count(crash_points_total=1)
    markers = rel.run_dir / "markers"
    markers.mkdir()
    function = rel.deploy(
        "crashy",
        timeout=4.0,
        environment={**crash_environment(point, str(markers)), "REL_RESERVE": "2.0"},
        max_retries=2 if redelivery == "lambda-retry" else 0,
        retry_delays=LEASE_OUTLASTING_RETRIES,
        concurrency=2,
    )
    sent = operation(rel, function, point)
    wait_for(lambda: any(r.outcome is Outcome.CRASHED for r in rel.records(function)), timeout=30)
    if redelivery == "after-lease":
        wait_after_lease(rel, sent)
        rel.deliver(function, sent)

    response = sent.response(timeout=40)
    assert response["Status"] == "SUCCESS", response
    assert response["Data"] == {"Done": str(STEPS), "Total": "60"}  # EventState intact
    rel.wait_idle()

    # One answer: a second PUT only re-posts the recorded body when the crash came between
    # the PUT and marking it posted.
    stored = sent.url.stored()
    assert len(stored) == (2 if point == "after-response-put" else 1), stored
    for i in range(1, STEPS + 1):
        forced = 1 if point == "mid-step" and i == 2 else 0
        assert rel.ran(f"start {i}") <= 1 + forced, rel.runs()
        assert rel.ran(f"end {i}") == 1, rel.runs()
    check_journal(rel, sent)

    # A later duplicate of the original event changes nothing.
    rel.deliver(function, sent)
    rel.wait_idle()
    assert len(sent.url.stored()) == len(stored)
    last = rel.records(function)[-1]
    assert last.outcome is Outcome.SUCCESS and last.result == {"outcome": "finished"}, last
    outcomes = [r.outcome for r in rel.records(function)]
    assert set(outcomes) <= {Outcome.SUCCESS, Outcome.CRASHED}, outcomes
    count(crash_points_survived=1)
