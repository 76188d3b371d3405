"""Area 7: secrets and request forgery.

Every test of the suite is scanned (conftest.py) for the ResponseURLs it issued, their
signatures and its NoEcho values, in every function's log, the in-process logs and pytest's
captured output. Here: the CLI's output and the journal's own items, and ResponseURLs aimed
where no response may go, each refused with a reason that names the host at most.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

import asynccfn
from asynccfn import cli
from asynccfn._entry import LambdaHandler
from asynccfn.journal.query import Journal
from tests.reliability._endpoint import Fault
from tests.reliability._tally import SECRETS
from tests.reliability._threaded import ThreadedApp
from tests.reliability.conftest import Rel, URLs
from tests.support import (
    FakeLambdaContext,
    answering_resource,
    closing_handler,
    event_for,
    event_op_id,
    journal_items,
    url_signatures,
)


class Trap(ThreadedApp):
    """A loopback server no response may reach: it counts whatever arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.hits = 0

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._hit)
        return app

    async def _hit(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(status=200)


@pytest.fixture
def trap() -> Iterator[Trap]:
    with Trap() as server:
        yield server


def test_no_secret_in_logs_cli_output_or_journal_items(
    rel: Rel, capsys: pytest.CaptureFixture[str]
) -> None:
    fn = rel.deploy("secretive", timeout=8, environment={"REL_RESERVE": "4"})
    secret = f"noecho-{secrets.token_hex(16)}"
    SECRETS.register(secret)
    # a hand-over carries the event, ResponseURL and all, through Lambda's Invoke API
    kept = rel.send(fn, Steps=2, PauseAt=2, Secret=secret)
    failed = rel.send(fn, Raise="boom with a traceback")
    answer = kept.response()
    assert answer["NoEcho"] is True and answer["Data"] == {"Password": secret}
    assert failed.response()["Status"] == "FAILED"
    rel.wait_idle()

    common = ["--table", rel.journal_table, "--region", "us-east-1"]
    common += ["--endpoint-url", rel.dynamodb]
    outputs: list[str] = []
    for argv in (
        ["journal", "list"],
        ["journal", "list", "--json"],
        ["journal", "show", kept.op_id],
        ["journal", "show", kept.op_id, "--json"],
        ["journal", "show", failed.op_id],
    ):
        assert cli.main([*argv, *common]) == 0, argv
        out, err = capsys.readouterr()
        outputs += [out, err]
    assert kept.op_id[:12] in outputs[0]
    assert SECRETS.found_in(outputs) == [], "the CLI printed a secret"
    shown = json.loads(outputs[6])
    assert shown["operation"]["response"]["data"] == {"Password": "****"}

    view = json.dumps(rel.detail(kept).to_json())
    assert secret not in view and "****" in view
    # The journal keeps the URL's digest, never the URL; the outbox held the whole body until
    # it was posted (a re-post sends the same bytes), and keeps it NoEcho-masked since, with
    # the digest of what was sent.
    stored = json.dumps(journal_items(rel.dynamodb, rel.journal_table))
    for sent in (kept, failed):
        for part in (sent.url.url, *url_signatures(sent.url.url)):
            assert part not in stored
    assert secret not in stored
    assert (
        shown["operation"]["response"]["digest"] == hashlib.sha256(kept.url.stored()[0]).hexdigest()
    )
    # CloudFormation alone reads NoEcho Data: every other field of each response is scanned
    bodies = [json.loads(body) for sent in (kept, failed) for body in sent.url.stored()]
    assert SECRETS.found_in(json.dumps({**b, "Data": None}) for b in bodies) == []
    assert SECRETS.found_in([stored]) == []


RESPONSE_BUCKET = "cloudformation-custom-resource-response-useast1"
FORGED = [
    ("https://169.254.169.254/latest/meta-data/iam/security-credentials/", "instance-metadata"),
    ("http://169.254.170.2/v2/credentials", "link-local"),
    ("https://[fd00:ec2::254]/latest/meta-data", "instance-metadata"),
    ("https://[::ffff:169.254.169.254]/latest", "link-local"),
    ("http://{trap}/r", "must use https"),
    ("https://{trap}/r", "local or IP-literal"),
    ("https://localhost:{port}/r", "local or IP-literal"),
    ("ftp://s3.amazonaws.com/r", "must use https"),
    ("gopher://s3.amazonaws.com/r", "must use https"),
    ("file:///etc/passwd", "ResponseURL"),
    ("https://s3.amazonaws.com.evil.example/r", "not a CloudFormation response bucket"),
    ("https://responses.evil.example/r", "not a CloudFormation response bucket"),
    # anyone's own bucket: it would receive the operation's answer, NoEcho Data included
    ("https://attacker-bucket.s3.amazonaws.com/r", "not a CloudFormation response bucket"),
    ("https://s3.us-west-2.amazonaws.com/attacker-bucket/r", "not a CloudFormation response"),
    # CloudFormation's bucket, but the object of another operation
    (f"https://{RESPONSE_BUCKET}.s3.amazonaws.com/other%7Cstack%7Cop", "another operation"),
    ("https://s3.amazonaws.com@evil.example/r", "user information"),
    (f"https://{RESPONSE_BUCKET}.s3.amazonaws.com:444/r", "port 444"),
]


def test_forged_response_urls_are_refused_with_a_clear_reason(
    local_env: str,
    journal_table: str,
    urls: URLs,
    trap: Trap,
    asynccfn_logs: list[str],
) -> None:
    handler = asynccfn.lambda_entry(answering_resource(), journal=journal_table)
    assert isinstance(handler, LambdaHandler)
    with closing_handler(handler):
        for template, why in FORGED:
            base = template.format(trap=trap.host, port=trap.port)
            signature = secrets.token_hex(32)
            url = f"{base}?X-Amz-Date=20260101T000000Z&X-Amz-Signature={signature}"
            SECRETS.register_url(url)
            seen = len(asynccfn_logs)
            outcome = handler(event_for("create", url), FakeLambdaContext(10))["outcome"]
            assert outcome == "malformed-unanswerable", (base, outcome)
            lines = [json.loads(line) for line in asynccfn_logs[seen:]]
            [refusal] = [line for line in lines if line["level"] == "ERROR"]
            message = refusal["message"]
            assert why in message, (base, message)
            path = urlsplit(base).path
            assert signature not in message and path not in message, message
    assert trap.hits == 0  # nothing was ever sent there


def test_a_redirect_from_the_response_endpoint_is_not_followed(
    local_env: str, journal_table: str, urls: URLs, trap: Trap
) -> None:
    url = urls.issue(
        forever=Fault.redirect(f"http://{trap.host}/latest/meta-data"), expect_answer=False
    )
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="p")

    handler = asynccfn.lambda_entry(resource, journal=journal_table)
    assert isinstance(handler, LambdaHandler)
    with closing_handler(handler):
        event: dict[str, Any] = event_for("create", url.url)
        assert handler(event, FakeLambdaContext(10))["outcome"] == "SUCCESS"
    assert [p.answer for p in url.puts()] == ["307"]
    assert trap.hits == 0


