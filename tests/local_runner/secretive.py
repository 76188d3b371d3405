"""A resource with a sensitive step and sensitive state, for runs with a KMS key (imported by
name in the Lambda workers). Its own module: its ``lambda_entry(sensitive_state=...)`` refuses
to load in a worker that has a journal but no key, which must not break the other resources."""

from __future__ import annotations

import asyncio

import asynccfn

SECRET = "planted-local-runner-secret-7f3c9a"

secretive = asynccfn.Resource("Custom::Secretive", update="replace")


async def _fetch_password() -> str:
    return SECRET


async def _measure(text: str) -> int:
    await asyncio.sleep(0.05)
    return len(text)


@secretive.create
async def create_secretly(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    password = await ctx.step("fetch-password", _fetch_password, sensitive=True)
    ctx.state["password"] = password
    length = await ctx.step("measure", _measure, password)
    assert ctx.state["password"] == SECRET  # the state came back in the clear on replay
    return asynccfn.Success(physical_id=f"user-{length}", data={"Password": password}, no_echo=True)


@secretive.delete
async def delete_secretly(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    return asynccfn.Success()  # the password was only fetched


# Outside a worker no journal is configured, so sensitive_state needs no codec here; in the
# worker the local stack gives the journal and, with a KMS key, ASYNCCFN_KMS_KEY.
handler = asynccfn.lambda_entry(secretive, sensitive_state=["password"])
