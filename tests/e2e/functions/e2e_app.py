"""Custom resources the end-to-end tests deploy to the local Lambda service.

Each runs in a worker process under awslambdaric. They report what their step bodies did by
appending lines to ``$E2E_RUN_DIR/runs.log`` (``<what> <pid> <invocation>``), which the tests
read: that is how a test sees that a body ran once, or twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import asynccfn

RUN_DIR = Path(os.environ.get("E2E_RUN_DIR", "/tmp"))


def note(what: str, ctx: asynccfn.Context | None = None) -> None:
    invocation = ctx.invocation if ctx is not None else 0
    with (RUN_DIR / "runs.log").open("a") as log:
        log.write(f"{what} {os.getpid()} {invocation}\n")


def first_time(marker: str) -> bool:
    """True exactly once per test run (a file marks it)."""
    path = RUN_DIR / f"{marker}.marker"
    if path.exists():
        return False
    path.write_text("x")
    return True


# -- basic: routing, failures, deadlines, Data ----------------------------------------------

basic = asynccfn.Resource("Custom::Bucket")


@basic.create
async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    props = request.properties
    note("create", ctx)
    if "PhysicalId" in props:
        ctx.physical_id = props["PhysicalId"]
    if props.get("Fail"):
        raise ValueError(props["Fail"])
    if props.get("Hang"):
        try:
            await asyncio.sleep(3600)
        finally:
            note("cancelled", ctx)
    if "DataBytes" in props:
        return asynccfn.Success(physical_id="big", data={"Blob": "x" * int(props["DataBytes"])})
    return asynccfn.Success(
        physical_id=props.get("BucketName", "bucket"),
        data={"Arn": f"arn:aws:s3:::{props.get('BucketName')}"},
        no_echo=bool(props.get("Secret")),
    )


@basic.update
async def update(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    note("update", ctx)
    old = (request.old_properties or {}).get("Versioning")
    return asynccfn.Success(data={"Old": str(old), "New": str(request.properties["Versioning"])})


@basic.delete
async def delete(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    note(f"delete {request.physical_id}", ctx)
    return asynccfn.Success()


basic_handler = asynccfn.lambda_entry(basic)


# -- steps: durable work across invocations ------------------------------------------------

steps = asynccfn.Resource(update="replace", delete="nothing")


@steps.create
async def create_steps(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    props = request.properties
    count = int(props.get("Steps", 6))
    seconds = float(props.get("Seconds", 1.0))
    needs = float(props["Needs"]) if "Needs" in props else None
    crash_at = int(props.get("CrashAt", 0))
    at_most_once = bool(props.get("AtMostOnce"))
    ctx.state.setdefault("done", 0)
    for i in range(1, count + 1):

        async def body(i: int = i) -> int:
            note(f"start {i}", ctx)
            if i == crash_at and first_time("crash"):
                os.kill(os.getpid(), signal.SIGKILL)
            await asyncio.sleep(seconds)
            note(f"end {i}", ctx)
            return i * 10

        await ctx.step(f"step-{i}", body, needs=needs, at_most_once=at_most_once)
        ctx.state["done"] += 1  # replay must not double-count this
    return asynccfn.Success(physical_id="steps", data={"Done": str(ctx.state["done"])})


# A short lease, as the crash tests wait one out before Lambda's retry may claim.
steps_handler = asynccfn.lambda_entry(
    steps,
    lease=float(os.environ.get("E2E_LEASE", "30")),
    lease_skew=float(os.environ.get("E2E_LEASE_SKEW", "2")),
)


# -- waiting: sleep, wait_until, retry ------------------------------------------------------

waiting = asynccfn.Resource(update="replace", delete="nothing")


@waiting.create
async def create_waiting(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    props = request.properties
    started = await ctx.now()
    note("begin", ctx)
    if "Sleep" in props:
        await ctx.sleep(float(props["Sleep"]))
    if "WaitFor" in props:
        ready_at = started.timestamp() + float(props["WaitFor"])

        def ready() -> bool:
            note("poll", ctx)
            return time.time() >= ready_at

        await ctx.wait_until("ready", ready, interval=0.5, timeout=60)
    if "FailTimes" in props:
        failures = int(props["FailTimes"])

        def flaky() -> str:
            note("attempt", ctx)
            count = len((RUN_DIR / "runs.log").read_text().split("attempt")) - 1
            if count <= failures:
                raise ConnectionError(f"flaky attempt {count}")
            return "ok"

        policy = asynccfn.RetryPolicy(max_attempts=failures + 1, initial_delay=1.5, jitter=0)
        await ctx.step("flaky", flaky, retry=policy)
    elapsed = (await ctx.now()).timestamp() - started.timestamp()
    return asynccfn.Success(physical_id="waited", data={"Elapsed": f"{elapsed:.1f}"})


waiting_handler = asynccfn.lambda_entry(waiting)


# -- parallel -------------------------------------------------------------------------------

parallel = asynccfn.Resource(update="replace", delete="nothing")


@parallel.create
async def create_parallel(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    async def branch(label: str) -> list[str]:
        out = []
        for k in (1, 2):

            async def body(k: int = k) -> str:
                await asyncio.sleep(random.uniform(0.05, 0.6))
                note(f"ran {label}{k}", ctx)
                return f"{label}{k}"

            out.append(await ctx.step(f"{label}-{k}", body))
        return out

    if request.properties.get("Gather"):
        results = await asyncio.gather(branch("a"), branch("b"))
    else:
        results = await ctx.parallel(branch("a"), branch("b"), branch("c"))
    # a hand-over here makes the next invocation replay every branch from the journal
    await ctx.sleep(float(request.properties.get("Then", 0)), name="after")
    joined = ",".join(item for branch_results in results for item in branch_results)
    return asynccfn.Success(physical_id="parallel", data={"Results": joined})


parallel_handler = asynccfn.lambda_entry(parallel)


# -- a sync step whose worker thread outlives the invocation --------------------------------

threads = asynccfn.Resource(update="replace", delete="nothing")


@threads.create
async def create_threads(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    def slow() -> str:
        note("thread-start", ctx)
        time.sleep(float(request.properties.get("Seconds", 4)))
        note("thread-end", ctx)
        return "done"

    if first_time("slow-thread"):
        await ctx.step("slow", slow)
    return asynccfn.Success(physical_id="threads")


threads_handler = asynccfn.lambda_entry(threads)


def lambda_failure_echo(event: Any, context: Any) -> None:
    """An on-failure destination that only records what it got."""
    note(f"on-failure {event.get('requestContext', {}).get('condition')}")
