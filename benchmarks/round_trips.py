"""4. Round-trips: DynamoDB requests per invocation, counted, not timed.

Counted twice: by asynccfn's own ``JournalStore.requests`` and by botocore's ``before-send``
event on the runtime's client (every HTTP request, retries included); the rows show the
latter and the note says whether both agree. The replayed steps hold results of 2.5 KB, so
that the journal spans several 1 MB Query pages.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from benchmarks._harness import Outcome, Row, Sizes, at_most
from benchmarks._servers import Servers
from benchmarks._sides import (
    build_handler,
    create_event,
    journal_for_replay,
    op_key,
    payload_json,
    query_items,
    raw_dynamodb,
    recorder_for,
    steps_resource,
    succeed,
)

NAME = "4 round-trips"
PAGE = 1024 * 1024  # a Query page holds at most 1 MB of items
RESULT_BYTES = 2500


def run(servers: Servers, sizes: Sizes) -> Outcome:
    return asyncio.run(_run(servers, sizes))


async def _run(servers: Servers, sizes: Sizes) -> Outcome:
    from asynccfn.journal.size import item_size

    outcome = Outcome(name=NAME)
    table = servers.table()
    handler = build_handler(steps_resource(), table)
    runtime = handler.runtime
    try:
        recorder = await recorder_for(handler)

        async def count(event: dict[str, Any]) -> tuple[int, int]:
            before = runtime.journal.requests
            recorder.reset()
            await succeed(runtime, event)
            return recorder.sent, runtime.journal.requests - before

        def row(metric: str, counted: tuple[int, int], bound: int, note: str = "") -> Row:
            sent, own = counted
            agree = "asynccfn counts the same" if sent == own else f"asynccfn counts {own}"
            return outcome.add(
                Row(
                    bench=NAME,
                    metric=metric,
                    value=sent,
                    unit="requests",
                    target=at_most(bound),
                    checked="value",
                    note=f"{agree}{'; ' + note if note else ''}",
                )
            )

        n = sizes.round_trip_steps
        row("no-op Create", await count(create_event(servers.response_url())), 3)
        row(f"{n}-step Create", await count(create_event(servers.response_url(), Steps=n)), n + 3)

        replayed = sizes.round_trip_replay
        async with raw_dynamodb() as raw:
            event = create_event(servers.response_url(), Steps=replayed)
            successor = await journal_for_replay(
                raw, table, event, steps=replayed, result=payload_json(RESULT_BYTES)
            )
            items, pages = await query_items(raw, table, op_key(event))
        journal_bytes = sum(item_size(item) for item in items)
        bound = math.ceil(journal_bytes / PAGE) + 3
        row(
            f"replay of {replayed:,} steps ({journal_bytes / 1e6:.2f} MB journal)",
            await count(successor),
            bound,
            note=f"{pages} Query pages",
        )
    finally:
        await runtime.close()
    outcome.samples["journal bytes"] = journal_bytes
    return outcome
