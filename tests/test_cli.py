"""The ``asynccfn`` command: ``journal list|show|tail`` on operations the runtime really wrote
to DynamoDB Local, ``table create|template``, and its one-line errors."""

from __future__ import annotations

import ast
import datetime
import io
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest

import asynccfn
from asynccfn import cli
from asynccfn._cli_table import (
    CODEC_KMS_ACTIONS,
    READER_DYNAMODB_ACTIONS,
    RUNTIME_DYNAMODB_ACTIONS,
)
from asynccfn.journal import Journal, OperationStatus
from asynccfn.local import free_port
from asynccfn.local.lambda_service import FunctionConfig, LambdaServiceThread
from tests.journal.scenarios import SECRET, Recorded, botocore_calls, record_operations
from tests.support import (
    FakeLambdaContext,
    closing_handler,
    create_journal_table,
    event_for,
    event_op_id,
    url_signatures,
)

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DURATION = r"(\d+ ms|\d+\.\d s|\d+ s|\d+ m \d+ s|\d+ h \d+ m|\d+ d \d+ h)"


class Ran:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str) -> Ran:
        capsys.readouterr()  # what ran before (the runtime's logs) is not the command's
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


@pytest.fixture
def at(recorded: Recorded) -> list[str]:
    """The options that name the recorded journal."""
    return ["--table", recorded.table, "--region", "us-east-1", "--endpoint-url", recorded.endpoint]


def assert_no_secrets(text: str, recorded: Recorded) -> None:
    assert SECRET not in text
    for op in recorded.all:
        assert op.url not in text
        assert urlsplit(op.url).query not in text
        assert all(signature not in text for signature in url_signatures(op.url))
    for token in recorded.tokens:
        assert token not in text


def assert_one_line_error(ran: Ran, *fragments: str) -> None:
    assert ran.code == cli.EXIT_ERROR
    assert ran.out == ""
    assert "Traceback" not in ran.err
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("asynccfn: ")
    for fragment in fragments:
        assert fragment in lines[0]


# -- journal list ----------------------------------------------------------------------------


def test_list_prints_an_aligned_table_newest_first(
    run: Any,
    at: list[str],
    recorded: Recorded,
) -> None:
    ran = run("journal", "list", *at)
    assert ran.code == 0
    lines = ran.out.splitlines()
    assert lines[0].split() == [
        "OPERATION",
        "STACK",
        "LOGICAL",
        "ID",
        "TYPE",
        "STATUS",
        "INVOCATIONS",
        "DURATION",
        "STARTED",
        "(UTC)",
    ]
    rows = lines[1:]
    assert [row.split()[0] for row in rows] == [
        op.op_id[:12]
        for op in (recorded.stuck, recorded.handed_over, recorded.failed, recorded.succeeded)
    ]
    expected = [
        ("data-stack", "StuckBucket", "RUNNING", "1"),
        ("data-stack", "SlowBucket", "SUCCEEDED", "2"),
        ("web-stack", "BrokenBucket", "FAILED", "1"),
        ("web-stack", "OkBucket", "SUCCEEDED", "1"),
    ]
    for row, (stack, logical, status, invocations) in zip(rows, expected, strict=True):
        match = re.fullmatch(
            rf"[0-9a-f]{{12}}\s+{stack}\s+{logical}\s+Create\s+{status}\s+{invocations}\s+"
            rf"{DURATION}\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d",
            row,
        )
        assert match, row
    # aligned: every column starts where its header does
    for header in ("STACK", "STATUS", "DURATION", "STARTED"):
        column = lines[0].index(header)
        assert all(row[column - 2 : column] == "  " and row[column] != " " for row in rows)
    assert not ANSI.search(ran.out)  # not a terminal: no colour
    assert ran.err == ""
    assert_no_secrets(ran.out, recorded)


