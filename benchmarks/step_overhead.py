"""1. Step overhead: sequential ``ctx.step`` calls with a trivial body, against the same number
of conditional PutItem calls sending the very items asynccfn journaled (same sizes, same
``attribute_not_exists`` condition), one at a time. Twice: with an async body, and with a
plain function, which a step runs in a worker thread (the thread hop is the user's choice; its
cost is shown).

The asynccfn figure is timed inside the handler, around the loop of steps, so the claim and the
response of the invocation are not part of it (benchmark 4 counts those). The two sides run
interleaved in blocks of 50 (asynccfn's steps, then 50 of the floor's writes, from inside the
handler but outside its timing), so that both meet the same noise of a shared machine.
"""

from __future__ import annotations

import asyncio
import uuid

from benchmarks._harness import Outcome, Sizes, Stopwatch, Timing, at_most
from benchmarks._servers import Servers
from benchmarks._sides import (
    Call,
    LambdaContext,
    build_handler,
    create_event,
    op_key,
    quiet_stdout,
    raw_dynamodb,
    recorder_for,
    retarget,
    send,
    steps_resource,
    succeed,
)

NAME = "1 step overhead"
BLOCK = 50


def run(servers: Servers, sizes: Sizes) -> Outcome:
    return asyncio.run(_run(servers, sizes))


async def _run(servers: Servers, sizes: Sizes) -> Outcome:
    outcome = Outcome(name=NAME)
    for sync in (False, True):
        await _measure(servers, sizes, outcome, sync=sync)
    return outcome


async def _measure(servers: Servers, sizes: Sizes, outcome: Outcome, *, sync: bool) -> None:
    n = sizes.steps
    every = max(1, min(BLOCK, n // 2))
    body = "sync body in a thread" if sync else "async body"
    watch = Stopwatch()
    floor_watch = Stopwatch()
    pending: list[list[Call]] = []  # the floor's blocks still to run this round

    async def floor_block() -> None:
        if pending:
            floor_watch.resume()
            for call in pending.pop(0):
                await send(raw, call)
            floor_watch.pause()

    handler = build_handler(
        steps_resource(watch, between=floor_block, every=every), servers.table()
    )
    runtime = handler.runtime
    try:
        recorder = await recorder_for(handler, keep=True)
        async with raw_dynamodb(await runtime.clients.own("dynamodb")) as raw:
            # asynccfn's step writes, recorded for the floor (a warm-up: not counted).
            event = create_event(servers.response_url(), Steps=n, Sync=str(sync).lower())
            with quiet_stdout():
                await runtime.invoke(event, LambdaContext())
            recorder.keep = False
            puts = [c for c in recorder.calls if c.operation == "PutItem"]
            if len(puts) != n:
                raise RuntimeError(f"expected {n} step writes, recorded {len(puts)}")
            old = op_key(event)

            mine: list[Timing] = []
            theirs: list[Timing] = []
            warmup = int(sizes.warmup)
            for round_ in range(warmup + sizes.repeats):
                new = f"op#floor-{uuid.uuid4().hex}"
                calls = [Call(c.operation, retarget(c.params, old, new)) for c in puts]
                pending[:] = [calls[i : i + every] for i in range(0, n, every)]
                floor_watch.start()
                floor_watch.pause()
                if round_ % 2:  # alternate which side runs each block first
                    await floor_block()
                event = create_event(servers.response_url(), Steps=n, Sync=str(sync).lower())
                await succeed(runtime, event, "the asynccfn invocation")
                while pending:
                    await floor_block()
                floor_watch.resume()
                floor_lap = floor_watch.stop()
                if round_ >= warmup:
                    mine.append(watch.laps[-1])
                    theirs.append(floor_lap)
    finally:
        await runtime.close()

    ratio_row = outcome.compare(
        f"{n} sequential ctx.step ({body}) vs conditional PutItem",
        [t.wall for t in mine],
        [t.wall for t in theirs],
        unit="ms",
        scale=1e3,
        target=at_most(1.10),
    )
    per_step = ((ratio_row.value or 0) - (ratio_row.floor or 0)) / n * 1e3
    outcome.compare(
        f"event-loop CPU per step ({body})",
        [t.cpu / n for t in mine],
        [t.cpu / n for t in theirs],
        unit="µs",
        scale=1e6,
        note=f"wall time added per step: {per_step:.0f} µs",
    )
