"""``Custom::Table``: a DynamoDB table, provisioned through ``ctx.call`` and answered only once
it is ACTIVE.

CloudFormation has ``AWS::DynamoDB::Table`` of course; this is the shape every provisioning
custom resource has: call the API, wait for what it made to stabilise, answer with its
attributes, and undo it on Delete. Its properties are typed (:class:`TableProps`), so the
handlers read fields rather than strings, and an Update asks ``request.replacing``:

- ``TableName`` (required). Changing it replaces the table: Update creates the new one and
  answers its name, and CloudFormation then deletes the old one.
- ``HashKey``: the partition key, a string attribute (default ``id``); changing it replaces.
- ``TimeToLive``: the attribute items expire on (optional).
- ``Tags``: ``{"key": "value"}`` (optional).

Run it on this machine, from any folder, with the properties in ``dynamodb_table.json`` and
``dynamodb_table.update.json`` beside this file::

    asynccfn demo dynamodb-table

It prints the ``asynccfn local asynccfn.examples.dynamodb_table:table ...`` command it runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

import asynccfn


@dataclasses.dataclass(frozen=True, kw_only=True)
class TableProps:
    TableName: str = asynccfn.field(replaces=True)
    HashKey: str = asynccfn.field(replaces=True, default="id")
    TimeToLive: str | None = None
    Tags: dict[str, str] = dataclasses.field(default_factory=dict)


table = asynccfn.Resource("Custom::Table", properties=TableProps)

# Tags that mark a table as this resource's: a CreateTable cut off by a crash after DynamoDB
# took it runs again and finds the table; these say whether it is ours to adopt.
OWNER_TAGS = ("asynccfn:stack-id", "asynccfn:logical-id")


@table.create
async def create(request: asynccfn.Request[TableProps], ctx: asynccfn.Context) -> asynccfn.Success:
    return await _create_table(request, ctx)


@table.update
async def update(request: asynccfn.Request[TableProps], ctx: asynccfn.Context) -> asynccfn.Success:
    props = request.properties
    if request.replacing:  # TableName or HashKey changed: a new table, a new physical id
        return await _create_table(request, ctx)
    name = str(request.physical_id)
    ddb = await ctx.client("dynamodb")
    arn = (await ctx.call("dynamodb:DescribeTable", ddb.describe_table, TableName=name))["Table"][
        "TableArn"
    ]
    tags = props.Tags
    old_tags = request.old_properties.Tags if request.old_properties else {}
    gone = [key for key in old_tags if key not in tags]
    if gone:
        await ctx.call("dynamodb:UntagResource", ddb.untag_resource, ResourceArn=arn, TagKeys=gone)
    changed = [{"Key": k, "Value": v} for k, v in tags.items() if old_tags.get(k) != v]
    if changed:
        await ctx.call("dynamodb:TagResource", ddb.tag_resource, ResourceArn=arn, Tags=changed)
    if "TimeToLive" in request.changed:
        old_attribute = request.old_properties.TimeToLive if request.old_properties else None
        attribute = props.TimeToLive or old_attribute
        await ctx.call(
            "dynamodb:UpdateTimeToLive",
            ddb.update_time_to_live,
            TableName=name,
            TimeToLiveSpecification={
                "AttributeName": attribute,
                "Enabled": props.TimeToLive is not None,
            },
        )
    await ctx.wait_until("table active", _status_is, ddb, name, "ACTIVE", interval=2, timeout=600)
    return asynccfn.Success(physical_id=name, data={"Arn": arn, "TableName": name})


@table.delete
async def delete(request: asynccfn.Request[TableProps], ctx: asynccfn.Context) -> asynccfn.Success:
    name = str(request.physical_id)
    ddb = await ctx.client("dynamodb")
    try:
        await ctx.call("dynamodb:DeleteTable", ddb.delete_table, TableName=name)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        return asynccfn.Success()  # gone already (or never made): a Delete must still succeed
    await ctx.wait_until("table deleted", _status_is, ddb, name, None, interval=2, timeout=600)
    return asynccfn.Success()


async def _create_table(
    request: asynccfn.Request[TableProps], ctx: asynccfn.Context
) -> asynccfn.Success:
    props = request.properties
    name, key = props.TableName, props.HashKey
    ddb = await ctx.client("dynamodb")
    owner = {OWNER_TAGS[0]: request.stack_id, OWNER_TAGS[1]: request.logical_id}
    tags = {**props.Tags, **owner}
    try:
        created = await ctx.call(
            "dynamodb:CreateTable",
            ddb.create_table,
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        arn = created["TableDescription"]["TableArn"]
    except ClientError as exc:
        if _code(exc) != "ResourceInUseException":
            raise
        arn = await ctx.step("adopt table", _adopt, ddb, name, owner)
    # Only now is the table this resource's: a failed Create reports it, and rollback's
    # Delete removes it. Set before CreateTable, a clash with someone else's table would
    # have that Delete remove theirs.
    ctx.physical_id = name
    await ctx.wait_until("table active", _status_is, ddb, name, "ACTIVE", interval=2, timeout=600)
    if props.TimeToLive:
        await ctx.call(
            "dynamodb:UpdateTimeToLive",
            ddb.update_time_to_live,
            TableName=name,
            TimeToLiveSpecification={"AttributeName": props.TimeToLive, "Enabled": True},
        )
    return asynccfn.Success(physical_id=name, data={"Arn": arn, "TableName": name})


async def _adopt(ddb: Any, name: str, owner: Mapping[str, str]) -> str:
    """The ARN of table ``name`` if this resource made it (a re-run CreateTable), else fail."""
    arn = str((await ddb.describe_table(TableName=name))["Table"]["TableArn"])
    listed = await ddb.list_tags_of_resource(ResourceArn=arn)
    tags = {tag["Key"]: tag["Value"] for tag in listed.get("Tags", [])}
    if any(tags.get(key) != value for key, value in owner.items()):
        raise asynccfn.Failed(f"a table named {name} exists already and is not this resource's")
    return arn


async def _status_is(ddb: Any, name: str, wanted: str | None) -> bool:
    """Whether the table's status is ``wanted`` (None: the table is gone)."""
    try:
        described = await ddb.describe_table(TableName=name)
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return wanted is None
        raise
    return bool(described["Table"]["TableStatus"] == wanted)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
