"""The function benchmark 6 deploys to the local Lambda service: a chain of durable sleeps,
each longer than what is left of the invocation, so every invocation hands over.

It appends ``<RequestId> <what> <invocation> <epoch seconds>`` lines to
``$BENCH_MARKS/marks.log``: ``start`` on the first line of user code, ``end`` when the
deadline scope ends the handler (the hand-over signal passes through user code). ``Hold``
keeps a worker busy for a while (to start warm workers before the measured chains).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asynccfn

MARKS = Path(os.environ.get("BENCH_MARKS", "/tmp")) / "marks.log"

chain = asynccfn.Resource("Custom::Bench", update="replace", delete="nothing")


def mark(request: asynccfn.Request, what: str, invocation: int, at: float) -> None:
    with MARKS.open("a") as marks:
        marks.write(f"{request.request_id} {what} {invocation} {at:.6f}\n")


@chain.create
async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    now = time.time()
    mark(request, "start", ctx.invocation, now)
    props = request.properties
    if "Hold" in props:
        await asyncio.sleep(float(props["Hold"]))
    seconds = float(props.get("Seconds", 1.0))
    for i in range(int(props.get("Hops", 0))):
        try:
            await ctx.sleep(seconds, name=f"nap-{i}")
        except BaseException:
            mark(request, "end", ctx.invocation, time.time())
            raise
    return asynccfn.Success(physical_id="chain")


handler = asynccfn.lambda_entry(chain)
