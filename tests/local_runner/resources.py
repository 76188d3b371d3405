"""Resources the local runner's tests run (imported by name in the Lambda workers)."""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import ClientError

import asynccfn

NOT_A_RESOURCE = "just a string"


async def _work(i: int) -> int:
    await asyncio.sleep(0.05)
    return i * 10


# -- counting: steps, state carried across invocations ----------------------------------------

counting = asynccfn.Resource("Custom::Counting")


@counting.create
@counting.update
async def count(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    ctx.state["done"] = 0
    total = 0
    for i in range(1, int(request.properties.get("Steps", 3)) + 1):
        total += await ctx.step(f"step {i}", _work, i)
        ctx.state["done"] += 1  # replay must not count this twice
    return asynccfn.Success(
        physical_id=str(request.properties.get("Name", "counting")),
        data={"Done": str(ctx.state["done"]), "Total": str(total)},
    )


@counting.delete
async def uncount(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    return asynccfn.Success()  # the counting left nothing behind


# -- failing: the handler raises ---------------------------------------------------------------

failing = asynccfn.Resource("Custom::Failing")


@failing.create
async def fail(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    await ctx.step("prepare", _work, 1)
    raise RuntimeError("the widget is broken")


@failing.update
@failing.delete
async def never_built(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    return asynccfn.Success()  # a Create that always fails built nothing


# -- slow: for interrupting a run ----------------------------------------------------------------

slow = asynccfn.Resource("Custom::Slow", update="replace")


@slow.create
async def create_slowly(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    for i in range(200):
        await ctx.step(f"step {i}", asyncio.sleep, 0.5)
    return asynccfn.Success(physical_id="slow")


@slow.delete
async def delete_slowly(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    return asynccfn.Success()


# -- forgetful: reads the world outside a step, so replay takes another path ---------------------

forgetful = asynccfn.Resource("Custom::Forgetful", update="replace")


@forgetful.create
async def create_bucket(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    bucket = str(request.properties["BucketName"])
    s3 = await ctx.client("s3")
    if not await _bucket_exists(s3, bucket):  # the bug: on replay the bucket exists
        await ctx.call("s3:CreateBucket", s3.create_bucket, Bucket=bucket)
    await ctx.call(
        "s3:PutBucketTagging",
        s3.put_bucket_tagging,
        Bucket=bucket,
        Tagging={"TagSet": [{"Key": "owner", "Value": "tests"}]},
    )
    return asynccfn.Success(physical_id=bucket)


@forgetful.delete
async def delete_bucket(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    s3 = await ctx.client("s3")
    try:
        await ctx.call("s3:DeleteBucket", s3.delete_bucket, Bucket=request.physical_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
    return asynccfn.Success()


async def _bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        await s3.head_bucket(Bucket=bucket)
    except ClientError:
        return False
    return True
