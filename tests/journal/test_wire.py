"""The journal's Query answers read from the wire's JSON (asynccfn.journal._wire), against
DynamoDB Local: the same steps as botocore's own parsing gives, and nothing else touched."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from asynccfn._clients import ClientPool
from asynccfn._errors import JournalError
from asynccfn.journal.models import StepStatus, op_pk
from asynccfn.journal.store import JournalStore
from tests.support import create_journal_table, run


@pytest.fixture
def table(dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    return create_journal_table(dynamodb_endpoint)


async def _scenario(table: str, steps: int) -> tuple[dict[str, Any], dict[str, Any], Any]:
    clients = ClientPool()
    try:
        store = JournalStore(table, lambda: clients.get("dynamodb"), retention=3600)
        for i in range(steps):
            step = store.new_step(
                "op-1",
                f"0#{i + 1:05d}",
                name=f"step-{i}",
                kind="step",
                status=StepStatus.SUCCEEDED.value,
                attempt=1,
                op_attempt=1,
                started_at=time.time(),
                ended_at=time.time(),
                invocation=1,
                fence=1,
                result=json.dumps({"n": i, "text": "é\u2028", "pad": "x" * 4000}),
                state=json.dumps({"done": i}) if i % 3 == 0 else None,
            )
            await store.write_step(step, previous=None)
        client = await clients.get("dynamodb")
        # An item of the handler's own in the same table, with a binary attribute: botocore
        # decodes its base64 to bytes, which the wire's JSON alone would not.
        await client.put_item(
            TableName=table,
            Item={"pk": {"S": "user"}, "sk": {"S": "step#blob"}, "data": {"B": b"\x00\x01"}},
        )
        fast = await store.load_steps("op-1")
        plain = {}
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": {"S": op_pk("op-1")}, ":p": {"S": "step#"}},
            "ConsistentRead": True,
        }
        while True:  # the same Query through botocore's own parser, on the shared client
            page = await client.query(**kwargs)
            for raw in page["Items"]:
                entry = store._steps.decode(raw)
                plain[entry.sk[len("step#") :]] = entry
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        user = await client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "user"}},
        )
        return fast, plain, user["Items"][0]["data"]
    finally:
        await clients.close()


def test_the_journals_query_decodes_as_botocore_would_and_leaves_other_queries_alone(
    table: str,
) -> None:
    # large results: more than one 1 MB page
    fast, plain, blob = run(_scenario(table, 300))
    assert len(fast) == 300 and fast == plain
    assert fast["0#00004"].state == '{"done": 3}'
    assert blob == {"B": b"\x00\x01"}  # the handler's own Query was parsed by botocore


def test_a_failed_journal_query_is_still_botocores_error(
    dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)

    async def missing() -> None:
        clients = ClientPool()
        try:
            store = JournalStore("no-such-table", lambda: clients.get("dynamodb"), retention=3600)
            await store.load_steps("op-1")
        finally:
            await clients.close()

    with pytest.raises(JournalError, match="ResourceNotFoundException"):
        run(missing())