def test_list_filters_by_stack_status_and_since(
    run: Any,
    at: list[str],
    recorded: Recorded,
) -> None:
    def listed(*options: str) -> list[str]:
        ran = run("journal", "list", "--json", *options, *at)
        assert ran.code == 0, ran.err
        return [op["op_id"] for op in ran.json["operations"]]

    web = [recorded.failed.op_id, recorded.succeeded.op_id]
    assert listed("--stack", "web-stack") == web
    assert listed("--stack", recorded.succeeded.stack_id) == web
    assert listed("--status", "running") == [recorded.stuck.op_id]
    assert listed("--status", "FAILED", "--stack", "web-stack") == [recorded.failed.op_id]
    assert len(listed("--since", "1h")) == 4
    assert len(listed("--since", "1h30m")) == 4
    future = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()
    assert listed("--since", future) == []
    ran = run("journal", "list", "--status", "timed_out", *at)
    assert ran.code == 0 and ran.out == ""
    assert "no operations match" in ran.err
    # --type keeps one resource type's operations (the recorded ones are all Custom::Bucket).
    assert len(listed("--type", "Custom::Bucket")) == 4
    assert listed("--type", "Custom::Bucket", "--stack", "web-stack") == web
    assert listed("--type", "Custom::Table", "--stack", recorded.succeeded.stack_id) == []
    assert listed("--type", "Custom::Table") == []


def test_list_json_is_stable_and_paginated(
    run: Any,
    at: list[str],
    recorded: Recorded,
) -> None:
    ran = run("journal", "list", "--json", *at)
    document = ran.json
    assert set(document) == {"operations", "next"} and document["next"] is None
    first = document["operations"][0]
    assert first["op_id"] == recorded.stuck.op_id
    assert first["status"] == "RUNNING" and first["handover_pending"] is True
    assert first["stack_name"] == "data-stack"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["created_at"])
    assert ran.out == json.dumps(document, indent=2, sort_keys=True) + "\n"
    assert run("journal", "list", "--json", *at).out == ran.out  # same journal, same bytes
    assert_no_secrets(ran.out, recorded)

    page = run("journal", "list", "--json", "--limit", "3", *at).json
    assert len(page["operations"]) == 3 and page["next"]
    rest = run("journal", "list", "--json", "--next", page["next"], *at).json
    assert [op["op_id"] for op in page["operations"] + rest["operations"]] == [
        op["op_id"] for op in document["operations"]
    ]
    text = run("journal", "list", "--limit", "1", *at)
    assert len(text.out.splitlines()) == 2
    assert "more operations: add --next " in text.err


# -- journal show ----------------------------------------------------------------------------


def test_show_a_success(run: Any, at: list[str], recorded: Recorded) -> None:
    ran = run("journal", "show", recorded.succeeded.op_id[:8], *at)
    assert ran.code == 0, ran.err
    out = ran.out
    assert out.startswith(f"Operation {recorded.succeeded.op_id}\n")
    assert "  Resource   OkBucket (Custom::Bucket), Create" in out
    assert f"  Stack      web-stack  {recorded.succeeded.stack_id}" in out
    assert re.search(rf"  Status     SUCCEEDED after {DURATION}, 1 invocation\n", out)
    timeline = out.split("Timeline (UTC)\n")[1].split("\n\n")[0].splitlines()
    assert re.fullmatch(r"  \d\d:\d\d:\d\d\.\d{3}  invocation 1: claimed", timeline[0])
    names = [line.split()[2] for line in timeline[1:5]]
    assert names[0] == "create-bucket" and names[3] == "bucket-exists"
    assert sorted(names[1:3]) == ["log-bucket", "tag-bucket"]
    assert "SUCCEEDED  1 attempt" in timeline[1]
    assert "wait   bucket-exists" in timeline[4] and "1 poll" in timeline[4]
    assert timeline[5].endswith("response SUCCESS") and timeline[6].endswith("posted")
    assert "  Data         Arn=****, Secret=****  (NoEcho)" in out
    assert_no_secrets(out, recorded)


def test_show_a_failure_with_its_error(run: Any, at: list[str], recorded: Recorded) -> None:
    out = run("journal", "show", recorded.failed.op_id, *at).out
    assert re.search(r"step   put-bucket-policy  FAILED     1 attempt", out)
    assert "      RuntimeError: bucket policy refused: MalformedPolicy\n" in out
    assert "response FAILED" in out
    assert re.search(r"  Reason       RuntimeError: bucket policy refused: MalformedPolicy", out)
    assert "  Status       FAILED (posted " in out
    assert_no_secrets(out, recorded)


