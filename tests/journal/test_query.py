"""The journal's read API (asynccfn.journal) on operations the runtime really wrote to
DynamoDB Local: a success, a failure, a hand-over and a stuck hand-over (see scenarios.py)."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from typing import Any

import pytest

import asynccfn
from asynccfn import ConfigurationError
from asynccfn.journal import (
    Journal,
    JournalUnreachable,
    OperationNotFound,
    OperationStatus,
    ResponseStatus,
    StepKind,
    StepStatus,
    TableNotFound,
)
from asynccfn.journal.models import bind, op_pk
from asynccfn.local import free_port
from tests.journal.scenarios import SECRET, Recorded, botocore_calls, stack_arn
from tests.support import (
    FakeLambdaContext,
    closing_handler,
    create_journal_table,
    event_for,
    url_signatures,
)

UTC = datetime.UTC


@pytest.fixture
def journal(recorded: Recorded) -> Journal:
    return Journal(recorded.table, region="us-east-1", endpoint_url=recorded.endpoint)


def ids(operations: Any) -> list[str]:
    return [op.op_id for op in operations]


# -- listing ---------------------------------------------------------------------------------


def test_lists_every_operation_newest_first(journal: Journal, recorded: Recorded) -> None:
    page = journal.list_operations()
    expected = [recorded.stuck, recorded.handed_over, recorded.failed, recorded.succeeded]
    assert ids(page.operations) == [op.op_id for op in expected]
    assert page.cursor is None
    created = [op.created_at for op in page.operations]
    assert created == sorted(created, reverse=True)


def test_lists_a_stack_by_arn_through_the_by_stack_index(
    journal: Journal,
    recorded: Recorded,
) -> None:
    with botocore_calls() as calls:
        page = journal.list_operations(stack=recorded.succeeded.stack_id)
    assert ids(page.operations) == [recorded.failed.op_id, recorded.succeeded.op_id]
    dynamodb = [(op, params) for service, op, params in calls if service == "dynamodb"]
    assert [op for op, _ in dynamodb] == ["Query"]
    assert dynamodb[0][1]["IndexName"] == "by-stack"
    assert dynamodb[0][1]["ScanIndexForward"] is False


def test_lists_a_stack_by_name(journal: Journal, recorded: Recorded) -> None:
    page = journal.list_operations(stack="data-stack")
    assert ids(page.operations) == [recorded.stuck.op_id, recorded.handed_over.op_id]
    assert {op.stack_name for op in page.operations} == {"data-stack"}
    assert journal.list_operations(stack="data").operations == ()  # a name, not a prefix


def test_lists_by_status(journal: Journal, recorded: Recorded) -> None:
    running = journal.list_operations(status=OperationStatus.RUNNING)
    assert ids(running.operations) == [recorded.stuck.op_id]
    failed = journal.list_operations(stack=recorded.failed.stack_id, status=OperationStatus.FAILED)
    assert ids(failed.operations) == [recorded.failed.op_id]
    assert journal.list_operations(status=OperationStatus.TIMED_OUT).operations == ()


def test_lists_since_a_time_or_a_duration(journal: Journal, recorded: Recorded) -> None:
    slow = journal.get_operation(recorded.handed_over.op_id).operation
    since = journal.list_operations(since=slow.created_at)
    assert ids(since.operations) == [recorded.stuck.op_id, recorded.handed_over.op_id]
    by_index = journal.list_operations(stack=slow.stack_id, since=slow.created_at)
    assert ids(by_index.operations) == ids(since.operations)
    assert len(journal.list_operations(since=datetime.timedelta(hours=1)).operations) == 4
    future = datetime.datetime.now(UTC) + datetime.timedelta(minutes=1)
    assert journal.list_operations(since=future).operations == ()


@pytest.mark.parametrize("stack", [None, "web-stack", "arn"])
def test_pages_follow_each_other_with_the_cursor(
    journal: Journal,
    recorded: Recorded,
    stack: str | None,
) -> None:
    if stack == "arn":
        stack = recorded.succeeded.stack_id
    whole = ids(journal.list_operations(stack=stack).operations)
    paged: list[str] = []
    cursor = None
    for _ in range(10):
        page = journal.list_operations(stack=stack, limit=1, cursor=cursor)
        paged += ids(page.operations)
        assert len(page.operations) <= 1
        cursor = page.cursor
        if cursor is None:
            break
    assert paged == whole
    assert ids(journal.iter_operations(stack=stack, page_size=1)) == whole


def test_a_cursor_belongs_to_its_listing(journal: Journal, recorded: Recorded) -> None:
    scanned = journal.list_operations(limit=1)
    assert scanned.cursor is not None
    with pytest.raises(ConfigurationError, match="cursor"):
        journal.list_operations(stack=recorded.succeeded.stack_id, cursor=scanned.cursor)
    with pytest.raises(ConfigurationError, match="cursor"):
        journal.list_operations(cursor="not-a-cursor")
    with pytest.raises(ConfigurationError, match="limit"):
        journal.list_operations(limit=0)


# -- one operation ---------------------------------------------------------------------------


def test_a_success_with_its_steps_in_program_order(journal: Journal, recorded: Recorded) -> None:
    detail = journal.get_operation(recorded.succeeded.op_id)
    op = detail.operation
    assert op.status is OperationStatus.SUCCEEDED
    assert (op.logical_id, op.resource_type, op.request_type) == (
        "OkBucket",
        "Custom::Bucket",
        asynccfn.RequestType.CREATE,
    )
    assert op.stack_name == "web-stack" and op.stack_id == recorded.succeeded.stack_id
    assert op.invocations == 1 and op.attempt == 1 and not op.handover_pending
    assert op.finished_at is not None and op.duration is not None and op.duration >= 0
    assert detail.finished
    steps = [(s.position, s.name, s.kind, s.status) for s in detail.steps]
    assert steps[0] == ("0#00001", "create-bucket", StepKind.STEP, StepStatus.SUCCEEDED)
    # the ctx.parallel branches (scopes 0.1, 0.2) between the steps around the call
    assert sorted(steps[1:3]) == [
        ("0.1#00001", "tag-bucket", StepKind.STEP, StepStatus.SUCCEEDED),
        ("0.2#00001", "log-bucket", StepKind.STEP, StepStatus.SUCCEEDED),
    ]
    assert steps[3] == ("0#00002", "bucket-exists", StepKind.WAIT, StepStatus.SUCCEEDED)
    assert {s.position: s.result for s in detail.steps} == {
        "0#00001": "ok-bucket",
        "0.1#00001": "tags",
        "0.2#00001": 1,
        "0#00002": True,
    }
    assert (detail.steps[0].scope, detail.steps[0].seq) == ("0", 1)
    assert [(e.what, e.invocation) for e in detail.events] == [
        ("claimed", 1),
        ("response SUCCESS", 1),
        ("posted", 1),
    ]


def test_no_echo_data_is_masked_and_the_response_url_is_nowhere(
    journal: Journal,
    recorded: Recorded,
) -> None:
    response = journal.get_operation(recorded.succeeded.op_id).operation.response
    assert response is not None
    assert response.no_echo
    assert response.data == {"Arn": "****", "Secret": "****"}
    assert response.status is ResponseStatus.SUCCESS
    assert response.posted_at is not None
    assert recorded.responses["ok"] is not None and SECRET.encode() in recorded.responses["ok"]
    for op in recorded.all:
        detail = journal.get_operation(op.op_id)
        shown = json.dumps(detail.to_json()) + repr(detail)
        assert SECRET not in shown
        assert op.url not in shown
        assert all(signature not in shown for signature in url_signatures(op.url))
        assert "handover_token" not in shown
        assert all(token not in shown for token in recorded.tokens)
    assert len(recorded.tokens) == 2


def test_a_failure_with_its_error(journal: Journal, recorded: Recorded) -> None:
    detail = journal.get_operation(recorded.failed.op_id)
    assert detail.operation.status is OperationStatus.FAILED
    failed = detail.steps[-1]
    assert (failed.name, failed.status) == ("put-bucket-policy", StepStatus.FAILED)
    assert failed.error is not None
    assert failed.error.short_type == "RuntimeError"
    assert failed.error.type == "builtins:RuntimeError"
    assert failed.error.message == "bucket policy refused: MalformedPolicy"
    response = detail.operation.response
    assert response is not None and response.status.value == "FAILED"
    assert response.reason is not None and "bucket policy refused" in response.reason
    assert response.physical_id == "broken-bucket"  # ctx.physical_id, reported on a failed Create


def test_a_hand_over_across_two_invocations(journal: Journal, recorded: Recorded) -> None:
    detail = journal.get_operation(recorded.handed_over.op_id)
    op = detail.operation
    assert op.status is OperationStatus.SUCCEEDED and op.invocations == 2
    assert [(e.what, e.invocation) for e in detail.events] == [
        ("claimed", 1),
        ("handed over", 1),
        ("claimed with hand-over token", 2),
        ("replayed 2 steps", 2),
        ("response SUCCESS", 2),
        ("posted", 2),
    ]
    by_name = {s.name: s for s in detail.steps}
    assert by_name["settle"].kind is StepKind.SLEEP and by_name["settle"].invocation == 1
    assert by_name["settle"].wake_at is not None
    assert by_name["tag-bucket"].invocation == 2
    assert [s.name for s in detail.steps][:2] == ["create-bucket", "settle"]


def test_a_stuck_operation_is_running_with_a_hand_over_pending(
    journal: Journal,
    recorded: Recorded,
) -> None:
    detail = journal.get_operation(recorded.stuck.op_id)
    op = detail.operation
    assert op.status is OperationStatus.RUNNING and op.handover_pending
    assert op.response is None and op.finished_at is None and op.duration is None
    assert not detail.finished
    assert op.elapsed() > 0
    assert [e.what for e in op.events] == ["claimed", "handed over"]
    assert detail.steps[-1].status is StepStatus.WAITING


def test_an_operation_by_a_unique_prefix(journal: Journal, recorded: Recorded) -> None:
    full = recorded.failed.op_id
    assert journal.resolve(full[:6]) == full
    assert journal.resolve(full.upper()) == full
    assert journal.get_operation(full[:12]).operation.op_id == full


def test_unknown_and_ambiguous_ids(dynamodb_endpoint: str) -> None:
    table = create_journal_table(dynamodb_endpoint)
    models = bind(table, "us-east-1", dynamodb_endpoint)
    now = time.time()
    for suffix in ("0" * 36, "1" * 36):
        models.operation(
            pk=op_pk("abcd" + suffix),
            sk="op",
            stack_id=stack_arn("s"),
            logical_id="L",
            request_id=str(uuid.uuid4()),
            resource_type="Custom::X",
            request_type="Create",
            status="RUNNING",
            attempt="0" * 64,
            attempt_no=1,
            fence=1,
            invocations=1,
            issued_at=now,
            created_at=now,
            updated_at=now,
            deadline=now + 60,
        ).save()
    journal = Journal(table, region="us-east-1", endpoint_url=dynamodb_endpoint)
    with pytest.raises(ConfigurationError, match="ambiguous"):
        journal.resolve("abcd")
    assert journal.resolve("abcd1") == "abcd" + "1" * 36
    with pytest.raises(OperationNotFound, match="no operation 'ffff'"):
        journal.get_operation("ffff")
    with pytest.raises(OperationNotFound):
        journal.get_operation("f" * 40)
    with pytest.raises(OperationNotFound, match="hexadecimal"):
        journal.get_operation("not-an-id")
    with pytest.raises(ConfigurationError, match="too short"):
        journal.get_operation("ab")


def test_steps_order_by_sequence_number_and_scope(dynamodb_endpoint: str) -> None:
    """Sequence numbers compare as numbers, scopes as paths; a branch sits between the
    parent steps that ran before and after it."""
    table = create_journal_table(dynamodb_endpoint)
    models = bind(table, "us-east-1", dynamodb_endpoint)
    op_id = "e" * 40
    t0 = 1_800_000_000.0
    # (position, started): root 1..3 and 10; branches 0.2 and 0.10 ran between root 2 and 3
    layout = [
        ("0#00010", t0 + 10),
        ("0#00001", t0 + 1),
        ("0.10#00001", t0 + 2.5),
        ("0#00003", t0 + 3),
        ("0.2#00001", t0 + 2.5),
        ("0.2#00002", t0 + 2.7),
        ("0#00002", t0 + 2),
    ]
    for position, started in layout:
        models.step(
            pk=op_pk(op_id),
            sk=f"step#{position}",
            name=position,
            kind="step",
            status="SUCCEEDED",
            attempt=1,
            op_attempt=1,
            started_at=started,
            ended_at=started,
            invocation=1,
            fence=1,
        ).save()
    models.operation(
        pk=op_pk(op_id),
        sk="op",
        stack_id=stack_arn("s"),
        logical_id="L",
        request_id="r",
        resource_type="Custom::X",
        request_type="Create",
        status="SUCCEEDED",
        attempt="0" * 64,
        attempt_no=1,
        fence=1,
        invocations=1,
        issued_at=t0,
        created_at=t0,
        updated_at=t0 + 11,
        deadline=t0 + 3600,
    ).save()
    journal = Journal(table, region="us-east-1", endpoint_url=dynamodb_endpoint)
    steps = journal.get_operation(op_id).steps
    assert [s.position for s in steps] == [
        "0#00001",
        "0#00002",
        "0.2#00001",
        "0.10#00001",
        "0.2#00002",
        "0#00003",
        "0#00010",
    ]


# -- configuration and errors ----------------------------------------------------------------


def test_region_and_endpoint_come_from_the_environment(
    recorded: Recorded,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", recorded.endpoint)
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    journal = Journal(recorded.table)
    assert (journal.region, journal.endpoint_url) == ("us-east-1", recorded.endpoint)
    assert len(journal.list_operations().operations) == 4


def test_no_region_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigurationError, match="no AWS region"):
        Journal("t")


def test_a_missing_table(dynamodb_endpoint: str) -> None:
    journal = Journal("no-such-table", region="us-east-1", endpoint_url=dynamodb_endpoint)
    with pytest.raises(TableNotFound, match="no journal table 'no-such-table' in us-east-1"):
        journal.list_operations()
    with pytest.raises(TableNotFound):
        journal.get_operation("a" * 40)


def test_an_unreachable_endpoint_fails_fast() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    journal = Journal("t-unreachable", region="us-east-1", endpoint_url=endpoint)
    started = time.monotonic()
    with pytest.raises(JournalUnreachable, match=f"could not reach {endpoint}"):
        journal.list_operations()
    assert time.monotonic() - started < 15


def test_no_credentials(dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    journal = Journal("t-nocreds", region="us-east-1", endpoint_url=dynamodb_endpoint)
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        journal.list_operations()


# -- the runtime's step timing, as the journal shows it -----------------------------------


def test_a_step_journals_when_it_started(
    dynamodb_endpoint: str,
    moto_endpoint: str,
    presigned_response_url: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", moto_endpoint.split("//")[1])
    table = create_journal_table(dynamodb_endpoint)
    resource = asynccfn.Resource(update="replace", delete="nothing")

    async def slow() -> int:
        import asyncio

        await asyncio.sleep(0.3)
        return 1

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step("slow", slow)
        return asynccfn.Success(physical_id="p")

    url, _ = presigned_response_url()
    event = event_for("create", url)
    handler = asynccfn.lambda_entry(resource, journal=table)
    with closing_handler(handler):
        assert handler(event, FakeLambdaContext())["outcome"] == "SUCCESS"
    journal = Journal(table, region="us-east-1", endpoint_url=dynamodb_endpoint)
    (op,) = journal.list_operations().operations
    (step,) = journal.get_operation(op.op_id).steps
    assert step.duration is not None and step.duration >= 0.3
