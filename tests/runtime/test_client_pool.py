"""The journal's DynamoDB client is its own (asynccfn._clients.ClientPool.own): it skips
botocore's client-side parameter validation, which a handler's client keeps; against DynamoDB
Local, which still refuses a malformed request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

import asynccfn
from asynccfn._clients import ClientPool
from tests.support import FakeLambdaContext, closing_handler, create_journal_table, event_for, run


@pytest.fixture
def table(dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    return create_journal_table(dynamodb_endpoint)


def test_a_handlers_client_validates_parameters_and_the_journals_leaves_it_to_dynamodb(
    table: str,
) -> None:
    async def scenario() -> tuple[Any, Any]:
        pool = ClientPool()
        try:
            mine, theirs = await pool.get("dynamodb"), await pool.own("dynamodb")
            assert mine is not theirs
            assert await pool.get("dynamodb") is mine and await pool.own("dynamodb") is theirs
            assert pool.services() == {"dynamodb"}
            with pytest.raises(ParamValidationError) as checked:
                await mine.put_item(TableName=table)  # no Item
            with pytest.raises(ClientError) as refused:
                await theirs.put_item(TableName=table)
            return checked.value, refused.value
        finally:
            await pool.close()

    checked, refused = run(scenario())
    assert 'Missing required parameter in input: "Item"' in str(checked)
    # sent as it was, and refused by DynamoDB itself
    assert refused.response["Error"]["Code"] == "ValidationException"


def test_the_runtime_journals_through_its_own_client_and_hands_handlers_another(
    journal: str, presigned_response_url: Any
) -> None:
    seen: list[Any] = []
    resource = asynccfn.Resource("Custom::Bucket", update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        seen.append(await ctx.client("dynamodb"))
        await ctx.step("write", _noop)
        return asynccfn.Success(physical_id="bucket")

    handler = asynccfn.lambda_entry(resource, journal=journal)
    url, read = presigned_response_url()
    with closing_handler(handler):
        journal_client = run(handler.runtime.clients.own("dynamodb"))
        sent: list[str] = []

        def sending(model: Any, **_: Any) -> None:
            sent.append(model.name)

        journal_client.meta.events.register("before-call.dynamodb", sending)
        assert handler(event_for("create", url), FakeLambdaContext())["outcome"] == "SUCCESS"
    assert json.loads(read() or b"")["Status"] == "SUCCESS"
    assert seen[0] is not journal_client and seen[0].meta.config.parameter_validation
    # the claim, the step, the outbox record and the posted mark: all the journal's
    assert sent == ["UpdateItem", "PutItem", "UpdateItem", "UpdateItem"]


async def _noop() -> str:
    return "done"
