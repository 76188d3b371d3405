"""One function for many resource types, and typed properties through the whole runtime:
driven in-process against moto's S3 (the responses) and DynamoDB Local (the journal)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import asynccfn
from asynccfn.journal import Journal
from tests.support import FakeLambdaContext, closing_handler, event_for


@dataclasses.dataclass(frozen=True, kw_only=True)
class Tag:
    Key: str
    Value: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class BucketProps:
    BucketName: str = asynccfn.field(replaces=True)
    Versioned: bool = False
    Retries: int = 3
    Tags: list[Tag] = dataclasses.field(default_factory=list)


Send = Callable[..., dict[str, Any]]


@pytest.fixture
def send(presigned_response_url: Callable[[], Any], response_hosts: None) -> Iterator[Send]:
    """``send(handler, kind, resource_type, properties, old=None, physical_id=None)``: one
    request to ``handler``; returns the response CloudFormation received."""
    handlers: list[Any] = []

    def run(
        handler: Any,
        kind: str,
        resource_type: str,
        properties: dict[str, Any],
        *,
        old: dict[str, Any] | None = None,
        physical_id: str | None = None,
        logical_id: str = "Thing",
    ) -> dict[str, Any]:
        if handler not in handlers:
            handlers.append(handler)
        url, read = presigned_response_url()
        event = event_for(kind, url)
        event["ResourceType"] = resource_type
        event["LogicalResourceId"] = logical_id
        token = event["ServiceToken"]
        event["ResourceProperties"] = {"ServiceToken": token, **properties}
        if old is not None:
            event["OldResourceProperties"] = {"ServiceToken": token, **old}
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        handler(event, FakeLambdaContext())
        raw = read()
        assert raw is not None
        return json.loads(raw)  # type: ignore[no-any-return]

    yield run
    for handler in handlers:
        with closing_handler(handler):
            pass


def echoing(resource_type: str) -> asynccfn.Resource:
    """A resource whose Create answers which resource ran it."""
    resource = asynccfn.Resource(resource_type, update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        ran = await ctx.step("name", lambda: resource_type)
        return asynccfn.Success(physical_id=f"{ran}-1", data={"Served": ran})

    return resource


def test_a_provider_routes_three_types_and_refuses_an_unknown_one(
    send: Send, journal: str, dynamodb_endpoint: str
) -> None:
    bucket, table, queue = (echoing(f"Custom::{name}") for name in ("Bucket", "Table", "Queue"))
    handler = asynccfn.lambda_entry(
        asynccfn.Provider(bucket, table, queue, default=bucket), journal=journal
    )
    served = {}
    for kind in ("Custom::Bucket", "Custom::Table", "Custom::Queue"):
        response = send(handler, "create", kind, {}, logical_id=kind.removeprefix("Custom::"))
        assert response["Status"] == "SUCCESS", response
        served[kind] = response["Data"]["Served"]
    assert served == {kind: kind for kind in served}
    generic = send(handler, "create", "AWS::CloudFormation::CustomResource", {})
    assert generic["Data"] == {"Served": "Custom::Bucket"}  # the default
    unknown = send(handler, "create", "Custom::Topic", {}, logical_id="Topic")
    assert unknown["Status"] == "FAILED"
    assert unknown["Reason"] == (
        "this function serves AWS::CloudFormation::CustomResource, Custom::Bucket, "
        "Custom::Queue, Custom::Table; not Custom::Topic"
    )
    # One journal table holds them all, and filters by type.
    reader = Journal(journal, region="us-east-1", endpoint_url=dynamodb_endpoint)
    ops = list(reader.iter_operations())
    assert sorted(op.resource_type for op in ops) == sorted(
        [*served, "AWS::CloudFormation::CustomResource", "Custom::Topic"]
    )
    only = list(reader.iter_operations(resource_type="Custom::Table"))
    assert [op.logical_id for op in only] == ["Table"]


def test_a_list_of_resources_is_a_provider_without_a_default(send: Send) -> None:
    handler = asynccfn.lambda_entry([echoing("Custom::A"), echoing("Custom::B")])
    assert send(handler, "create", "Custom::B", {})["Data"] == {"Served": "Custom::B"}
    generic = send(handler, "create", "AWS::CloudFormation::CustomResource", {})
    assert generic["Reason"] == (
        "this function serves Custom::A, Custom::B; not AWS::CloudFormation::CustomResource"
    )


def test_a_provider_is_checked_when_it_is_defined() -> None:
    with pytest.raises(asynccfn.ConfigurationError, match="both declare Custom::Bucket"):
        asynccfn.Provider(echoing("Custom::Bucket"), echoing("Custom::Bucket"))
    with pytest.raises(asynccfn.ConfigurationError, match="declares no resource type"):
        asynccfn.Provider(echoing("Custom::Bucket"), asynccfn.Resource())
    generic = echoing("AWS::CloudFormation::CustomResource")
    with pytest.raises(asynccfn.ConfigurationError, match="only one may serve it"):
        asynccfn.Provider(generic, default=echoing("Custom::Bucket"))
    with pytest.raises(asynccfn.ConfigurationError, match="a Provider or a list of resources"):
        asynccfn.lambda_entry("asynccfn.examples.backfill:backfill")  # type: ignore[arg-type]


def typed_bucket(seen: list[Any]) -> asynccfn.Resource:
    bucket = asynccfn.Resource("Custom::Bucket", properties=BucketProps)

    @bucket.create
    async def create(
        request: asynccfn.Request[BucketProps], ctx: asynccfn.Context
    ) -> asynccfn.Success:
        seen.append(("create", request.properties))
        return asynccfn.Success(physical_id=request.properties.BucketName)

    @bucket.update
    async def update(
        request: asynccfn.Request[BucketProps], ctx: asynccfn.Context
    ) -> asynccfn.Success:
        seen.append(
            (
                "update",
                request.properties,
                request.old_properties,
                request.changed,
                request.replacing,
            )
        )
        return asynccfn.Success(physical_id=request.properties.BucketName)

    @bucket.delete
    async def delete(
        request: asynccfn.Request[BucketProps], ctx: asynccfn.Context
    ) -> asynccfn.Success:
        seen.append(("delete", request.properties, request.property_errors))
        return asynccfn.Success()

    return bucket


@pytest.mark.parametrize("journaled", [False, True], ids=["journal-less", "journaled"])
def test_typed_properties_reach_the_handlers_through_the_runtime(
    send: Send, journaled: bool, request: pytest.FixtureRequest
) -> None:
    table = request.getfixturevalue("journal") if journaled else None
    seen: list[Any] = []
    handler = asynccfn.lambda_entry(typed_bucket(seen), journal=table)
    created = {"BucketName": "logs", "Versioned": "true", "Tags": [{"Key": "team", "Value": "7"}]}
    assert send(handler, "create", "Custom::Bucket", created)["Status"] == "SUCCESS"
    assert seen.pop() == (
        "create",
        BucketProps(BucketName="logs", Versioned=True, Tags=[Tag(Key="team", Value="7")]),
    )
    updated = {**created, "Versioned": "FALSE", "Retries": "5"}
    response = send(handler, "update", "Custom::Bucket", updated, old=created, physical_id="logs")
    assert response["Status"] == "SUCCESS"
    _, new, old, changed, replacing = seen.pop()
    assert (new.Versioned, new.Retries, old.Versioned) == (False, 5, True)
    assert (changed, replacing) == ({"Versioned", "Retries"}, False)
    renamed = {**created, "BucketName": "logs-2"}
    send(handler, "update", "Custom::Bucket", renamed, old=created, physical_id="logs")
    assert seen.pop()[3:] == ({"BucketName"}, True)


def test_properties_that_do_not_convert_fail_before_any_handler_runs(send: Send) -> None:
    seen: list[Any] = []
    handler = asynccfn.lambda_entry(typed_bucket(seen))
    response = send(handler, "create", "Custom::Bucket", {"Versioned": "yes", "Retries": "ten"})
    assert response["Status"] == "FAILED"
    assert response["Reason"] == (
        "the properties do not convert to BucketProps: BucketName: missing (required); "
        'Versioned: expected true or false, got "yes"; Retries: expected an integer, got "ten"'
    )
    good = {"BucketName": "logs"}
    response = send(
        handler,
        "update",
        "Custom::Bucket",
        {**good, "Retries": "1.5"},
        old=good,
        physical_id="logs",
    )
    assert response["Status"] == "FAILED"
    assert response["PhysicalResourceId"] == "logs"
    assert response["Reason"].endswith('Retries: expected an integer, got "1.5"')
    assert seen == []


def test_a_delete_whose_properties_no_longer_convert_still_reaches_its_handler(
    send: Send,
) -> None:
    seen: list[Any] = []
    handler = asynccfn.lambda_entry(typed_bucket(seen))
    raw = {"BucketName": "logs", "Retries": "many"}
    response = send(handler, "delete", "Custom::Bucket", raw, physical_id="logs")
    assert response["Status"] == "SUCCESS"
    kind, properties, errors = seen.pop()
    assert kind == "delete"
    assert dict(properties) == {"ServiceToken": properties["ServiceToken"], **raw}
    assert errors.endswith('Retries: expected an integer, got "many"')
