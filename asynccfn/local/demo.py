"""The resource ``asynccfn demo`` runs: an S3 bucket of reports, built in more steps than one
short Lambda invocation has time for.

Create makes the bucket (``ctx.call``), waits until S3 reports it (``ctx.wait_until``), then
renders one report per name in ``Reports``, each in its own step, counting them in
``ctx.state``. With the demo's 5-second Lambda timeout the reports do not fit in one
invocation: the runtime hands over, and the next invocation replays the finished steps from
the journal instead of running them again. Update renders the reports that were added and
removes those that were dropped; Delete empties and removes the bucket.

Run it yourself with other properties::

    asynccfn local asynccfn.local.demo:demo --lambda-timeout 5 \\
        --properties '{"BucketName": "reports", "Reports": ["north", "south"]}'
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import asynccfn

__all__ = ["CREATE_PROPERTIES", "UPDATE_PROPERTIES", "demo"]

CREATE_PROPERTIES: dict[str, Any] = {
    "BucketName": "asynccfn-demo-reports",
    "Reports": ["north", "south", "east", "west", "central"],
    "SecondsPerReport": 0.8,
}
UPDATE_PROPERTIES: dict[str, Any] = {
    **CREATE_PROPERTIES,
    "Reports": ["north", "south", "east", "central", "islands"],
}

demo = asynccfn.Resource("Custom::ReportBucket")


@demo.create
async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    props = request.properties
    bucket = str(props["BucketName"])
    ctx.physical_id = bucket  # a failed Create still reports it, so rollback can clean up
    s3 = await ctx.client("s3")
    await ctx.call("s3:CreateBucket", s3.create_bucket, Bucket=bucket)
    await ctx.wait_until("bucket exists", _bucket_exists, s3, bucket, interval=0.5, timeout=60)
    ctx.state["reports"] = 0
    await _render(ctx, s3, bucket, _names(props), float(props.get("SecondsPerReport", 0.8)))
    return _success(bucket, ctx)


@demo.update
async def update(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    props, old = request.properties, request.old_properties or {}
    bucket = str(request.physical_id)
    if props["BucketName"] != old.get("BucketName"):
        raise asynccfn.Failed("BucketName cannot change: replace the resource instead")
    s3 = await ctx.client("s3")
    wanted, had = _names(props), _names(old)
    dropped = [name for name in had if name not in wanted]
    if dropped:
        objects = [{"Key": _key(name)} for name in dropped]
        await ctx.call(
            "s3:DeleteObjects", s3.delete_objects, Bucket=bucket, Delete={"Objects": objects}
        )
    ctx.state["reports"] = len(had) - len(dropped)
    added = [name for name in wanted if name not in had]
    await _render(ctx, s3, bucket, added, float(props.get("SecondsPerReport", 0.8)))
    return _success(bucket, ctx)


@demo.delete
async def delete(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    bucket = str(request.physical_id)
    s3 = await ctx.client("s3")
    if not await ctx.step("bucket exists", _bucket_exists, s3, bucket):
        return asynccfn.Success()  # never created, or deleted already: nothing to do
    listed = await ctx.call("s3:ListObjectsV2", s3.list_objects_v2, Bucket=bucket)
    objects = [{"Key": item["Key"]} for item in listed.get("Contents", [])]
    if objects:
        await ctx.call(
            "s3:DeleteObjects", s3.delete_objects, Bucket=bucket, Delete={"Objects": objects}
        )
    await ctx.call("s3:DeleteBucket", s3.delete_bucket, Bucket=bucket)
    return asynccfn.Success()


async def _render(
    ctx: asynccfn.Context, s3: Any, bucket: str, names: Sequence[str], seconds: float
) -> None:
    """One step per report: each is journaled as it finishes, so a hand-over between two
    reports never renders one twice, and the count in ctx.state is never counted twice."""
    for name in names:
        await ctx.step(f"render {name}", _render_report, s3, bucket, name, seconds)
        ctx.state["reports"] += 1


async def _render_report(s3: Any, bucket: str, name: str, seconds: float) -> str:
    await asyncio.sleep(seconds)  # the work of rendering a report
    body = json.dumps({"region": name, "status": "green"}).encode()
    answer = await s3.put_object(Bucket=bucket, Key=_key(name), Body=body)
    return str(answer["ETag"])


async def _bucket_exists(s3: Any, bucket: str) -> bool:
    answer = await s3.list_buckets()
    return any(item["Name"] == bucket for item in answer.get("Buckets", []))


def _names(props: Any) -> list[str]:
    return [str(name) for name in props.get("Reports", [])]


def _key(name: str) -> str:
    return f"reports/{name}.json"


def _success(bucket: str, ctx: asynccfn.Context) -> asynccfn.Success:
    return asynccfn.Success(
        physical_id=bucket,
        data={"Arn": f"arn:aws:s3:::{bucket}", "Reports": str(ctx.state["reports"])},
    )
