"""Resources with a new user's mistakes, for the local runner's tests (imported by name in
the Lambda workers)."""

from __future__ import annotations

import asyncio
import json
import time

import asynccfn


async def _work(i: int) -> int:
    await asyncio.sleep(0.01)
    return i


# -- no Update handler, and no declared answer for an Update ------------------------------------

no_update = asynccfn.Resource("Custom::NoUpdate")  # the line the refusal points at


@no_update.create
@no_update.delete
async def create_or_delete(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    return asynccfn.Success(physical_id="made")


# -- update="replace": an Update creates a replacement, and CloudFormation deletes the old one --

replaced = asynccfn.Resource("Custom::Replaced", update="replace")


@replaced.create
async def create_named(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    name = str(request.properties["Name"])
    await ctx.step("make", _work, 1)
    return asynccfn.Success(physical_id=name, data={"Name": name})


@replaced.delete
async def delete_named(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    await ctx.step("remove", _work, 2)
    return asynccfn.Success()


# -- a forgotten return ----------------------------------------------------------------------------

forgetful_return = asynccfn.Resource("Custom::ForgetfulReturn", delete="nothing", update="replace")


@forgetful_return.create
async def create_without_return(
    request: asynccfn.Request, ctx: asynccfn.Context
) -> asynccfn.Success:
    await ctx.step("make", _work, 1)
    asynccfn.Success(physical_id="made")  # the mistake: built, not returned
    return None  # type: ignore[return-value]


# -- functions given to ctx.parallel where their calls were meant ------------------------------

uncalled = asynccfn.Resource("Custom::Uncalled", delete="nothing", update="replace")


async def fetch_a() -> int:
    return await _work(1)


async def fetch_b() -> int:
    return await _work(2)


@uncalled.create
async def create_in_parallel(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    await ctx.parallel(fetch_a, fetch_b)  # type: ignore[arg-type]
    return asynccfn.Success(physical_id="never")


# -- properties as the handler receives them ---------------------------------------------------

echo = asynccfn.Resource("Custom::Echo", update="replace", delete="nothing")


@echo.create
async def echo_properties(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    seen = {k: v for k, v in request.properties.items() if k != "ServiceToken"}
    return asynccfn.Success(physical_id="echo", data={"Seen": json.dumps(seen, sort_keys=True)})


# -- sync work on the event loop -----------------------------------------------------------------

blocking = asynccfn.Resource("Custom::Blocking", update="replace", delete="nothing")


@blocking.create
async def create_blocking(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    time.sleep(2)  # noqa: ASYNC251 - the mistake: blocks the loop; it belongs in ctx.step
    return asynccfn.Success(physical_id="blocked")


# The same mistake past the Lambda timeout: every attempt is killed while the loop is blocked.
blocking_past_timeout = asynccfn.Resource(
    "Custom::BlockingPastTimeout", update="replace", delete="nothing"
)


@blocking_past_timeout.create
async def create_blocking_long(
    request: asynccfn.Request, ctx: asynccfn.Context
) -> asynccfn.Success:
    time.sleep(4)  # noqa: ASYNC251 - the mistake, outlasting the function's 2 s timeout
    return asynccfn.Success(physical_id="never")


# -- an extra step taken on the first run only -------------------------------------------------

extra_step = asynccfn.Resource("Custom::ExtraStep", delete="nothing", update="replace")


@extra_step.create
async def create_with_extra_step(
    request: asynccfn.Request, ctx: asynccfn.Context
) -> asynccfn.Success:
    await ctx.step("make", _work, 1)
    if not ctx.is_replaying:  # the mistake: the step's record says it ran, the replay skips it
        await ctx.step("announce", _work, 2)
    return asynccfn.Success(physical_id="extra")
