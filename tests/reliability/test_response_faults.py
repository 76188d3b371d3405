"""Area 3: the response endpoint misbehaves: 503 streaks, connection resets, answers slower
than the read timeout, 403. Retries are bounded; a refusal for good is recorded in the journal
as UNDELIVERABLE and logged once, naming the host only; a transient failure makes the
invocation raise, and a later delivery re-posts the very same recorded body."""

from __future__ import annotations

import json
from typing import Any

import pytest

import asynccfn
from asynccfn._entry import LambdaHandler
from asynccfn.journal.models import OperationStatus
from asynccfn.journal.query import Journal
from asynccfn.local import Outcome
from tests.reliability._endpoint import Fault, IssuedURL
from tests.reliability.conftest import Rel, URLs
from tests.support import FakeLambdaContext, closing_handler, event_for, event_op_id

FAST = asynccfn.DeliveryPolicy(
    attempts=4, base_delay=0.05, max_delay=0.2, connect_timeout=1.0, read_timeout=0.4
)


def no_content_type(url: IssuedURL) -> None:
    for put in url.puts():
        assert "Content-Type" not in put.headers, put.headers  # the URL signs `host` only


@pytest.mark.parametrize(
    "faults",
    [
        [Fault.of_status(503)] * 3,
        [Fault.reset(), Fault.reset()],
        [Fault.of_status(500), Fault.reset(), Fault.of_status(503)],
    ],
    ids=["503-streak", "resets", "mixed"],
)
def test_transient_endpoint_faults_are_retried_through_the_runtime(
    rel: Rel, faults: list[Fault]
) -> None:
    fn = rel.deploy("flaky-s3", timeout=15)
    url = rel.urls.issue(faults=faults)
    sent = rel.send(fn, url=url, Steps=1)
    assert sent.response()["Status"] == "SUCCESS"
    rel.wait_idle()
    puts = url.puts()
    assert len(puts) == len(faults) + 1, [p.answer for p in puts]
    assert len({p.body for p in puts}) == 1  # every retry PUTs the recorded body
    no_content_type(url)
    assert rel.detail(sent).finished
    assert [r.outcome for r in rel.records(fn)] == [Outcome.SUCCESS]


def test_403_is_recorded_undeliverable_and_logged_once_without_the_url(rel: Rel) -> None:
    fn = rel.deploy("denied", timeout=10)
    url = rel.urls.issue(forever=Fault.of_status(403), expect_answer=False)
    sent = rel.send(fn, url=url, Steps=1)
    rel.wait_idle()
    assert [p.answer for p in url.puts()] == ["403"]  # a refusal for good: no retry
    [record] = rel.records(fn)
    assert record.outcome is Outcome.SUCCESS  # terminal: Lambda must not retry
    op = rel.detail(sent).operation
    assert op.status is OperationStatus.UNDELIVERABLE, op
    assert op.reason is not None and "403" in op.reason and "AccessDenied" in op.reason
    assert "/cfn-responses" not in op.reason
    lines = [line for line in rel.logs() if "undeliverable" in line]
    assert len(lines) == 1, lines
    assert url.endpoint.host in lines[0] and "cfn-responses" not in lines[0]


def test_an_expired_url_times_the_operation_out_and_is_recorded_undeliverable(rel: Rel) -> None:
    fn = rel.deploy("expired", timeout=10)
    url = rel.urls.issue(issued_ago=7300, expires_in=7200, expect_answer=False)
    sent = rel.send(fn, url=url, Steps=1)
    rel.wait_idle()
    assert [p.answer for p in url.puts()] == ["403-expired"]
    assert rel.ran("start 1") == 0  # past its deadline: no work started
    op = rel.detail(sent).operation
    assert op.status is OperationStatus.UNDELIVERABLE
    assert op.response is not None and op.response.status.value == "FAILED"


def test_a_failing_endpoint_is_retried_a_bounded_number_of_times_then_reposted(
    rel: Rel,
) -> None:
    fn = rel.deploy("down-s3", timeout=4, max_retries=1, retry_delays=(0.3,))
    url = rel.urls.issue(forever=Fault.of_status(503))
    sent = rel.send(fn, url=url, Steps=1)
    rel.wait_idle()
    records = rel.records(fn)
    assert [r.outcome for r in records] == [Outcome.ERROR, Outcome.ERROR]
    assert all((r.error or {}).get("errorType") == "DeliveryError" for r in records)
    # bounded by the attempts of each invocation's PUT, and by its deadline
    assert 2 <= len(url.puts()) <= 2 * asynccfn.DeliveryPolicy().attempts
    assert url.stored() == []
    detail = rel.detail(sent)
    assert detail.operation.status is OperationStatus.SUCCEEDED and not detail.finished
    # The endpoint recovers; any later delivery of the event re-posts the recorded body.
    url.endpoint.plan(url.key, [], forever=None)
    rel.deliver(fn, sent)
    assert sent.response()["Status"] == "SUCCESS"
    rel.wait_idle()
    assert len({p.body for p in url.puts()}) == 1
    assert rel.records(fn)[-1].result == {"outcome": "re-posted"}
    assert rel.detail(sent).finished


def handler_with(journal_table: str, policy: asynccfn.DeliveryPolicy = FAST) -> LambdaHandler:
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="p", data={"Ok": "yes"})

    made = asynccfn.lambda_entry(resource, journal=journal_table, delivery=policy)
    assert isinstance(made, LambdaHandler)
    return made


def operation_of(event: dict[str, Any], local_env: str, table: str) -> Any:
    reader = Journal(table, region="us-east-1", endpoint_url=local_env)
    op_id = event_op_id(event)
    return reader.get_operation(op_id)


def test_answers_slower_than_the_read_timeout_are_retried(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    url = urls.issue(faults=[Fault.slow(1.5), Fault.slow(1.5)])
    event = event_for("create", url.url)
    with closing_handler(handler_with(journal_table)) as handler:
        assert handler(event, FakeLambdaContext(20))["outcome"] == "SUCCESS"
    assert [p.answer for p in url.puts()] == ["slow", "slow", "200"]
    assert len(set(url.stored())) == 1
    assert operation_of(event, local_env, journal_table).finished


def test_the_put_gives_up_after_its_attempts_and_the_retry_reposts_the_same_body(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    url = urls.issue(forever=Fault.of_status(503))
    event = event_for("create", url.url)
    context = FakeLambdaContext(20)
    with closing_handler(handler_with(journal_table)) as handler:
        with pytest.raises(asynccfn.DeliveryError, match="after 4 attempts"):
            handler(event, context)
        assert len(url.puts()) == FAST.attempts
        assert not operation_of(event, local_env, journal_table).finished
        url.endpoint.plan(url.key, [], forever=None)
        assert handler(event, context)["outcome"] == "re-posted"  # Lambda's retry
    assert len({p.body for p in url.puts()}) == 1
    assert json.loads(url.stored()[0])["Data"] == {"Ok": "yes"}
    assert operation_of(event, local_env, journal_table).finished