def test_show_a_hand_over(run: Any, at: list[str], recorded: Recorded) -> None:
    out = run("journal", "show", recorded.handed_over.op_id, *at).out
    assert "SUCCEEDED after" in out and "2 invocations" in out
    timeline = out.split("Timeline (UTC)\n")[1].split("\n\n")[0]
    order = [
        "invocation 1: claimed",
        "create-bucket",
        "sleep  settle",
        "handed over",
        "invocation 2: claimed with hand-over token",
        "tag-bucket",
        "response SUCCESS",
        "posted",
    ]
    positions = [timeline.index(what) for what in order]
    assert positions == sorted(positions)
    assert re.search(r"sleep  settle\s+SLEPT\s+until \d\d:\d\d:\d\d", timeline)
    assert_no_secrets(out, recorded)


def test_show_says_why_an_operation_is_stuck(run: Any, at: list[str], recorded: Recorded) -> None:
    out = run("journal", "show", recorded.stuck.op_id[:10], *at).out
    assert re.search(rf"  Status     RUNNING for {DURATION}, 1 invocation\n", out)
    assert re.search(r"  Now        handed over by invocation 1 at \d\d:\d\d:\d\d", out)
    assert "  Deadline   " in out
    assert re.search(r"sleep  settle\s+WAITING\s+until \d\d:\d\d:\d\d", out)
    assert out.rstrip().endswith("handed over")
    assert "Response" not in out
    assert_no_secrets(out, recorded)


def test_a_hand_over_nobody_claimed_points_at_lambda(recorded: Recorded) -> None:
    from asynccfn._cli_journal import diagnose

    journal = Journal(recorded.table, region="us-east-1", endpoint_url=recorded.endpoint)
    op = journal.get_operation(recorded.stuck.op_id).operation
    (handed,) = [e.at for e in op.events if e.what == "handed over"]
    soon = diagnose(op, handed + datetime.timedelta(seconds=2))
    assert soon is not None and soon.endswith("should claim it within seconds")
    later = diagnose(op, handed + datetime.timedelta(minutes=5))
    assert later is not None
    assert "(5 m 0 s ago) and not claimed since" in later
    assert "AsyncEventsDropped" in later and "RecursiveLoop is Allow" in later
    assert diagnose(journal.get_operation(recorded.failed.op_id).operation, handed) is None


def test_show_json_is_the_query_api_record(run: Any, at: list[str], recorded: Recorded) -> None:
    journal = Journal(recorded.table, region="us-east-1", endpoint_url=recorded.endpoint)
    for op in recorded.all:
        ran = run("journal", "show", op.op_id, "--json", *at)
        assert ran.code == 0
        assert ran.json == json.loads(json.dumps(journal.get_operation(op.op_id).to_json()))
        assert set(ran.json) == {"operation", "steps"}
        assert_no_secrets(ran.out, recorded)
    succeeded = run("journal", "show", recorded.succeeded.op_id, "--json", *at).json
    assert succeeded["operation"]["response"]["data"] == {"Arn": "****", "Secret": "****"}
    assert succeeded["steps"][0]["position"] == "0#00001"


