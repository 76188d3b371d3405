"""A sealed journal trusts only what this function sealed (DESIGN.md invariant 13).

With a KMS codec, sensitive step results, the sealed EventState and NoEcho responses are
encrypted at rest. Someone who may write the journal table, but not use the key (or who may
call ``kms:GenerateDataKey`` but not ``kms:Decrypt``), must neither make the operation go on
with values of their choosing nor read the secrets sealed after their visit:

- a value the function always seals, found in the clear, is refused (``CodecError``, a
  journal failure: Lambda retries, then its on-failure record answers FAILED);
- an invocation seals only under a data key it obtained from ``GenerateDataKey`` itself,
  never under one it unwrapped from the journal.

Each test drives an in-process handler against DynamoDB Local and moto's server (S3 response
URLs, KMS, Lambda's Invoke API) over HTTP, and tampers with the table as such a writer would.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from typing import Any

import pytest

import asynccfn
from asynccfn.journal._payload import PREFIX
from tests.journal.scenarios import FakeInvokeAPI
from tests.reliability._scenarios import Create, client, journal_item, sealing_password
from tests.runtime.test_sensitive_inprocess import kms_key, lambdas  # noqa: F401
from tests.support import FakeLambdaContext, closing_handler

PLANTED = "attacker-known-password"


def _tamper(endpoint: str, table: str, item: dict[str, Any], update: str, **values: str) -> None:
    """Apply ``update`` (``#name`` for each attribute, ``:name`` for its new string value) to a
    journal item, as anyone allowed to write to the table (but not to use the key) can."""
    names = {
        f"#{word[1:]}": word[1:] for word in update.replace(",", " ").split() if word[0] == "#"
    }
    dynamodb = client("dynamodb", endpoint)
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            **(
                {"ExpressionAttributeValues": {f":{k}": {"S": v} for k, v in values.items()}}
                if values
                else {}
            ),
        )
    finally:
        dynamodb.close()


def test_invariant_13_a_plaintext_result_planted_for_a_sensitive_step_is_refused(
    journal: str,
    dynamodb_endpoint: str,
    kms_key: str,  # noqa: F811
    presigned_response_url: Any,
) -> None:
    """A sensitive step's result overwritten with plaintext: the replay (a retried
    deployment) refuses the journal instead of handing the handler the planted value, and
    answers FAILED at once (JournalTampered: no retry could change it)."""
    secret = f"generated-{secrets.token_hex(12)}"
    seen: list[str] = []
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        password = await ctx.step("fetch-password", lambda: secret, sensitive=True)
        seen.append(password)
        return asynccfn.Success(physical_id="db", data={"Password": password}, no_echo=True)

    sent = Create.new(presigned_response_url)
    retry = sent.retried(presigned_response_url)
    handler = asynccfn.lambda_entry(resource, journal=journal, codec=asynccfn.KmsCodec(kms_key))
    with closing_handler(handler):
        assert handler(sent.event, FakeLambdaContext())["outcome"] == "SUCCESS"
        step = journal_item(dynamodb_endpoint, journal, sent.op_id, "fetch-password")
        assert step["sensitive"] == {"N": "1"} and step["result"]["S"].startswith(PREFIX)
        _tamper(dynamodb_endpoint, journal, step, "SET #result = :v", v=json.dumps(PLANTED))

        assert handler(retry.event, FakeLambdaContext())["outcome"] == "FAILED"
    assert seen == [secret]
    answer = retry.answer()
    assert answer["Status"] == "FAILED", answer
    assert (
        "the result of sensitive step 'fetch-password' is stored in the clear" in (answer["Reason"])
    )
    assert PLANTED not in json.dumps(answer)


def test_invariant_13_a_plaintext_result_planted_with_the_sensitive_flag_removed_is_refused(
    journal: str,
    dynamodb_endpoint: str,
    kms_key: str,  # noqa: F811
    presigned_response_url: Any,
) -> None:
    """The same plaintext, with the item's ``sensitive`` flag removed too: only the replaying
    step call, which still declares ``sensitive=True``, can tell."""
    seen: list[str] = []
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        seen.append(await ctx.step("fetch-password", lambda: "genuine", sensitive=True))
        return asynccfn.Success(physical_id="db")

    sent = Create.new(presigned_response_url)
    retry = sent.retried(presigned_response_url)
    handler = asynccfn.lambda_entry(resource, journal=journal, codec=asynccfn.KmsCodec(kms_key))
    with closing_handler(handler):
        assert handler(sent.event, FakeLambdaContext())["outcome"] == "SUCCESS"
        step = journal_item(dynamodb_endpoint, journal, sent.op_id, "fetch-password")
        plain = json.dumps(PLANTED)
        _tamper(dynamodb_endpoint, journal, step, "SET #result = :v REMOVE #sensitive", v=plain)
        assert handler(retry.event, FakeLambdaContext())["outcome"] == "FAILED"
    assert PLANTED not in seen
    answer = retry.answer()
    assert "JournalTampered" in answer["Reason"] and "not flagged sensitive" in answer["Reason"]
    assert PLANTED not in json.dumps(answer)


def test_invariant_13_a_plaintext_state_planted_where_the_state_is_sealed_is_refused(
    journal: str,
    dynamodb_endpoint: str,
    kms_key: str,  # noqa: F811
    presigned_response_url: Any,
) -> None:
    """The EventState recorded with a step, under ``sensitive_state``, overwritten with
    plaintext: refused on replay, not taken as the operation's own state."""
    secret = f"generated-{secrets.token_hex(12)}"
    seen: list[str] = []
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        ctx.state.setdefault("password", secret)
        await ctx.step("create-user", lambda: "user-1")
        seen.append(ctx.state["password"])
        return asynccfn.Success(physical_id="user-1")

    sent = Create.new(presigned_response_url)
    retry = sent.retried(presigned_response_url)
    with closing_handler(sealing_password(resource, journal, kms_key)) as handler:
        assert handler(sent.event, FakeLambdaContext())["outcome"] == "SUCCESS"
        step = journal_item(dynamodb_endpoint, journal, sent.op_id, "create-user")
        assert step["state"]["S"].startswith(PREFIX)
        planted = json.dumps({"password": PLANTED})
        _tamper(dynamodb_endpoint, journal, step, "SET #state = :v", v=planted)
        assert handler(retry.event, FakeLambdaContext())["outcome"] == "FAILED"
    assert seen == [secret]
    answer = retry.answer()
    assert "the EventState recorded with step 'create-user'" in answer["Reason"], answer
    assert PLANTED not in json.dumps(answer)


