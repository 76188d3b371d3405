"""Secrets kept out of text (DESIGN.md invariant 13): values asynccfn learns are secret
while the handler runs (a sensitive member of a ``ctx.call`` response, the value of an
EventState key listed in ``sensitive_state``, journaled or restored after a hand-over, a
sensitive step's numeric result, a sensitive result logged as a structured field) are masked
wherever text repeats them: the journal's items, the Reason, the logs and the CLI's journal
views. Each test drives an in-process handler against DynamoDB Local and moto's server (S3
response URLs, KMS, Secrets Manager) over HTTP, a fake Invoke API for hand-overs, and looks
for its planted secret in each of them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest

import asynccfn
from asynccfn import cli
from asynccfn._response import MASK
from asynccfn.journal._payload import PREFIX
from tests.journal.scenarios import FakeInvokeAPI
from tests.reliability._scenarios import REGION, Create, client, journal_item, sealing_password
from tests.runtime.test_sensitive_inprocess import kms_key, lambdas  # noqa: F401
from tests.support import FakeLambdaContext, closing_handler, event_for, journal_items


def _cli_outputs(
    capsys: pytest.CaptureFixture[str], endpoint: str, table: str, op_id: str
) -> list[str]:
    common = ["--table", table, "--region", REGION, "--endpoint-url", endpoint]
    outputs: list[str] = []
    for argv in (["journal", "show", op_id], ["journal", "show", op_id, "--json"]):
        assert cli.main([*argv, *common]) == 0, argv
        out, err = capsys.readouterr()
        outputs += [out, err]
    return outputs


@pytest.fixture
def leaks(
    capsys: pytest.CaptureFixture[str],
    dynamodb_endpoint: str,
    journal: str,
    asynccfn_logs: list[str],
) -> Callable[[str, str, str], list[str]]:
    """``leaks(secret, op_id, reason)``: where ``secret`` shows of the texts it must never
    reach: the journal's items, the Reason, the logs and the CLI's output."""

    def where(secret: str, op_id: str, reason: str) -> list[str]:
        views = {
            "the journal's items": json.dumps(journal_items(dynamodb_endpoint, journal)),
            "the Reason": reason,
            "the logs": "\n".join(asynccfn_logs),
            "the CLI": "\n".join(_cli_outputs(capsys, dynamodb_endpoint, journal, op_id)),
        }
        return [view for view, text in views.items() if secret in text]

    return where


# -- a sensitive member of a ctx.call *response* --------------------------------------------


@pytest.fixture
def secretsmanager(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto's Secrets Manager for the handler's clients; the endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)
    return moto_endpoint


def test_invariant_13_a_sensitive_call_response_member_repeated_by_an_error_is_masked(
    journal: str,
    dynamodb_endpoint: str,
    secretsmanager: str,
    presigned_response_url: Any,
    leaks: Callable[[str, str, str], list[str]],
) -> None:
    """GetSecretValue's SecretString is ``sensitive`` in the service model: ctx.call keeps it
    out of the call's journal record, and once the handler holds it, masks it in text like a
    request's sensitive members: a log line and a later step's error that repeat it are
    journaled, answered, logged and shown by the CLI masked."""
    secret = f"db-password-{secrets.token_hex(12)}"
    name = f"review-{secrets.token_hex(4)}"
    sm = client("secretsmanager", secretsmanager)
    try:
        sm.create_secret(Name=name, SecretString=secret)
    finally:
        sm.close()

    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        client = await ctx.client("secretsmanager")
        got = await ctx.call(
            "secretsmanager:GetSecretValue", client.get_secret_value, SecretId=name
        )
        password = got["SecretString"]
        ctx.logger.info("logging in with %s", password)

        async def log_in() -> None:
            raise PermissionError(f"the database refused admin:{password}")

        await ctx.step("log-in", log_in)
        return asynccfn.Success(physical_id="db")

    sent = Create.new(presigned_response_url)
    with closing_handler(asynccfn.lambda_entry(resource, journal=journal)) as handler:
        assert handler(sent.event, FakeLambdaContext())["outcome"] == "FAILED"
    body = sent.answer()
    assert body["Reason"].startswith("PermissionError: the database refused"), body
    call = journal_item(dynamodb_endpoint, journal, sent.op_id, "secretsmanager:GetSecretValue")
    assert secret not in json.dumps(call)  # the call's own record is clean ...
    found = leaks(secret, sent.op_id, body["Reason"])
    assert not found, f"a sensitive response member leaked into {found}"


# -- a sensitive_state value repeated in an error -------------------------------------------


def test_invariant_13_a_sensitive_state_value_repeated_by_a_step_error_is_masked(
    journal: str,
    dynamodb_endpoint: str,
    kms_key: str,  # noqa: F811
    presigned_response_url: Any,
    leaks: Callable[[str, str, str], list[str]],
) -> None:
    """``sensitive_state`` keys "are masked in every view": the EventState is encrypted, and
    the value of a listed key is masked in text once the state holding it is journaled, so a
    step error that repeats it reaches the step item, the Reason, the logs and the CLI
    masked (as a sensitive step's result in the same place is)."""
    secret = f"generated-{secrets.token_hex(12)}"
    resource = asynccfn.Resource(update="replace", delete="nothing")

    def create_user(password: str) -> None:
        raise ValueError(f"the database rejected password {password}")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        ctx.state.setdefault("password", secret)  # e.g. generated once, kept across runs
        await ctx.step("create-user", create_user, ctx.state["password"])
        return asynccfn.Success(physical_id="user")

    sent = Create.new(presigned_response_url)
    with closing_handler(sealing_password(resource, journal, kms_key)) as handler:
        assert handler(sent.event, FakeLambdaContext())["outcome"] == "FAILED"
    body = sent.answer()
    assert body["Reason"].startswith("ValueError: the database rejected password"), body
    step = journal_item(dynamodb_endpoint, journal, sent.op_id, "create-user")
    assert step["state"]["S"].startswith(PREFIX)  # the state itself is sealed ...
    found = leaks(secret, sent.op_id, body["Reason"])
    assert not found, f"a sensitive_state value leaked into {found}"


def test_invariant_13_a_sensitive_state_value_restored_after_a_hand_over_is_masked(
    journal: str,
    kms_key: str,  # noqa: F811
    lambdas: FakeInvokeAPI,  # noqa: F811
    presigned_response_url: Any,
    leaks: Callable[[str, str, str], list[str]],
) -> None:
    """A hand-over's successor restores the EventState from the journal: the values of its
    listed keys are masked in the successor's text from then on, though it journals no state
    itself: an error that repeats one, raised outside any step, is answered and logged
    masked."""
    secret = f"generated-{secrets.token_hex(12)}"
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        ctx.state.setdefault("password", secret)
        await ctx.sleep(4, "settle")  # past the first invocation's deadline: a hand-over
        raise ValueError(f"the database rejected password {ctx.state['password']}")

    sent = Create.new(presigned_response_url)
    with closing_handler(sealing_password(resource, journal, kms_key, reserve=2.0)) as handler:
        assert handler(sent.event, FakeLambdaContext(5))["outcome"] == "handed-over"
        assert handler(lambdas.payloads[-1], FakeLambdaContext())["outcome"] == "FAILED"
    body = sent.answer()
    assert body["Reason"].startswith("ValueError: the database rejected password"), body
    found = leaks(secret, sent.op_id, body["Reason"])
    assert not found, f"a restored sensitive_state value leaked into {found}"


def test_invariant_13_a_sensitive_state_value_set_and_repeated_before_any_write_is_masked(
    journal: str,
    kms_key: str,  # noqa: F811
    presigned_response_url: Any,
    leaks: Callable[[str, str, str], list[str]],
) -> None:
    """A listed key set and repeated by the handler's error before any step journals the
    state: however the handler ends, the state's secret values are masked in the answer and
    what is logged and journaled after it."""
    secret = f"generated-{secrets.token_hex(12)}"
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        ctx.state["password"] = secret
        raise ValueError(f"the database rejected password {secret}")

    sent = Create.new(presigned_response_url)
    with closing_handler(sealing_password(resource, journal, kms_key)) as handler:
        assert handler(sent.event, FakeLambdaContext())["outcome"] == "FAILED"
    body = sent.answer()
    assert body["Reason"].startswith("ValueError: the database rejected password"), body
    found = leaks(secret, sent.op_id, body["Reason"])
    assert not found, f"a sensitive_state value leaked into {found}"


# -- a sensitive result in a log record's extra fields -------------------------------------


def test_invariant_13_a_sensitive_result_given_as_a_log_records_extra_field_is_masked(
    journal: str,
    kms_key: str,  # noqa: F811
    presigned_response_url: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """asynccfn's JSON lines (and Lambda's) print every extra attribute of a record: the
    masking filter masks them as it masks the message, so a sensitive step's result given as
    a structured field reaches stdout (CloudWatch) masked, and the line stays JSON."""
    secret = f"generated-{secrets.token_hex(12)}"
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        password = await ctx.step("fetch-password", lambda: secret, sensitive=True)
        ctx.logger.logger.info("connected as %s", "admin", extra={"credential": password})
        return asynccfn.Success(physical_id="db")

    url, _read = presigned_response_url()
    handler = asynccfn.lambda_entry(resource, journal=journal, codec=asynccfn.KmsCodec(kms_key))
    with closing_handler(handler):
        assert handler(event_for("create", url), FakeLambdaContext())["outcome"] == "SUCCESS"
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    [connected] = [line for line in lines if line.get("message") == "connected as admin"]
    assert connected["credential"] == MASK  # still printed, masked
    assert secret not in out + err, f"a sensitive result was logged: {connected}"


# -- a sensitive result that is a number --------------------------------------------------


def test_invariant_13_a_numeric_sensitive_result_repeated_by_an_error_is_masked(
    journal: str,
    dynamodb_endpoint: str,
    kms_key: str,  # noqa: F811
    presigned_response_url: Any,
    leaks: Callable[[str, str, str], list[str]],
) -> None:
    """``Redactor.keep`` collects the numbers of a sensitive result as well as its strings: a
    PIN or an account number returned as a JSON number (here inside an object) repeated by
    a later step's error is journaled, answered and logged masked."""
    pin = 80_417_395_262
    resource = asynccfn.Resource(update="replace", delete="nothing")

    def unlock(code: int) -> None:
        raise PermissionError(f"the device refused unlock code {code}")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        got = await ctx.step("fetch-pin", lambda: {"pin": pin}, sensitive=True)
        await ctx.step("unlock", unlock, got["pin"])
        return asynccfn.Success(physical_id="device")

    sent = Create.new(presigned_response_url)
    handler = asynccfn.lambda_entry(resource, journal=journal, codec=asynccfn.KmsCodec(kms_key))
    with closing_handler(handler):
        assert handler(sent.event, FakeLambdaContext())["outcome"] == "FAILED"
    body = sent.answer()
    assert body["Reason"].startswith("PermissionError: the device refused"), body
    step = journal_item(dynamodb_endpoint, journal, sent.op_id, "unlock")
    assert "the device refused unlock code ****" in json.dumps(step)  # journaled, masked
    found = leaks(str(pin), sent.op_id, body["Reason"])
    assert not found, f"a sensitive numeric result leaked into {found}"
