"""2. Replay: an invocation that replays N journaled steps and then answers (claim on the
hand-over token, one consistent paginated Query, N replayed steps, outbox, PUT, posted),
against the raw requests it cannot avoid: a conditional claim write, the paginated consistent
Query of the same items, an outbox write, the response PUT and the posted mark. The Query alone
is shown too, and the same rounds to the handler's return (without the answer's three round
trips), which is the replay's own cost.

The journal is written once per size, in batches, in the state a hand-over leaves it; after
each round the operation item is put back in that state (set-up, not measured). asynccfn's
CPU per replayed step is the event-loop thread's CPU for the whole invocation less the
floor's CPU for the Query, over N: model decoding, the executor and the invocation's fixed
work, amortised. At 10,000 steps the same figures show whether the cost per step grows with
the journal; the growth row divides asynccfn's whole CPU per replayed step at the larger size
by that at the smaller (the part beyond the floor is negative where the journal's own decoding
costs less than the floor's parser, and a ratio of it says nothing).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks._harness import Outcome, Row, Sizes, Stopwatch, Timing, at_most, median, timed
from benchmarks._servers import Servers
from benchmarks._sides import (
    build_handler,
    create_event,
    journal_for_replay,
    op_key,
    query_items,
    raw_dynamodb,
    raw_http,
    raw_put,
    reopen_for_replay,
    steps_resource,
    succeed,
)

NAME = "2 replay"


def run(servers: Servers, sizes: Sizes) -> Outcome:
    return asyncio.run(_run(servers, sizes))


async def _run(servers: Servers, sizes: Sizes) -> Outcome:
    outcome = Outcome(name=NAME)
    watch = Stopwatch()
    table = servers.table()
    handler = build_handler(steps_resource(watch), table)
    runtime = handler.runtime
    per_step: dict[int, float] = {}  # asynccfn's CPU per replayed step beyond the floor
    whole: dict[int, tuple[float, float]] = {}  # each side's CPU per replayed step, in all
    try:
        async with raw_dynamodb(await runtime.clients.own("dynamodb")) as raw, raw_http() as http:

            async def rounds(
                n: int, repeats: int, warmup: int
            ) -> tuple[list[Timing], list[Timing], list[Timing], list[float]]:
                mine: list[Timing] = []
                theirs: list[Timing] = []
                answering: list[Timing] = []
                answers: list[float] = []  # wall seconds from the handler's return to the end
                event = create_event(servers.response_url(), Steps=n)
                successor = await journal_for_replay(raw, table, event, steps=n)
                pk = op_key(event)

                async def ours() -> None:
                    await succeed(runtime, successor, "the replay")
                    answered.append(time.perf_counter() - watch.stopped_at)

                answered: list[float] = []

                async def floor() -> None:
                    items, _ = await query_items(raw, table, pk)
                    if len(items) != n:
                        raise RuntimeError(f"the Query found {len(items)} of {n} steps")

                async def floor_answering() -> None:
                    await _update(raw, table, f"floor-{pk}", "claimed")
                    await floor()
                    await _update(raw, table, f"floor-{pk}", "outbox")
                    await raw_put(http, url, b'{"Status":"SUCCESS"}')
                    await _update(raw, table, f"floor-{pk}", "posted")

                url = servers.response_url()
                for round_ in range(warmup + repeats):
                    if round_:
                        successor = await reopen_for_replay(raw, table, event)
                    if round_ % 2:
                        answer_lap = await timed(floor_answering)
                        theirs_lap, mine_lap = await timed(floor), await timed(ours)
                    else:
                        mine_lap, theirs_lap = await timed(ours), await timed(floor)
                        answer_lap = await timed(floor_answering)
                    if round_ >= warmup:
                        mine.append(mine_lap)
                        theirs.append(theirs_lap)
                        answering.append(answer_lap)
                        answers.append(answered[-1])
                return mine, theirs, answering, answers

            # The large journal runs after the small one, on warm servers: no warm-up round.
            for n, repeats, warmup in (
                (sizes.replay_steps, sizes.replay_repeats, int(sizes.warmup)),
                (sizes.replay_large, sizes.replay_large_repeats, 0),
            ):
                loop_laps = len(watch.laps)
                mine, theirs, answering, answers = await rounds(n, repeats, warmup)
                replay_loop = [lap.cpu for lap in watch.laps[loop_laps:]]
                outcome.compare(
                    f"replay {n:,} steps and answer vs Query + the answer's requests",
                    [t.wall for t in mine],
                    [t.wall for t in answering],
                    unit="ms",
                    scale=1e3,
                    target=at_most(1.0),
                )
                outcome.compare(
                    f"replay {n:,} steps and answer vs paginated Query",
                    [t.wall for t in mine],
                    [t.wall for t in theirs],
                    unit="ms",
                    scale=1e3,
                )
                outcome.compare(
                    f"replay {n:,} steps to the handler's return vs paginated Query",
                    [t.wall - a for t, a in zip(mine, answers, strict=True)],
                    [t.wall for t in theirs],
                    unit="ms",
                    scale=1e3,
                    note=(
                        "the answer after it (outbox write, PUT, posted mark) took "
                        f"{median(answers) * 1e3:.1f} ms"
                    ),
                )
                cpu = [(a.cpu - b.cpu) / n for a, b in zip(mine, answering, strict=True)]
                per_step[n] = median(cpu)
                whole[n] = (
                    median([t.cpu for t in mine]) / n,
                    median([t.cpu for t in answering]) / n,
                )
                outcome.samples[f"cpu per step at {n}"] = cpu
                outcome.add(
                    _row(
                        f"asynccfn CPU per replayed step beyond the floor ({n:,})",
                        per_step[n] * 1e6,
                        bound=15.0,
                        note=(
                            "negative: the journal's own decoding costs less than the floor's "
                            "generic parser; "
                            if per_step[n] < 0
                            else ""
                        )
                        + "of which the handler's replay loop "
                        f"{median(replay_loop[warmup:]) / n * 1e6:.1f} µs",
                    )
                )
    finally:
        await runtime.close()
    small, large = sizes.replay_steps, sizes.replay_large
    # asynccfn's CPU for an invocation is fixed + N x marginal: the fixed part (claim, outbox,
    # PUT, posted, logs) is what the amortised figure at the smaller size carries extra.
    marginal = (per_step[large] * large - per_step[small] * small) / (large - small)
    fixed = (per_step[small] - marginal) * small
    split = (
        f"fixed {fixed * 1e3:.1f} ms an invocation + {marginal * 1e6:.1f} µs a replayed step"
        if fixed >= 0
        else "the noise is larger than the invocation's fixed part"
    )
    # How it grows: asynccfn's CPU per replayed step (its whole invocation's, which is always
    # positive, where the part beyond the floor may be negative) at the larger size over the
    # smaller; the floor's own ratio beside it.
    ours_growth = whole[large][0] / whole[small][0]
    floor_growth = whole[large][1] / whole[small][1]
    outcome.add(
        _row(
            f"CPU per step at {large:,} / at {small:,}",
            ours_growth,
            unit="x",
            bound=1.2,
            note=(
                f"asynccfn's CPU per replayed step, {whole[small][0] * 1e6:.0f} µs at "
                f"{small:,} and {whole[large][0] * 1e6:.0f} µs at {large:,} (the floor's "
                f"{floor_growth:.2f}x); beyond the floor, {split}"
            ),
        )
    )
    return outcome


async def _update(client: Any, table: str, pk: str, what: str) -> None:
    """One conditional UpdateItem on an item of the floor's own, as the claim, outbox and
    posted writes are."""
    await client.update_item(
        TableName=table,
        Key={"pk": {"S": pk}, "sk": {"S": "op"}},
        UpdateExpression="SET #what = :now",
        ConditionExpression="attribute_not_exists(#gone)",
        ExpressionAttributeNames={"#what": what, "#gone": "gone"},
        ExpressionAttributeValues={":now": {"N": str(time.time())}},
    )


def _row(
    metric: str, value: float | None, *, unit: str = "µs", bound: float = 50.0, note: str = ""
) -> Row:
    return Row(
        bench=NAME,
        metric=metric,
        value=value,
        unit=unit,
        target=at_most(bound),
        checked="value",
        note=note,
    )