def every_output(
    body: dict[str, Any],
    logs: list[str],
    capsys: pytest.CaptureFixture[str],
    endpoint: str,
    table: str,
    event: dict[str, Any],
) -> list[str]:
    """The response, the logs, what was printed, the journal's items and the CLI's output."""
    return [
        json.dumps(body),
        *logs,
        *capsys.readouterr(),
        json.dumps(journal_items(endpoint, table)),
        *journal_cli_outputs(capsys, endpoint, table, event_op_id(event)),
    ]


def journal_cli_outputs(
    capsys: pytest.CaptureFixture[str], endpoint: str, table: str, op_id: str
) -> list[str]:
    """What every journal command prints about the table and the operation (text and JSON)."""
    common = ["--table", table, "--region", "us-east-1", "--endpoint-url", endpoint]
    outputs: list[str] = []
    for argv in (
        ["journal", "list"],
        ["journal", "list", "--json"],
        ["journal", "show", op_id],
        ["journal", "show", op_id, "--json"],
        ["journal", "tail", op_id, "--timeout", "5"],
    ):
        assert cli.main([*argv, *common]) in (0, 3), argv
        out, err = capsys.readouterr()
        outputs += [out, err]
    return outputs


def test_a_sensitive_member_in_a_failed_call_stays_out_of_every_output(
    local_env: str,
    journal_table: str,
    urls: URLs,
    asynccfn_logs: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = f"sensitive-{secrets.token_hex(16)}"
    SECRETS.register(secret)
    caught: list[BaseException] = []
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        sm = await ctx.client("secretsmanager")
        try:  # a dict where a string was meant: botocore's message repeats it
            await ctx.call(
                "secretsmanager:CreateSecret",
                sm.create_secret,
                Name="db",
                SecretString={"username": "admin", "password": secret},
            )
        except Exception as exc:
            caught.append(exc)
            raise
        raise AssertionError("unreachable")

    handler = asynccfn.lambda_entry(resource, journal=journal_table)
    assert isinstance(handler, LambdaHandler)
    url = urls.issue()
    event = event_for("create", url.url)
    with closing_handler(handler):
        handler(event, FakeLambdaContext(10))
    body = url.single_response()
    assert body["Status"] == "FAILED"
    assert "ParamValidationError" in body["Reason"] and "SecretString" in body["Reason"]
    [error] = caught
    chain = "".join(traceback.format_exception(error))
    assert error.__cause__ is None and error.__context__ is None and error.__suppress_context__
    logged = [json.loads(line) for line in asynccfn_logs]
    assert [line["level"] for line in logged].count("ERROR") == 2  # the traceback, the reason
    assert any("ParamValidationError" in line.get("errorType", "") for line in logged)

    op_id = event_op_id(event)
    reader = Journal(journal_table, region="us-east-1", endpoint_url=local_env)
    [step] = reader.get_operation(op_id).steps
    assert step.error is not None and "SecretString" in step.error.message
    texts = [
        json.dumps(body),
        chain,
        *asynccfn_logs,
        json.dumps(journal_items(local_env, journal_table)),
        *journal_cli_outputs(capsys, local_env, journal_table, op_id),
    ]
    assert SECRETS.found_in(texts) == [], "a sensitive member's value leaked"
    assert all(secret not in text for text in texts)


def test_a_handlers_error_and_log_lines_that_repeat_the_response_url_are_masked(
    local_env: str,
    journal_table: str,
    urls: URLs,
    asynccfn_logs: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """User code that puts the ResponseURL (a bearer credential) in a log line, in a step's
    error and in the error it raises: the Reason, the journal (the step's error) and every
    log line show the mask instead."""
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        ctx.logger.info("will answer %s", request.response_url)

        async def notify() -> None:
            raise ConnectionError(f"refused by {request.response_url}")

        with contextlib.suppress(ConnectionError):
            await ctx.step("notify", notify)
        raise RuntimeError(f"could not reach {request.response_url}")

    handler = asynccfn.lambda_entry(resource, journal=journal_table)
    url = urls.issue()
    event = event_for("create", url.url)
    with closing_handler(handler):
        handler(event, FakeLambdaContext(10))
    body = url.single_response()
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("RuntimeError: could not reach ****"), body["Reason"]
    logged = [json.loads(line) for line in asynccfn_logs]
    assert any(line["message"] == "will answer ****" for line in logged), logged
    [traceback_line] = [line for line in logged if "stackTrace" in line]
    assert "RuntimeError: could not reach ****" in traceback_line["stackTrace"][-1]
    [step] = (
        Journal(journal_table, region="us-east-1", endpoint_url=local_env)
        .get_operation(event_op_id(event))
        .steps
    )
    assert step.error is not None and step.error.message == "refused by ****"
    outputs = every_output(body, asynccfn_logs, capsys, local_env, journal_table, event)
    assert not [s for s in [url.url, *url_signatures(url.url)] for text in outputs if s in text]


def test_a_step_result_state_and_data_that_repeat_the_response_url_are_masked(
    local_env: str,
    journal_table: str,
    urls: URLs,
    asynccfn_logs: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """User code that returns the ResponseURL from a step, keeps it in ctx.state and answers
    it in Data: the journal and the response hold the mask, and the live run goes on with the
    step's value as journaled (what a replay would return)."""
    resource = asynccfn.Resource(update="replace", delete="nothing")
    seen: list[Any] = []

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def callback() -> dict[str, str]:
            return {"callback": request.response_url, "job": "j-1"}

        ctx.state["callback"] = request.response_url
        seen.append(await ctx.step("start job", callback))
        return asynccfn.Success(physical_id="job-j-1", data={"Callback": request.response_url})

    handler = asynccfn.lambda_entry(resource, journal=journal_table)
    url = urls.issue()
    event = event_for("create", url.url)
    with closing_handler(handler):
        handler(event, FakeLambdaContext(10))
    body = url.single_response()
    assert body["Status"] == "SUCCESS" and body["Data"] == {"Callback": "****"}
    assert seen == [{"callback": "****", "job": "j-1"}]
    [step] = (
        Journal(journal_table, region="us-east-1", endpoint_url=local_env)
        .get_operation(event_op_id(event))
        .steps
    )
    assert step.result == seen[0]  # what a replay returns
    outputs = every_output(body, asynccfn_logs, capsys, local_env, journal_table, event)
    assert not [s for s in [url.url, *url_signatures(url.url)] for text in outputs if s in text]
