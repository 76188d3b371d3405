"""A custom resource for the local Lambda service: it outlives its invocation inside a
durable sleep, so the operation is handed over and finished by a second invocation."""

from __future__ import annotations

import asynccfn

bucket = asynccfn.Resource("Custom::Bucket", update="replace", delete="nothing")


async def _echo(value: str) -> str:
    return value


@bucket.create
async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    name = request.properties["BucketName"]
    await ctx.step("create-bucket", _echo, name)
    await ctx.sleep(float(request.properties.get("Sleep", 0)), name="settle")
    await ctx.step("tag-bucket", _echo, "tags")
    return asynccfn.Success(physical_id=name, data={"Arn": f"arn:aws:s3:::{name}"})


handler = asynccfn.lambda_entry(bucket)  # the journal from ASYNCCFN_JOURNAL_TABLE
