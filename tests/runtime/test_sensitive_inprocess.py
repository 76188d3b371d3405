"""Secrets stay secret (DESIGN.md invariant 13): ``ctx.step(..., sensitive=True)``,
``lambda_entry(sensitive_state=[...])`` and ``KmsCodec``, driven in-process against DynamoDB
Local, moto's S3 and moto's KMS (its server, over HTTP).

A planted secret goes through a step, the EventState, a hand-over, a replay and a NoEcho
response; it must come back to the handler intact, and be found in no journal item, no log
line, no CLI view and no printout of the local runner or ``asynccfn.testing``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import secrets
import subprocess
import sys
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest

import asynccfn
from asynccfn import _entry, cli
from asynccfn._clients import ClientPool
from asynccfn._logging import JsonLinesFormatter
from asynccfn.journal._payload import PREFIX, Payloads
from asynccfn.local import LOCAL_AWS_ENV
from tests.journal.scenarios import FakeInvokeAPI
from tests.support import (
    FakeLambdaContext,
    answering_resource,
    closing_handler,
    event_for,
    event_op_id,
    journal_items,
    run,
)

REGION = LOCAL_AWS_ENV["AWS_REGION"]


@pytest.fixture
def kms_key(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new symmetric key in moto's KMS (its ARN); the runtime's KMS client goes there."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_endpoint)
    client = botocore.session.get_session().create_client(
        "kms", endpoint_url=moto_endpoint, region_name=REGION
    )
    try:
        arn: str = client.create_key(Description="asynccfn tests")["KeyMetadata"]["Arn"]
    finally:
        client.close()
    return arn


@pytest.fixture
def lambdas(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeInvokeAPI]:
    """The Invoke API the hand-over calls; it keeps the successors' payloads."""
    with FakeInvokeAPI() as api:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", api.endpoint_url)
        yield api


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logs() -> Iterator[list[logging.LogRecord]]:
    """Every record of the ``asynccfn`` loggers, DEBUG up, as the test runs (they do not
    propagate to the root logger once ``lambda_entry`` configured them: a handler of theirs)."""
    logger = logging.getLogger("asynccfn")
    level = logger.level
    handler = _Records()
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def secret_resource(secret: str, seen: list[tuple[str, str]]) -> asynccfn.Resource:
    """Fetches ``secret`` in a sensitive step, keeps it in the state, sleeps past the
    invocation's deadline (a hand-over), then uses it and answers it as NoEcho Data."""
    resource = asynccfn.Resource(
        "Custom::Bucket", update="replace", delete="nothing"
    )  # the fixture events' type

    async def fetch_password() -> str:
        return secret

    async def fingerprint(password: str) -> str:
        return hashlib.sha256(password.encode()).hexdigest()[:12]

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        password = await ctx.step("fetch-password", fetch_password, sensitive=True)
        ctx.state["password"] = password
        ctx.state["rounds"] = ctx.state.get("rounds", 0) + 1
        ctx.logger.info("fetched the password; %d round(s)", ctx.state["rounds"])
        await ctx.sleep(float(request.properties.get("Sleep", 0)), "settle")
        seen.append((password, ctx.state["password"]))
        print_ = await ctx.step("fingerprint", fingerprint, password)
        return asynccfn.Success(
            physical_id=f"user-{print_}", data={"Password": password}, no_echo=True
        )

    return resource


