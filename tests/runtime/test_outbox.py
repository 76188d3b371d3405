"""The outbox and the hand-off on their own: a memory journal, PUTs to moto's S3."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from asynccfn._clients import ClientPool
from asynccfn._deadline import Deadlines
from asynccfn._errors import JournalError, RequestError
from asynccfn._execution import Execution, Progress
from asynccfn._handoff import HandOff
from asynccfn._outbox import Outbox
from asynccfn._outcomes import op_id_for
from asynccfn._protocol import Request, Response, Status, parse_request
from asynccfn._steps import Executor
from asynccfn.journal.claims import ClaimRequest
from asynccfn.journal.memory import MemoryJournal
from asynccfn.journal.models import OperationItem, OperationStatus
from tests.conftest import PresignedURL
from tests.support import event_for


class Points:
    """A probe that lists the points reached."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    def point(self, name: str) -> None:
        self.reached.append(name)

    def step_recorded(self) -> bool:
        return False


class Setup:
    def __init__(self, moto_endpoint: str, url: PresignedURL) -> None:
        self.journal = MemoryJournal()
        self.probe = Points()
        self.read = url.read_body
        self.outbox = Outbox(
            journal=self.journal,
            allowed_hosts=frozenset({urlsplit(moto_endpoint).netloc}),
            delivery=None,
            probe=self.probe,
        )
        self.event = event_for("create", url.url)
        self.request: Request = parse_request(self.event, allowed_hosts=self.outbox_hosts)

    @property
    def outbox_hosts(self) -> frozenset[str]:
        return self.outbox._allowed_hosts

    def claim(self) -> OperationItem:
        req = ClaimRequest.for_request(
            self.request, owner="l#1", token=None, lease=30, issued_at=0, deadline=9e9
        )
        return asyncio.run(self.journal.claim(req)).operation

    def operation(self) -> OperationItem:
        op = self.journal.operation(op_id_for(self.request))
        assert op is not None
        return op

    def sent(self) -> dict[str, Any]:
        raw = self.read()
        assert raw is not None, "nothing was PUT"
        body: dict[str, Any] = json.loads(raw)
        return body


@pytest.fixture
def setup(moto_endpoint: str, presigned_response_url: Callable[[], PresignedURL]) -> Setup:
    return Setup(moto_endpoint, presigned_response_url())


def deadlines(seconds: float = 10.0) -> Deadlines:
    return Deadlines.for_invocation(remaining_ms=int(seconds * 1000), reserve=1.0)


def run(setup: Setup, coro: Any) -> Any:
    async def go() -> Any:
        try:
            return await coro
        finally:
            await setup.outbox.close()

    return asyncio.run(go())


def test_the_answer_is_recorded_put_and_marked_posted_in_that_order(setup: Setup) -> None:
    op = setup.claim()
    response = Response(status=Status.SUCCESS, physical_id="pid", data={"A": "1"})
    result = run(
        setup,
        setup.outbox.answer(setup.request, op, response, deadlines(), OperationStatus.SUCCEEDED),
    )
    assert result.outcome == "SUCCESS"
    assert setup.probe.reached == [
        "after-response-recorded",
        "after-response-put",
        "after-response-marked",
    ]
    recorded = setup.operation()
    assert (recorded.status, recorded.response_status, recorded.physical_id) == (
        "SUCCEEDED",
        "SUCCESS",
        "pid",
    )
    assert recorded.posted_at is not None and setup.sent()["Data"] == {"A": "1"}


def test_an_invalid_success_is_recorded_and_sent_as_failed(setup: Setup) -> None:
    op = setup.claim()
    response = Response(status=Status.SUCCESS, physical_id="pid", data={"Big": "x" * 5000})
    result = run(
        setup,
        setup.outbox.answer(setup.request, op, response, deadlines(), OperationStatus.SUCCEEDED),
    )
    recorded = setup.operation()
    assert result.outcome == "FAILED" and recorded.status == "FAILED"
    assert recorded.reason is not None and recorded.reason == setup.sent()["Reason"]
    assert "4096" in recorded.reason


