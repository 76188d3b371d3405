"""7. Journal size: what DynamoDB stores (by its own item-size rules) per step returning a
100-byte JSON result, and for the operation item of a finished operation.

The floor of a step is the smallest item that could hold the same result under the same
keys (``pk``, ``sk``, the result); the floor of the operation item holds its keys and the
recorded response body (an outbox needs at least that).
"""

from __future__ import annotations

import asyncio
import math

from benchmarks._harness import Outcome, Row, Sizes, median
from benchmarks._servers import Servers
from benchmarks._sides import (
    build_handler,
    create_event,
    op_key,
    query_items,
    raw_dynamodb,
    steps_resource,
    succeed,
)

NAME = "7 journal size"
RESULT_BYTES = 100


def run(servers: Servers, sizes: Sizes) -> Outcome:
    return asyncio.run(_run(servers, sizes))


async def _run(servers: Servers, sizes: Sizes) -> Outcome:
    from asynccfn.journal.size import item_size

    outcome = Outcome(name=NAME)
    table = servers.table()
    handler = build_handler(steps_resource(), table)
    runtime = handler.runtime
    event = create_event(servers.response_url(), Steps=sizes.size_steps, Payload=RESULT_BYTES)
    try:
        await succeed(runtime, event)
    finally:
        await runtime.close()
    pk = op_key(event)
    async with raw_dynamodb() as raw:
        steps, _ = await query_items(raw, table, pk)
        answer = await raw.get_item(
            TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "op"}}, ConsistentRead=True
        )
    operation = answer["Item"]
    if len(steps) != sizes.size_steps:
        raise RuntimeError(f"found {len(steps)} of {sizes.size_steps} steps")
    if any(len(s["result"]["S"].encode()) != RESULT_BYTES for s in steps):
        raise RuntimeError("a journaled result is not the expected 100 bytes")

    sizes_ = [item_size(s) for s in steps]
    step_floor = median(
        [item_size({"pk": s["pk"], "sk": s["sk"], "result": s["result"]}) for s in steps]
    )
    per_step = median(sizes_)
    outcome.samples["step item bytes"] = sizes_
    outcome.add(
        Row(
            bench=NAME,
            metric=f"bytes per step ({RESULT_BYTES}-byte result)",
            value=per_step,
            floor=step_floor,
            ratio=per_step / step_floor,
            unit="bytes",
            note=f"{math.ceil(per_step / 1024)} write unit(s) per step",
        )
    )
    op_bytes = item_size(operation)
    op_floor = item_size(
        {"pk": operation["pk"], "sk": operation["sk"], "response": operation["response"]}
    )
    outcome.samples["operation item"] = {k: item_size({k: v}) for k, v in operation.items()}
    largest = sorted(outcome.samples["operation item"].items(), key=lambda kv: -kv[1])[:3]
    outcome.add(
        Row(
            bench=NAME,
            metric="operation item (finished Create)",
            value=op_bytes,
            floor=op_floor,
            ratio=op_bytes / op_floor,
            unit="bytes",
            note="largest: " + ", ".join(f"{k} {v} B" for k, v in largest),
        )
    )
    return outcome