def test_colour_only_on_a_terminal_without_no_color(
    run: Any,
    at: list[str],
    recorded: Recorded,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finished = ("--stack", "web-stack", *at)  # durations of finished operations stay put
    coloured = run("--color", "always", "journal", "list", *finished).out
    assert "\x1b[32mSUCCEEDED" in coloured and "\x1b[31mFAILED" in coloured
    assert ANSI.sub("", coloured) == run("journal", "list", *finished).out

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert cli.Console.for_streams(Terminal(), io.StringIO(), environ={}).color
    assert not cli.Console.for_streams(Terminal(), io.StringIO(), environ={"NO_COLOR": "1"}).color
    assert not cli.Console.for_streams(Terminal(), io.StringIO(), environ={"TERM": "dumb"}).color
    assert not cli.Console.for_streams(io.StringIO(), io.StringIO(), environ={}).color
    never = cli.Console.for_streams(Terminal(), io.StringIO(), cli.ColorMode.NEVER, environ={})
    assert not never.color


def test_color_is_taken_after_the_subcommand_too(
    run: Any,
    at: list[str],
    recorded: Recorded,
) -> None:
    finished = ("--stack", "web-stack", *at)
    after = run("journal", "list", *finished, "--color", "always").out
    assert after == run("--color", "always", "journal", "list", *finished).out
    assert "\x1b[32mSUCCEEDED" in after
    overridden = run("--color", "always", "journal", "list", *finished, "--color", "never").out
    assert ANSI.sub("", after) == overridden  # the one after the command wins
    parse = cli.build_parser().parse_args
    assert parse(["local", "m:r", "--color", "never"]).color == "never"
    assert parse(["demo"]).color == "auto"  # not given anywhere: the default


def test_table_region_and_endpoint_from_the_environment(
    run: Any,
    recorded: Recorded,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASYNCCFN_JOURNAL_TABLE", recorded.table)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", recorded.endpoint)
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    ran = run("journal", "list", "--json")
    assert ran.code == 0, ran.err
    assert len(ran.json["operations"]) == 4


# -- journal tail ----------------------------------------------------------------------------


def test_tail_of_an_ended_operation_prints_it_and_exits(
    run: Any,
    at: list[str],
    recorded: Recorded,
) -> None:
    ok = run("journal", "tail", recorded.handed_over.op_id, *at)
    assert ok.code == 0, ok.err
    assert "invocation 2: claimed with hand-over token" in ok.out
    assert re.search(rf"ended SUCCEEDED after {DURATION}, 2 invocations\n", ok.out)
    failed = run("journal", "tail", recorded.failed.op_id, *at)
    assert failed.code == cli.EXIT_UNSUCCESSFUL
    assert re.search(rf"ended FAILED after {DURATION}, 1 invocation\n", failed.out)
    assert_no_secrets(ok.out + failed.out, recorded)


def test_tail_gives_up_on_a_stuck_operation_when_told(
    run: Any,
    at: list[str],
    recorded: Recorded,
) -> None:
    ran = run("journal", "tail", recorded.stuck.op_id, "--interval", "0.1", "--timeout", "0.3", *at)
    assert ran.code == cli.EXIT_ERROR
    assert "handed over by invocation 1" in ran.out
    assert ran.err.strip() == (
        f"asynccfn: operation {recorded.stuck.op_id[:12]} is still RUNNING after 0.3 s"
    )


@pytest.mark.xdist_group("short-lambda-timeouts")  # with the other deadline-sensitive tests
def test_tail_follows_a_live_hand_over_in_the_local_lambda_service(
    run: Any,
    lambda_service: LambdaServiceThread,
    dynamodb_endpoint: str,
    moto_endpoint: str,
    presigned_response_url: Any,
) -> None:
    """The runtime under awslambdaric hands over for real; tail follows it to the end."""
    table = create_journal_table(dynamodb_endpoint)
    lambda_service.add_function(
        FunctionConfig(
            name="journal-tail",
            handler="journal_app.handler",
            code_paths=[str(Path(__file__).parent / "journal" / "functions")],
            timeout=5.0,
            recursive_loop="Allow",
            retry_delays=(0.5, 1.0),
            environment={
                "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
                "ASYNCCFN_JOURNAL_TABLE": table,
                "ASYNCCFN_ALLOWED_RESPONSE_HOSTS": urlsplit(moto_endpoint).netloc,
            },
        )
    )
    url, read_body = presigned_response_url()
    event = event_for("create", url, BucketName="tailed", Sleep=7)
    op_id = event_op_id(event)
    lambda_service.invoke("journal-tail", event, invocation_type="Event")
    journal = Journal(table, region="us-east-1", endpoint_url=dynamodb_endpoint)
    deadline = time.monotonic() + 30
    while not journal.list_operations().operations:
        assert time.monotonic() < deadline, "the operation never started"
        time.sleep(0.1)
    at = ["--table", table, "--region", "us-east-1", "--endpoint-url", dynamodb_endpoint]
    ran = run("journal", "tail", op_id[:12], "--interval", "0.2", "--timeout", "60", *at)
    assert ran.code == 0, ran.out + ran.err
    out = ran.out
    for what in (
        "invocation 1: claimed",
        "create-bucket",
        "handed over",
        "invocation 2: claimed with hand-over token",
        "tag-bucket",
        "response SUCCESS",
        "posted",
    ):
        assert what in out
    assert out.index("handed over") < out.index("invocation 2: claimed")
    assert re.search(r"ended SUCCEEDED after .*, [23] invocation", out)
    assert url not in out
    body = read_body()
    assert body is not None and json.loads(body)["Status"] == "SUCCESS"
    lambda_service.wait_idle(timeout=30)


# -- errors ----------------------------------------------------------------------------------


def test_unknown_operation(run: Any, at: list[str]) -> None:
    ran = run("journal", "show", "0123456789abcdef", *at)
    assert_one_line_error(ran, "no operation '0123456789abcdef'", "asynccfn journal list")
    assert_one_line_error(run("journal", "tail", "f" * 40, *at), "no operation")


def test_missing_table(run: Any, dynamodb_endpoint: str) -> None:
    ran = run("journal", "list", "--table", "nope-table", "--endpoint-url", dynamodb_endpoint)
    assert_one_line_error(
        ran, "no journal table 'nope-table' in us-east-1", "asynccfn table create nope-table"
    )


def test_unreachable_endpoint(run: Any) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    ran = run("journal", "show", "a" * 40, "--table", "t-x", "--endpoint-url", endpoint)
    assert_one_line_error(ran, f"could not reach {endpoint}", "--endpoint-url")


def test_no_region(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    ran = run("journal", "list", "--table", "t-x")
    assert_one_line_error(ran, "no AWS region: pass --region or set AWS_REGION")
    assert_one_line_error(run("table", "create", "t-x"), "no AWS region")


def test_no_credentials(run: Any, dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    ran = run("journal", "list", "--table", "t-x", "--endpoint-url", dynamodb_endpoint)
    assert_one_line_error(ran, "no AWS credentials found", "AWS_ACCESS_KEY_ID")


def test_no_table_named(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNCCFN_JOURNAL_TABLE", raising=False)
    assert_one_line_error(run("journal", "list"), "pass --table NAME or set ASYNCCFN_JOURNAL_TABLE")


def test_usage_errors_exit_2(run: Any) -> None:
    for argv in (
        ("journal", "list", "--since", "yesterday", "--table", "t"),
        ("journal", "list", "--status", "done", "--table", "t"),
        ("journal", "list", "--limit", "0", "--table", "t"),
        ("nonsense",),
    ):
        ran = run(*argv)
        assert ran.code == cli.EXIT_USAGE
        assert "Traceback" not in ran.err and len(ran.err.strip().splitlines()) == 1
    assert run("journal").code == cli.EXIT_USAGE
    assert "list" in run("journal").err
    assert run().code == cli.EXIT_USAGE
    assert run("--version").out.strip() == f"asynccfn {asynccfn_version()}"


def asynccfn_version() -> str:
    from importlib.metadata import version

    return version("asynccfn")


def test_human_durations() -> None:
    assert cli.human_duration(0.35) == "350 ms"
    assert cli.human_duration(4.25) == "4.2 s"
    assert cli.human_duration(42) == "42 s"
    assert cli.human_duration(72) == "1 m 12 s"
    assert cli.human_duration(3599) == "59 m 59 s"
    assert cli.human_duration(7500) == "2 h 5 m"
    assert cli.human_duration(100000) == "1 d 3 h"
    assert cli.human_duration(-1) == "0 ms"


# -- table create ----------------------------------------------------------------------------


def test_table_create_makes_a_table_the_runtime_uses(
    run: Any,
    dynamodb_endpoint: str,
    moto_endpoint: str,
    presigned_response_url: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"created-{uuid.uuid4().hex[:8]}"
    ran = run("table", "create", name, "--endpoint-url", dynamodb_endpoint)
    assert ran.code == 0, ran.err
    assert ran.out.strip() == f"created journal table {name!r} in us-east-1 at {dynamodb_endpoint}"

    ddb = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1"
    )
    described = ddb.describe_table(TableName=name)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in described["KeySchema"]} == {
        "pk": "HASH",
        "sk": "RANGE",
    }
    (index,) = described["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by-stack"
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [
        ("stack_id", "HASH"),
        ("created_at", "RANGE"),
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in described["AttributeDefinitions"]}
    assert types == {"pk": "S", "sk": "S", "stack_id": "S", "created_at": "N"}
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at" and ttl["TimeToLiveStatus"] == "ENABLED"
    ddb.close()

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", urlsplit(moto_endpoint).netloc)
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step("only", _one)
        return asynccfn.Success(physical_id="made")

    url, read_body = presigned_response_url()
    handler = asynccfn.lambda_entry(resource, journal=name)
    with closing_handler(handler):
        assert handler(event_for("create", url), FakeLambdaContext())["outcome"] == "SUCCESS"
    listed = run("journal", "list", "--json", "--table", name, "--endpoint-url", dynamodb_endpoint)
    (op,) = listed.json["operations"]
    assert op["status"] == "SUCCEEDED" and op["physical_id"] == "made"
    body = read_body()
    assert body is not None and json.loads(body)["Status"] == "SUCCESS"

    again = run("table", "create", name, "--endpoint-url", dynamodb_endpoint)
    assert_one_line_error(again, f"table {name!r} in us-east-1", "already exists")


async def _one() -> int:
    return 1


# -- table template --------------------------------------------------------------------------


def test_template_passes_cfn_lint_as_yaml_and_json(run: Any) -> None:
    from cfnlint.api import lint
    from cfnlint.decode import cfn_yaml

    as_yaml = run("table", "template").out
    as_json = run("table", "template", "--format", "json").out
    for text in (as_yaml, as_json):
        matches = lint(text)
        assert matches == [], [str(m) for m in matches]
    # the same template: the YAML's short forms (!Ref, !GetAtt, !Sub) read as the JSON's
    assert json.loads(json.dumps(cfn_yaml.loads(as_yaml))) == json.loads(as_json)
    assert "!GetAtt Function.Arn" in as_yaml


KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_template_with_a_kms_key_passes_cfn_lint_and_grants_the_codec_its_key(run: Any) -> None:
    from cfnlint.api import lint

    for form in ("yaml", "json"):
        text = run("table", "template", "--kms-key", KEY_ARN, "--format", form).out
        matches = lint(text)
        assert matches == [], [str(m) for m in matches]
    resources = run("table", "template", "--kms-key", KEY_ARN, "--format", "json").json
    resources = resources["Resources"]
    statements = resources["FunctionPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (key,) = [s for s in statements if s["Sid"] == "JournalPayloadKey"]
    assert key["Resource"] == KEY_ARN
    # exactly what the codec calls: every ``client.<op>(`` of asynccfn/_kms.py
    tree = ast.parse((ROOT / "asynccfn" / "_kms.py").read_text())
    called = {
        "kms:" + "".join(part.title() for part in node.func.attr.split("_"))
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "client"
    }
    assert set(_actions(key)) == called == set(CODEC_KMS_ACTIONS)
    variables = resources["Function"]["Properties"]["Environment"]["Variables"]
    assert variables["ASYNCCFN_KMS_KEY"] == KEY_ARN
    # without a key: no KMS statement, no variable
    plain = run("table", "template", "--format", "json").json["Resources"]
    assert "kms:" not in json.dumps(plain)


def test_template_refuses_what_is_not_a_kms_key_arn(run: Any) -> None:
    ran = run("table", "template", "--kms-key", "alias/journal")
    assert ran.code == 2 and "'alias/journal' is not a KMS key ARN" in ran.err


def test_template_holds_everything_the_function_needs(run: Any) -> None:
    resources = run("table", "template", "--format", "json").json["Resources"]
    table = resources["JournalTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by-stack"
    assert index["KeySchema"] == [
        {"AttributeName": "stack_id", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    function = resources["Function"]["Properties"]
    assert function["RecursiveLoop"] == "Allow"
    assert function["Environment"]["Variables"]["ASYNCCFN_JOURNAL_TABLE"] == {"Ref": "JournalTable"}
    assert function["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    config = resources["FunctionEventInvokeConfig"]["Properties"]
    assert config["MaximumEventAgeInSeconds"] <= 900
    assert config["MaximumRetryAttempts"] == 2
    assert config["FunctionName"] == {"Ref": "Function"}
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["Function", "Arn"]
    }
    statements = resources["FunctionPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert resources["FunctionPolicy"]["Properties"]["RoleName"] == {"Ref": "FunctionRole"}
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["Journal"]["Resource"] == {"Fn::GetAtt": ["JournalTable", "Arn"]}
    invoke = by_sid["InvokeItself"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert {"Fn::GetAtt": ["Function", "Arn"]} in invoke["Resource"]
    assert all(s["Effect"] == "Allow" for s in statements)
    actions = [a for s in statements for a in _actions(s)]
    assert not any("*" in action for action in actions)  # no wildcard actions


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def store_dynamodb_operations() -> set[str]:
    """The DynamoDB operations asynccfn/journal/store.py calls: every ``client.<op>(``."""
    tree = ast.parse((ROOT / "asynccfn" / "journal" / "store.py").read_text())
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "client"
    }
    return {"".join(part.title() for part in call.split("_")) for call in calls}


def test_function_policy_grants_exactly_what_the_store_calls(run: Any) -> None:
    called = store_dynamodb_operations()
    assert called  # the parse found the calls
    resources = run("table", "template", "--format", "json").json["Resources"]
    statements = resources["FunctionPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    granted = {
        action.split(":", 1)[1]
        for statement in statements
        for action in _actions(statement)
        if action.startswith("dynamodb:")
    }
    assert granted == called
    assert {f"dynamodb:{op}" for op in called} == set(RUNTIME_DYNAMODB_ACTIONS)


def test_the_runtime_calls_nothing_the_policy_does_not_grant(
    dynamodb_endpoint: str, moto_endpoint: str
) -> None:
    """A real run (success, failure, hand-over, replay) calls only granted actions."""
    with botocore_calls() as calls:
        record_operations(dynamodb_endpoint, moto_endpoint)
    used = {f"{service}:{op}" for service, op, _ in calls if service in ("dynamodb", "lambda")}
    granted = set(RUNTIME_DYNAMODB_ACTIONS) | {"lambda:Invoke"}  # Invoke is InvokeFunction
    assert {"dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:Query"} <= used
    # create_journal_table's CreateTable/DescribeTable/UpdateTimeToLive are the test's own
    runtime_used = used - {
        "dynamodb:CreateTable",
        "dynamodb:DescribeTable",
        "dynamodb:UpdateTimeToLive",
    }
    assert runtime_used <= granted
    assert "lambda:Invoke" in runtime_used


def test_reader_policy_grants_what_the_journal_command_calls(
    run: Any,
    at: list[str],
    recorded: Recorded,
) -> None:
    with botocore_calls() as calls:
        assert run("journal", "list", *at).code == 0
        assert run("journal", "list", "--stack", recorded.succeeded.stack_id, *at).code == 0
        assert run("journal", "show", recorded.succeeded.op_id[:8], *at).code == 0
        assert run("journal", "tail", recorded.succeeded.op_id, *at).code == 0
    used = {f"dynamodb:{op}" for service, op, _ in calls if service == "dynamodb"}
    assert used == set(READER_DYNAMODB_ACTIONS)
    indexes = {params.get("IndexName") for _, op, params in calls if op == "Query"}
    assert indexes == {None, "by-stack"}
    resources = run("table", "template", "--format", "json").json["Resources"]
    (statement,) = resources["JournalReaderPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert set(statement["Action"]) == set(READER_DYNAMODB_ACTIONS)
    assert {"Fn::Sub": "${JournalTable.Arn}/index/by-stack"} in statement["Resource"]


def test_subcommands_register_from_their_own_modules() -> None:
    import importlib

    assert {"asynccfn._cli_journal", "asynccfn._cli_table"} <= set(cli.COMMANDS)
    for name in cli.COMMANDS:
        assert callable(importlib.import_module(name).register)
    parser = cli.build_parser()
    assert parser.parse_args(["journal", "list"]).run.__name__ == "run_list"
    assert parser.parse_args(["table", "template"]).run.__name__ == "run_template"


def test_status_choices_cover_every_operation_status(run: Any) -> None:
    ran = run("journal", "list", "--help")
    for status in OperationStatus:
        assert status.value.lower() in ran.out


# What a crafted property or identifier could do to the operator's terminal: clear the screen,
# set the window title (OSC ... BEL), a C1 CSI, reorder the line.
HOSTILE = "wipe\x1b[2J\x1b[H-title\x1b]0;pwned\x07-c1\x9b31m-rtl\u202e-end\nsecond line"
ESCAPED = "wipe\\x1b[2J\\x1b[H-title\\x1b]0;pwned\\x07-c1\\x9b31m-rtl\\u202e-end\\nsecond line"


def test_every_view_escapes_control_characters_from_the_journal(
    run: Any,
    dynamodb_endpoint: str,
    moto_endpoint: str,
    presigned_response_url: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", urlsplit(moto_endpoint).netloc)
    table = create_journal_table(dynamodb_endpoint)
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        def refuse(name: str) -> None:
            raise ValueError(f"bad name {name}")  # an error message built from a property

        await ctx.step(f"check {request.properties['Name']}", refuse, request.properties["Name"])
        raise AssertionError("unreachable")

    url, read = presigned_response_url()
    event = event_for("create", url, Name=HOSTILE)
    event["LogicalResourceId"] = f"Demo{HOSTILE}"
    handler = asynccfn.lambda_entry(resource, journal=table)
    with closing_handler(handler):
        handler(event, FakeLambdaContext())
    assert HOSTILE in json.loads(read() or b"{}")["Reason"]
    op_id = event_op_id(event)
    at = ["--table", table, "--region", "us-east-1", "--endpoint-url", dynamodb_endpoint]
    outputs = {}
    for argv in (
        ["journal", "list"],
        ["journal", "list", "--json"],
        ["journal", "show", op_id],
        ["journal", "show", op_id, "--json"],
        ["journal", "tail", op_id],
        ["--color", "always", "journal", "show", op_id],
    ):
        ran = run(*argv, *at)
        assert ran.code in (0, 3), (argv, ran.err)
        outputs[" ".join(argv)] = ran.out + ran.err
    for argv, text in outputs.items():
        for char in ("\x07", "\x9b", "\u202e", "\x1b]", "\x1b[2J", "\x1b[H"):
            assert char not in text, (argv, char)
        if "--json" not in argv:
            assert ESCAPED in text or f"Demo{ESCAPED}" in text, argv
            assert "second line" not in text.replace("\\nsecond line", ""), argv
    show = outputs[f"journal show {op_id}"]
    assert f"bad name {ESCAPED}" in show and f"Demo{ESCAPED}" in show
    assert f"Demo{ESCAPED}"[:30] in outputs["journal list"]
    shown = json.loads(outputs[f"journal show {op_id} --json"])
    assert shown["operation"]["logical_id"] == f"Demo{HOSTILE}"  # JSON escapes, not mangles
    assert "\\u001b[2J" in outputs[f"journal show {op_id} --json"]
    assert "\\u009b" in outputs["journal list --json"]
    coloured = outputs[f"--color always journal show {op_id}"]
    assert ANSI.search(coloured) and ESCAPED in coloured  # the CLI's colours stay


def test_printable_escapes_what_a_terminal_would_act_on() -> None:
    assert cli.printable(HOSTILE) == ESCAPED
    assert cli.printable("tab\there", keep_newlines=True) == "tab\\there"
    assert cli.printable("two\nlines", keep_newlines=True) == "two\nlines"
    assert cli.printable("naïve 汉字 \U0001f4a5") == "naïve 汉字 \U0001f4a5"
    assert json.loads(cli.printable_json({"k": HOSTILE})) == {"k": HOSTILE}