def test_a_lost_fence_stops_quietly_without_a_put(setup: Setup) -> None:
    op = setup.claim()
    asyncio.run(setup.journal.release_lease(op_id_for(setup.request), op.fence))
    asyncio.run(
        setup.journal.claim(
            ClaimRequest.for_request(
                setup.request, owner="l2#2", token=None, lease=30, issued_at=0, deadline=9e9
            )
        )
    )
    result = run(setup, setup.outbox.fail(setup.request, op, "why", deadlines(), physical_id=None))
    assert result.outcome == "fence-lost" and setup.read() is None


def test_the_timeout_answer_reports_the_physical_id_and_timed_out(setup: Setup) -> None:
    op = setup.claim()
    result = run(
        setup, setup.outbox.timed_out(setup.request, op, deadlines(), physical_id="built-1")
    )
    recorded = setup.operation()
    assert result.outcome == "FAILED" and recorded.status == "TIMED_OUT"
    body = setup.sent()
    assert body["PhysicalResourceId"] == "built-1"
    assert body["Reason"].startswith("the operation did not finish within its deadline")


def test_a_malformed_event_is_answered_without_a_journal(setup: Setup) -> None:
    event = {**setup.event, "RequestType": "Explode"}
    with pytest.raises(RequestError) as bad:
        parse_request(event, allowed_hosts=setup.outbox_hosts)
    result = run(setup, setup.outbox.answer_malformed(bad.value, deadlines()))
    assert result.outcome == "malformed-answered" and setup.sent()["Status"] == "FAILED"
    assert setup.journal.operation(op_id_for(setup.request)) is None


def hand_off(setup: Setup, journal: Any, max_stalled: int = 5) -> HandOff:
    return HandOff(
        journal=journal,
        clients=ClientPool(),
        outbox=setup.outbox,
        max_stalled=max_stalled,
        probe=setup.probe,
    )


def executor(journal: Any, progressed: bool) -> Executor:
    return Executor(
        Execution(
            store=journal,
            op_id="op",
            op_attempt=1,
            fence=1,
            invocation=1,
            deadlines=deadlines(),
            started=0.0,
        ),
        Progress(progressed=progressed, current="0#00003"),
    )


def test_no_progress_too_many_times_fails_instead_of_handing_over(setup: Setup) -> None:
    op = setup.claim()
    op.stalled = 4
    handoff = hand_off(setup, setup.journal, max_stalled=5)
    result = run(
        setup,
        handoff.hand_over(
            setup.request,
            op,
            setup.event,
            executor(setup.journal, progressed=False),
            deadlines(),
            None,
            physical_id="pid",
            wake_at=None,
        ),
    )
    assert result.outcome == "FAILED"
    reason = setup.sent()["Reason"]
    assert "no progress in 5 invocations in a row" in reason and "0#00003" in reason
    assert setup.operation().handover_token is None


def test_without_a_durable_journal_running_out_of_time_answers_failed(setup: Setup) -> None:
    from asynccfn.journal.ephemeral import EphemeralJournal

    op = setup.claim()  # recorded in the memory journal the outbox writes to
    handoff = hand_off(setup, EphemeralJournal())
    result = run(
        setup,
        handoff.hand_over(
            setup.request,
            op,
            setup.event,
            executor(setup.journal, progressed=True),
            deadlines(),
            None,
            physical_id=None,
            wake_at=None,
        ),
    )
    assert result.outcome == "FAILED"
    assert "set lambda_entry(journal=...)" in setup.sent()["Reason"]


class _MarkHangs(MemoryJournal):
    """A journal whose posted mark is sent and never answered."""

    async def mark_posted(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.Event().wait()


def test_invariant_10_the_posted_mark_has_the_invocations_time_only(setup: Setup) -> None:
    """The PUT is done; the mark that follows it has what is left of the invocation, then
    raises (Lambda's retry re-posts the same recorded body), never running past it."""
    hanging = _MarkHangs()
    setup.journal = hanging
    setup.outbox._journal = hanging
    op = setup.claim()
    response = Response(status=Status.SUCCESS, physical_id="pid")
    with pytest.raises(JournalError, match="posted outlasted the invocation"):
        answering = setup.outbox.answer(
            setup.request, op, response, deadlines(1.5), OperationStatus.SUCCEEDED
        )
        run(setup, asyncio.wait_for(answering, 5))  # a mark without limit fails, not hangs
    assert setup.sent()["Status"] == "SUCCESS"
    assert setup.probe.reached == ["after-response-recorded", "after-response-put"]
