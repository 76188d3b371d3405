"""Resources for the policy tests: one whose action the source cannot tell."""

from __future__ import annotations

import asynccfn

dynamic = asynccfn.Resource("Custom::Dynamic", update="replace", delete="nothing")


@dynamic.create
async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    s3 = await ctx.client("s3")
    operation = str(request.properties.get("Operation", "ListBuckets"))
    # The action comes from a property: only the journal knows which it was.
    await ctx.call(f"s3:{operation}", s3.list_buckets)
    return asynccfn.Success(physical_id="dynamic")
