"""DynamoDB Local and moto's server answer real aiobotocore/aiohttp clients."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiobotocore.session import get_session

from asynccfn.local import LOCAL_AWS_ENV, DynamoDBLocal, LocalServerError, MotoServer
from asynccfn.local.dynamodb import ensure_installed, install_dir


def test_dynamodb_local_answers_create_put_get(dynamodb_endpoint: str) -> None:
    table = f"t-{uuid.uuid4().hex[:12]}"

    async def scenario() -> dict[str, object]:
        session = get_session()
        async with session.create_client(
            "dynamodb", endpoint_url=dynamodb_endpoint, region_name=LOCAL_AWS_ENV["AWS_REGION"]
        ) as ddb:
            await ddb.create_table(
                TableName=table,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            await ddb.put_item(
                TableName=table,
                Item={"pk": {"S": "op#1"}, "sk": {"S": "op"}, "fence": {"N": "3"}},
            )
            found = await ddb.get_item(
                TableName=table, Key={"pk": {"S": "op#1"}, "sk": {"S": "op"}}, ConsistentRead=True
            )
            return dict(found["Item"])

    assert asyncio.run(scenario()) == {"pk": {"S": "op#1"}, "sk": {"S": "op"}, "fence": {"N": "3"}}


def test_dynamodb_local_refuses_a_conditional_write_like_dynamodb(dynamodb_endpoint: str) -> None:
    table = f"t-{uuid.uuid4().hex[:12]}"

    async def scenario() -> str:
        async with get_session().create_client("dynamodb", endpoint_url=dynamodb_endpoint) as ddb:
            await ddb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            await ddb.put_item(TableName=table, Item={"pk": {"S": "a"}})
            try:
                await ddb.put_item(
                    TableName=table,
                    Item={"pk": {"S": "a"}},
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ddb.exceptions.ConditionalCheckFailedException as exc:
                return str(exc.response["Item"]["pk"]["S"])
            return "written"

    assert asyncio.run(scenario()) == "a"


def test_ensure_installed_is_idempotent() -> None:
    jar_dir = ensure_installed()
    assert (jar_dir / "DynamoDBLocal.jar").is_file()
    assert (jar_dir / "DynamoDBLocal_lib").is_dir()
    assert ensure_installed() == jar_dir
    assert jar_dir.is_relative_to(install_dir())


def test_missing_java_is_a_clear_error() -> None:
    server = DynamoDBLocal(java="no-such-java-binary")
    with pytest.raises(LocalServerError, match="Java 17"):
        server.start()
    with pytest.raises(LocalServerError, match="not running"):
        server.endpoint_url  # noqa: B018


def test_missing_npm_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalServerError, match="npm"):
        ensure_installed(tmp_path / "fresh")


def test_moto_server_stores_what_a_presigned_url_receives(
    presigned_response_url: Callable[[], tuple[str, Callable[[], bytes | None]]],
) -> None:
    url, read_body = presigned_response_url()
    assert read_body() is None
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["7200"]
    assert "X-Amz-Date" in query

    async def put() -> int:
        async with aiohttp.ClientSession() as http:
            async with http.put(url, data=b'{"Status": "SUCCESS"}') as response:
                return response.status

    assert asyncio.run(put()) == 200
    assert read_body() == b'{"Status": "SUCCESS"}'


def test_moto_server_stops_and_frees_its_port() -> None:
    with MotoServer() as server:
        endpoint = server.endpoint_url
        assert endpoint.startswith("http://127.0.0.1:")
    with pytest.raises(LocalServerError):
        server.endpoint_url  # noqa: B018
