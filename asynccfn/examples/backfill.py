"""``Custom::Backfill``: copy every item of one DynamoDB table into another, a page at a time,
for as many Lambda invocations as that takes.

Each page is one step: scan a page of the source from the cursor, write it to the target,
return the next cursor. The cursor and the counts live in ``ctx.state``, so when an
invocation runs out of time the next one replays the finished pages from the journal (no page
is scanned or written twice) and carries on from the cursor. Properties, typed as a
``msgspec.Struct`` (:class:`BackfillProps`; CloudFormation's ``"20"`` arrives as 20):

- ``SourceTable``, ``TargetTable`` (required): tables with the same key schema.
- ``PageSize``: items per page (default 25, DynamoDB's batch-write limit).
- ``PauseSeconds``: a pause after each page, to leave the target's capacity to others
  (default 0).
- ``Seed``: to try it out, create both tables first and put this many items in the source
  (default 0: the tables exist). A seeding backfill deletes its tables on Delete.

Update runs the backfill again (writes are idempotent); Delete leaves copied data alone.
Run it on this machine, from any folder, with the properties in ``backfill.json`` beside
this file::

    asynccfn demo backfill

It prints the ``asynccfn local asynccfn.examples.backfill:backfill ...`` command it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from botocore.exceptions import ClientError

import asynccfn


class BackfillProps(msgspec.Struct, frozen=True):
    SourceTable: str
    TargetTable: str
    PageSize: Annotated[int, msgspec.Meta(ge=1, le=25)] = 25
    PauseSeconds: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    Seed: Annotated[int, msgspec.Meta(ge=0)] = 0


backfill = asynccfn.Resource("Custom::Backfill", properties=BackfillProps)

KEY = "id"


@backfill.create
async def create(
    request: asynccfn.Request[BackfillProps], ctx: asynccfn.Context
) -> asynccfn.Success:
    return await _run(request, ctx)


@backfill.update
async def update(
    request: asynccfn.Request[BackfillProps], ctx: asynccfn.Context
) -> asynccfn.Success:
    return await _run(request, ctx)


@backfill.delete
async def delete(
    request: asynccfn.Request[BackfillProps], ctx: asynccfn.Context
) -> asynccfn.Success:
    props = request.properties
    if not isinstance(props, BackfillProps):  # properties that no longer convert: leave it be
        return asynccfn.Success()
    if props.Seed:
        ddb = await ctx.client("dynamodb")
        for name in (props.SourceTable, props.TargetTable):
            try:
                await ctx.call("dynamodb:DeleteTable", ddb.delete_table, TableName=name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
    return asynccfn.Success()


async def _run(request: asynccfn.Request[BackfillProps], ctx: asynccfn.Context) -> asynccfn.Success:
    props = request.properties
    source, target = props.SourceTable, props.TargetTable
    page_size, pause = props.PageSize, props.PauseSeconds
    ddb = await ctx.client("dynamodb")
    if props.Seed:
        await ctx.step("seed", _seed, ddb, source, target, props.Seed)
    state = ctx.state
    state.update(pages=0, copied=0, cursor=None)
    while True:
        page = await ctx.step(
            f"page {state['pages'] + 1}",
            _copy_page,
            ddb,
            source,
            target,
            state["cursor"],
            page_size,
        )
        state["pages"] += 1
        state["copied"] += page["copied"]
        state["cursor"] = page["next"]
        if state["cursor"] is None:
            break
        if pause:  # durable: replay passes a sleep that is over without waiting again
            await ctx.sleep(pause, name=f"pause after page {state['pages']}")
    ctx.logger.info("copied %d items in %d pages", state["copied"], state["pages"])
    return asynccfn.Success(
        physical_id=f"backfill-{source}-{target}",
        data={"Copied": str(state["copied"]), "Pages": str(state["pages"])},
    )


async def _copy_page(
    ddb: Any, source: str, target: str, cursor: Mapping[str, Any] | None, page_size: int
) -> dict[str, Any]:
    """Copy one page; return how many items it copied and the cursor after it (None: done)."""
    scan: dict[str, Any] = {"TableName": source, "Limit": page_size, "ConsistentRead": True}
    if cursor is not None:
        scan["ExclusiveStartKey"] = cursor
    page = await ddb.scan(**scan)
    items = page.get("Items", [])
    if items:
        await _write_all(ddb, target, items)
    return {"copied": len(items), "next": page.get("LastEvaluatedKey")}


async def _write_all(ddb: Any, table: str, items: list[dict[str, Any]]) -> None:
    """BatchWriteItem in chunks of 25, until DynamoDB has taken every item."""
    for start in range(0, len(items), 25):
        pending = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while pending:
            answer = await ddb.batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}
            if pending:
                await asyncio.sleep(0.2)


async def _seed(ddb: Any, source: str, target: str, count: int) -> int:
    """Create both tables (if missing) and put ``count`` items into the source."""
    for name in (source, target):
        try:
            await ddb.create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        await ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    items = [{KEY: {"S": f"order-{n:05d}"}, "total": {"N": str(n * 7 % 100)}} for n in range(count)]
    await _write_all(ddb, source, items)
    return count