def test_invariant_13_a_plaintext_hand_over_state_planted_where_the_state_is_sealed_is_refused(
    journal: str,
    dynamodb_endpoint: str,
    kms_key: str,  # noqa: F811
    lambdas: FakeInvokeAPI,  # noqa: F811
    presigned_response_url: Any,
) -> None:
    """The EventState a hand-over recorded, overwritten with plaintext before the successor
    runs: the successor refuses it."""
    seen: list[str] = []
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step("create-user", lambda: "user-1")
        ctx.state.setdefault("password", "genuine")
        await ctx.sleep(4, "settle")  # past the invocation's deadline: a hand-over
        seen.append(ctx.state["password"])
        return asynccfn.Success(physical_id="user-1")

    sent = Create.new(presigned_response_url)
    with closing_handler(sealing_password(resource, journal, kms_key, reserve=2.0)) as handler:
        assert handler(sent.event, FakeLambdaContext(5))["outcome"] == "handed-over"
        op = journal_item(dynamodb_endpoint, journal, sent.op_id)
        assert op["handover_state"]["S"].startswith(PREFIX)
        planted = json.dumps({"password": PLANTED})
        _tamper(dynamodb_endpoint, journal, op, "SET #handover_state = :v", v=planted)
        assert handler(lambdas.payloads[-1], FakeLambdaContext())["outcome"] == "FAILED"
    assert seen == []
    answer = sent.answer()
    assert "the hand-over's EventState is stored in the clear" in answer["Reason"], answer
    assert PLANTED not in json.dumps(answer)