def test_a_sensitive_secret_survives_handover_and_replay_and_is_shown_nowhere(
    journal: str,
    dynamodb_endpoint: str,
    kms_key: str,
    lambdas: FakeInvokeAPI,
    presigned_response_url: Any,
    logs: list[logging.LogRecord],
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = f"planted-{secrets.token_hex(12)}"
    seen: list[tuple[str, str]] = []
    codec = asynccfn.KmsCodec(kms_key)
    handler = asynccfn.lambda_entry(
        secret_resource(secret, seen),
        journal=journal,
        reserve=2.0,
        codec=codec,
        sensitive_state=["password"],
    )
    url, read = presigned_response_url()
    event = event_for("create", url, Sleep=4)
    op_id = event_op_id(event)
    retry_url, read_retry = presigned_response_url()
    with closing_handler(handler):
        # out of time inside the sleep: hands over; the successor replays the secret step
        assert handler(event, FakeLambdaContext(5))["outcome"] == "handed-over"
        assert seen == []
        assert handler(lambdas.payloads[-1], FakeLambdaContext())["outcome"] == "SUCCESS"
        # a retried deployment (a new attempt) replays every step from the journal again
        retry = {**event, "ResponseURL": retry_url}
        assert handler(retry, FakeLambdaContext())["outcome"] == "SUCCESS"
        # a second operation of the same function gets its own data key
        other_url, read_other = presigned_response_url()
        assert handler(event_for("create", other_url), FakeLambdaContext())["outcome"] == (
            "SUCCESS"
        )

    # the handler got the secret back on replay, from the step and from the state
    assert seen == [(secret, secret), (secret, secret), (secret, secret)]
    for body in (read(), read_retry(), read_other()):
        assert body is not None
        answer = json.loads(body)
        assert answer["Status"] == "SUCCESS", answer
        assert answer["Data"] == {"Password": secret} and answer["NoEcho"] is True
    # every invocation that seals makes its own data key, never adopting one it met in the
    # journal: three of the first operation (the successor and the retry seal its NoEcho
    # response), one of the second
    assert codec.generated == 4
    # the successor and the retry each unwrap the first invocation's key (the successor's
    # sealed only the response, kept masked once posted)
    assert codec.unwrapped == 2

    # the journal: no field of any item holds the secret; the step says it is sensitive
    items = journal_items(dynamodb_endpoint, journal)
    stored = json.dumps(items)
    assert secret not in stored
    assert base64.b64encode(secret.encode()).decode() not in stored
    ours = [item for item in items if item["pk"]["S"] == f"op#{op_id}"]
    step = next(i for i in ours if i.get("name", {}).get("S") == "fetch-password")
    assert step["sensitive"] == {"N": "1"}
    assert step["result"]["S"].startswith(PREFIX)
    operation = next(i for i in ours if i["sk"]["S"] == "op")
    # NoEcho: the outbox was encrypted until posted; posted, only the masked body is kept
    posted = json.loads(operation["response"]["S"])
    assert posted["NoEcho"] is True and posted["Data"] == {"Password": "****"}
    assert operation["response_digest"]["S"]
    states = [i["state"]["S"] for i in ours if "state" in i]
    assert states and all(state.startswith(PREFIX) for state in states)
    fingerprint = next(i for i in ours if i.get("name", {}).get("S") == "fingerprint")
    assert "sensitive" not in fingerprint and not fingerprint["result"]["S"].startswith(PREFIX)
    # the hand-over payload is the event and a token: nothing of the secret either
    assert secret not in json.dumps(lambdas.payloads)

    # logs, at DEBUG, as the JSON lines Lambda would get
    assert logs, "the runtime logged nothing: the log capture is not working"
    formatter = JsonLinesFormatter()
    assert not [r for r in logs if secret in formatter.format(r)]

    # ... and what they printed (JSON lines on stdout)
    printed_logs = capsys.readouterr()
    assert "answering SUCCESS" in printed_logs.out
    assert secret not in printed_logs.out + printed_logs.err

    # the CLI: text and JSON
    common = ["--table", journal, "--region", REGION, "--endpoint-url", dynamodb_endpoint]
    assert cli.main(["journal", "show", op_id, *common]) == 0
    text = capsys.readouterr().out
    assert cli.main(["journal", "show", op_id, "--json", *common]) == 0
    shown = capsys.readouterr().out
    assert cli.main(["journal", "list", "--json", *common]) == 0
    listed = capsys.readouterr().out
    for output in (text, shown, listed):
        assert secret not in output
        assert PREFIX not in output  # ciphertext is never printed as data
    assert "fetch-password" in text and "Password=****  (NoEcho)" in text
    steps = {s["name"]: s for s in json.loads(shown)["steps"]}
    assert steps["fetch-password"]["sensitive"] is True
    assert steps["fetch-password"]["result"] == "****"
    assert steps["settle"]["state"] == "****"
    assert steps["fingerprint"]["sensitive"] is False
    assert steps["fingerprint"]["result"] == json.loads(fingerprint["result"]["S"])
    response = json.loads(shown)["operation"]["response"]
    assert response["data"] == {"Password": "****"} and response["digest"]
    assert response["status"] == "SUCCESS"

    # the printouts of the local runner and asynccfn.testing, of this very operation
    printed = _printouts(journal, dynamodb_endpoint, op_id, event, json.loads(read() or b""))
    assert "fetch-password" in printed and "****" in printed
    assert secret not in printed


def test_a_sensitive_steps_error_message_is_withheld_from_journal_reason_and_logs(
    journal: str,
    dynamodb_endpoint: str,
    kms_key: str,
    presigned_response_url: Any,
    logs: list[logging.LogRecord],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A sensitive step's body that raises with its secret in the message, once retried and
    once for good: the type survives (the handler can still catch it), the message does not,
    in the journal (RETRYING and FAILED items), the Reason, the logs' tracebacks or the CLI."""
    secret = f"planted-{secrets.token_hex(12)}"
    caught: list[BaseException] = []
    attempts: list[int] = []
    resource = asynccfn.Resource(update="replace", delete="nothing")

    def fetch_password() -> str:
        attempts.append(1)
        raise PermissionError(f"the vault refused password {secret!r}")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        try:
            await ctx.step(
                "fetch-password",
                fetch_password,
                sensitive=True,
                retry=asynccfn.RetryPolicy(max_attempts=2, initial_delay=0.1),
            )
        except PermissionError as exc:
            caught.append(exc)
            raise
        raise AssertionError("unreachable")

    url, read = presigned_response_url()
    event = event_for("create", url)
    handler = asynccfn.lambda_entry(resource, journal=journal, codec=asynccfn.KmsCodec(kms_key))
    with closing_handler(handler):
        assert handler(event, FakeLambdaContext())["outcome"] == "FAILED"

    assert len(attempts) == 2  # the retry decision saw the live error
    [error] = caught
    assert str(error) == "the message is withheld: step 'fetch-password' is sensitive"
    assert error.__cause__ is None and error.__context__ is None
    reason = json.loads(read() or b"")["Reason"]
    assert reason.startswith("PermissionError: the message is withheld"), reason

    op_id = event_op_id(event)
    items = [i for i in journal_items(dynamodb_endpoint, journal) if op_id in i["pk"]["S"]]
    [step] = [i for i in items if i.get("name", {}).get("S") == "fetch-password"]
    assert step["status"]["S"] == "FAILED" and step["error_type"]["S"] == "builtins:PermissionError"
    formatter = JsonLinesFormatter()
    logged = [formatter.format(r) for r in logs]
    assert any("PermissionError" in line and "stackTrace" in line for line in logged)
    common = ["--table", journal, "--region", REGION, "--endpoint-url", dynamodb_endpoint]
    assert cli.main(["journal", "show", op_id, *common]) == 0
    texts = [
        reason,
        "".join(traceback.format_exception(error)),
        json.dumps(items),
        *logged,
        *capsys.readouterr(),
    ]
    assert "the vault refused" not in "".join(texts)
    assert not [text for text in texts if secret in text]


def _printouts(
    table: str, endpoint: str, op_id: str, event: dict[str, Any], body: dict[str, Any]
) -> str:
    """What ``asynccfn local`` and ``asynccfn.testing.run_resource`` print for an operation:
    its progress as the journal changes, then the response and the timeline."""
    from asynccfn._cli_progress import ProgressPrinter, print_summary
    from asynccfn._protocol import RequestType
    from asynccfn.journal.query import Journal
    from asynccfn.local._runs import OperationRun

    detail = Journal(table, region=REGION, endpoint_url=endpoint).get_operation(op_id)
    out = io.StringIO()
    console = cli.Console(out=out, err=out, color=False)
    progress = ProgressPrinter(console)
    request = {k: v for k, v in event.items() if k != "ResponseURL"}
    progress.request_sent("Create", request)
    progress.journal(detail)
    run_ = OperationRun(
        label="Create",
        request_type=RequestType.CREATE,
        request=request,
        response=body,
        journal=detail,
        invocations=(),
        elapsed=1.0,
    )
    progress.answered(run_)
    print_summary([run_], console)
    return out.getvalue()


def test_a_sensitive_step_without_a_codec_is_refused_before_it_runs(
    journal: str, dynamodb_endpoint: str, presigned_response_url: Any
) -> None:
    secret = f"planted-{secrets.token_hex(12)}"
    ran: list[str] = []
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        def fetch() -> str:
            ran.append("fetch")
            return secret

        await ctx.step("fetch-password", fetch, sensitive=True)
        return asynccfn.Success()

    url, read = presigned_response_url()
    handler = asynccfn.lambda_entry(resource, journal=journal)
    with closing_handler(handler):
        assert handler(event_for("create", url), FakeLambdaContext())["outcome"] == "FAILED"
    body = json.loads(read() or b"")
    assert body["Reason"].startswith("ConfigurationError: step 'fetch-password' is sensitive")
    assert "lambda_entry(codec=asynccfn.KmsCodec(" in body["Reason"]
    assert ran == []
    assert secret not in json.dumps(journal_items(dynamodb_endpoint, journal))


def test_without_a_journal_a_sensitive_step_needs_no_codec(
    moto_endpoint: str, presigned_response_url: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", urlsplit(moto_endpoint).netloc)
    monkeypatch.delenv("ASYNCCFN_JOURNAL_TABLE", raising=False)
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        value = await ctx.step("fetch", lambda: "s3cr3t", sensitive=True)
        return asynccfn.Success(data={"Length": len(value)})

    url, read = presigned_response_url()
    handler = asynccfn.lambda_entry(resource, sensitive_state=["password"])
    with closing_handler(handler):
        assert handler(event_for("create", url), FakeLambdaContext())["outcome"] == "SUCCESS"
    assert json.loads(read() or b"")["Data"] == {"Length": 6}


def test_sensitive_state_with_a_journal_and_no_codec_is_refused() -> None:
    with pytest.raises(asynccfn.ConfigurationError, match=r"codec=asynccfn\.KmsCodec"):
        asynccfn.lambda_entry(asynccfn.Resource(), journal="t", sensitive_state=["password"])
    with pytest.raises(asynccfn.ConfigurationError, match="KMS key"):
        asynccfn.KmsCodec("")


def test_the_kms_key_variable_gives_a_journaled_function_its_codec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASYNCCFN_KMS_KEY", "arn:aws:kms:us-east-1:123456789012:key/abc")
    handler = asynccfn.lambda_entry(answering_resource(), journal="t", sensitive_state=["pw"])
    codec = handler.runtime.config.secrets.codec  # type: ignore[attr-defined]
    assert isinstance(codec, asynccfn.KmsCodec)
    assert codec.key_id == "arn:aws:kms:us-east-1:123456789012:key/abc"
    # without a journal there is nothing to encrypt: no codec is made
    monkeypatch.delenv("ASYNCCFN_JOURNAL_TABLE", raising=False)
    bare = asynccfn.lambda_entry(answering_resource())
    assert bare.runtime.config.secrets.codec is None  # type: ignore[attr-defined]


# -- the codec's envelope ---------------------------------------------------------------------


def _payloads(codec: asynccfn.KmsCodec, clients: ClientPool, op_id: str) -> Payloads:
    return Payloads(codec.session(clients, context=op_id), seal_state=True)


def test_envelope_round_trips_and_refuses_tampering_or_another_operation(kms_key: str) -> None:
    codec = asynccfn.KmsCodec(kms_key)
    clients = ClientPool()
    plain = json.dumps({"password": "s3cr3t-value"})

    async def scenario() -> None:
        first = _payloads(codec, clients, "op-a")
        sealed = [await first.seal(plain), await first.seal(plain)]
        assert sealed[0] != sealed[1]  # a fresh nonce each time
        assert all(s.startswith(PREFIX) and "s3cr3t" not in s for s in sealed)
        assert codec.generated == 1  # one data key for the invocation's values
        assert await first.open(sealed[0]) == plain
        assert await first.open("{}") == "{}"  # what is not encrypted is read as it is
        # ... unless it is always encrypted: then it was planted
        with pytest.raises(asynccfn.CodecError, match="stored in the clear"):
            await first.open("{}", sealed=True)

        # a later invocation of the same operation: one Decrypt, then its own data key
        later = _payloads(codec, clients, "op-a")
        assert await later.open(sealed[1]) == plain
        again = await later.seal(plain)
        assert (codec.generated, codec.unwrapped) == (2, 1)
        assert await first.open(again) == plain  # the operation's context: it decrypts
        assert codec.unwrapped == 2

        # one byte of the ciphertext changed
        raw = bytearray(base64.b64decode(sealed[0][len(PREFIX) :]))
        raw[-1] ^= 0x01
        tampered = PREFIX + base64.b64encode(bytes(raw)).decode()
        with pytest.raises(asynccfn.CodecError, match="altered, or it belongs to another"):
            await _payloads(codec, clients, "op-a").open(tampered)

        # the value moved to another operation: KMS refuses its data key's context
        with pytest.raises(asynccfn.CodecError, match="altered, or it belongs to another"):
            await _payloads(codec, clients, "op-b").open(sealed[0])

        # ... and even with the key in hand, the operation id is AES-GCM's associated data
        moved = _payloads(codec, clients, "op-b")
        await moved.open(await moved.seal(plain))  # op-b's own key, unwrapped or generated
        session = moved._session
        session._keys.update(first._session._keys)  # type: ignore[attr-defined]
        with pytest.raises(asynccfn.CodecError, match="does not decrypt"):
            await moved.open(sealed[0])

        with pytest.raises(asynccfn.CodecError, match="not valid base64"):
            await first.open(PREFIX + "not base64!")

    try:
        run(scenario())
    finally:
        run(clients.close())


def test_a_session_never_seals_under_a_data_key_it_only_unwrapped(
    moto_endpoint: str, kms_key: str
) -> None:
    """A data key met in the journal may be one its planter asked GenerateDataKey for (a
    right without kms:Decrypt) and so knows: the session decrypts with it, but seals its own
    values under a key it generated."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kms = botocore.session.get_session().create_client(
        "kms", endpoint_url=moto_endpoint, region_name=REGION
    )
    try:
        made = kms.generate_data_key(
            KeyId=kms_key, KeySpec="AES_256", EncryptionContext={"asynccfn:operation": "op-a"}
        )
    finally:
        kms.close()
    known, wrapped = bytes(made["Plaintext"]), bytes(made["CiphertextBlob"])
    nonce = b"\x00" * 12
    planted = b"".join(
        (
            b"\x01",
            len(wrapped).to_bytes(2, "big"),
            wrapped,
            nonce,
            AESGCM(known).encrypt(nonce, b"{}", b"op-a"),
        )
    )
    codec = asynccfn.KmsCodec(kms_key)
    clients = ClientPool()

    async def scenario() -> bytes:
        session = codec.session(clients, context="op-a")
        assert await session.decode(planted) == b"{}"
        return await session.encode(b"secret")

    try:
        sealed = run(scenario())
    finally:
        run(clients.close())
    assert (codec.generated, codec.unwrapped) == (1, 1)
    size = int.from_bytes(sealed[1:3], "big")
    assert sealed[3 : 3 + size] != wrapped


def test_a_codec_refuses_a_key_kms_does_not_have(moto_endpoint: str, kms_key: str) -> None:
    missing = kms_key.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    codec = asynccfn.KmsCodec(missing)
    clients = ClientPool()
    try:
        with pytest.raises(asynccfn.CodecError, match="KMS GenerateDataKey with key"):
            run(_payloads(codec, clients, "op-a").seal("{}"))
    finally:
        run(clients.close())


def test_a_function_without_a_codec_imports_neither_cryptography_nor_kms() -> None:
    code = (
        "import sys, asynccfn\n"
        "r = asynccfn.Resource(update='replace', delete='nothing')\n"
        "@r.create\n"
        "async def create(request, ctx): return asynccfn.Success()\n"
        "asynccfn.lambda_entry(r, journal='t')\n"
        "loaded = [m for m in sys.modules if m.startswith(('cryptography', 'types_aiobotocore'))]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_kms_client_is_prepared_in_lambdas_init_phase_with_the_journals(
    journal: str, kms_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first invocation's deadline is not spent creating the codec's client either."""
    monkeypatch.setattr(_entry, "inside_lambda", lambda: True)  # as Lambda sets it up
    handler = asynccfn.lambda_entry(
        secret_resource("s", []), journal=journal, codec=asynccfn.KmsCodec(kms_key)
    )
    with closing_handler(handler):
        prepared = handler.runtime.clients.services()
    assert prepared == {"dynamodb", "kms"}  # the Lambda client: see test_handoff_client_inprocess