def test_invariant_13_a_plaintext_noecho_response_planted_in_the_outbox_is_not_posted(
    journal: str,
    dynamodb_endpoint: str,
    kms_key: str,  # noqa: F811
    presigned_response_url: Any,
) -> None:
    """A NoEcho answer is sealed until posted, then kept masked: one in the clear with its
    Data unmasked, marked as not posted yet, is not re-posted by a duplicate delivery."""
    resource = asynccfn.Resource(update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        password = await ctx.step("fetch-password", lambda: "genuine", sensitive=True)
        return asynccfn.Success(physical_id="db", data={"Password": password}, no_echo=True)

    sent = Create.new(presigned_response_url)
    handler = asynccfn.lambda_entry(resource, journal=journal, codec=asynccfn.KmsCodec(kms_key))
    with closing_handler(handler):
        assert handler(sent.event, FakeLambdaContext())["outcome"] == "SUCCESS"
        posted = sent.read()
        op = journal_item(dynamodb_endpoint, journal, sent.op_id)
        kept = json.loads(op["response"]["S"])
        assert kept["NoEcho"] is True and kept["Data"] == {"Password": "****"}
        planted = json.dumps({**kept, "Data": {"Password": PLANTED}}, separators=(",", ":"))
        _tamper(dynamodb_endpoint, journal, op, "SET #response = :v REMOVE #posted_at", v=planted)
        # A duplicate delivery re-posts an unposted answer: never this one, nor FAILED to a
        # URL that received SUCCESS; it raises (the tampering stays for an operator to see).
        with pytest.raises(asynccfn.JournalTampered, match="a NoEcho response"):
            handler(sent.event, FakeLambdaContext())
    assert sent.read() == posted


def test_invariant_13_new_secrets_are_never_sealed_under_a_data_key_planted_in_the_journal(
    journal: str,
    dynamodb_endpoint: str,
    moto_endpoint: str,
    kms_key: str,  # noqa: F811
    presigned_response_url: Any,
) -> None:
    """Someone who may write the table and call kms:GenerateDataKey (a producer's right),
    but not kms:Decrypt, asks KMS for a data key under the operation's encryption context,
    seals a value with it and writes it into a step. The next invocation decrypts that value
    (the context matches), but seals the operation's new secrets under a data key of its own:
    the planter, who knows the planted key, cannot read them."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    secret = f"generated-{secrets.token_hex(12)}"
    fetched: list[int] = []
    resource = asynccfn.Resource(update="replace", delete="nothing")

    def fetch_password() -> str:
        fetched.append(1)
        if len(fetched) == 1:
            raise RuntimeError("the vault is not ready yet")
        return secret

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step("prepare", lambda: "ready")
        await ctx.step("fetch-password", fetch_password, sensitive=True)
        return asynccfn.Success(physical_id="db")

    sent = Create.new(presigned_response_url)
    retry = sent.retried(presigned_response_url)
    op_id = sent.op_id
    handler = asynccfn.lambda_entry(resource, journal=journal, codec=asynccfn.KmsCodec(kms_key))
    with closing_handler(handler):
        assert handler(sent.event, FakeLambdaContext())["outcome"] == "FAILED"

        # the planter: GenerateDataKey only, under the operation's encryption context
        kms = client("kms", moto_endpoint)
        try:
            made = kms.generate_data_key(
                KeyId=kms_key, KeySpec="AES_256", EncryptionContext={"asynccfn:operation": op_id}
            )
        finally:
            kms.close()
        key, wrapped = bytes(made["Plaintext"]), bytes(made["CiphertextBlob"])
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, json.dumps("ready").encode(), op_id.encode())
        blob = b"\x01" + len(wrapped).to_bytes(2, "big") + wrapped + nonce + sealed
        prepare = journal_item(dynamodb_endpoint, journal, op_id, "prepare")
        planted = PREFIX + base64.b64encode(blob).decode()
        _tamper(dynamodb_endpoint, journal, prepare, "SET #result = :v", v=planted)

        # a retried deployment: "prepare" replays (opening the planted value), the failed
        # sensitive step runs again and its secret is sealed
        outcome = handler(retry.event, FakeLambdaContext())
        assert outcome["outcome"] == "SUCCESS"
    step = journal_item(dynamodb_endpoint, journal, op_id, "fetch-password")
    raw = base64.b64decode(step["result"]["S"].removeprefix(PREFIX))
    size = int.from_bytes(raw[1:3], "big")
    assert raw[3 : 3 + size] != wrapped, "the new secret was sealed under the planted data key"
