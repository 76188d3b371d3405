"""5. Many operations at once: N Create operations of a few steps each, all started together on
one event loop (one runtime, as in one warm container), against the same requests issued the
same way: each operation's calls in order, the operations concurrently.

The floor replays the DynamoDB calls asynccfn made for one operation (claim, step writes,
outbox), retargeted at a new key per operation, with the same response body PUT before the
last one, through one client with the same configuration (same connection pool). Each side's
rounds run in a process of its own (so one side's heap cannot slow the other's), the two
processes taking turns round by round, as the same machine's noise should meet both. Peak RSS
growth is the rise of the process's high-water mark over its RSS just before one round, per
concurrent operation, each side measured in a fresh process after a small warm-up round of
both (in a process that ran rounds before, the heap has grown already and shows nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from benchmarks._harness import Outcome, Row, Sizes, Timing, at_least, timed
from benchmarks._servers import Servers
from benchmarks._sides import (
    Call,
    LambdaContext,
    build_handler,
    create_event,
    op_key,
    quiet_stdout,
    raw_dynamodb,
    raw_http,
    raw_put,
    recorder_for,
    retarget,
    send,
    steps_resource,
)

NAME = "5 concurrency"

Round = Callable[[int], Awaitable[Callable[[], Awaitable[None]]]]


def run(servers: Servers, sizes: Sizes) -> Outcome:
    outcome = asyncio.run(_throughput(servers, sizes))
    n, k = sizes.concurrent, sizes.concurrent_steps
    if sizes.memory_in_child:
        growth = {side: _memory_in_child(servers, side, n, k) for side in ("asynccfn", "floor")}
    else:  # the same measurement without its fresh processes (the smoke test's)
        growth = {side: asyncio.run(_memory(servers, side, n, k)) for side in ("asynccfn", "floor")}
    where = "a fresh process" if sizes.memory_in_child else "this process"
    outcome.samples["peak RSS growth bytes"] = growth
    outcome.add(
        Row(
            bench=NAME,
            metric="peak RSS growth per concurrent operation",
            value=growth["asynccfn"] / n / 1024,
            floor=growth["floor"] / n / 1024,
            ratio=growth["asynccfn"] / growth["floor"] if growth["floor"] else None,
            unit="KiB",
            note=f"{n} at once, each side in {where} after a warm-up",
        )
    )
    return outcome


@contextlib.asynccontextmanager
async def _sides(servers: Servers, k: int) -> AsyncIterator[tuple[Round, Round]]:
    """Makers of one round of N concurrent operations, for asynccfn and for the floor."""
    handler = build_handler(steps_resource(), servers.table())
    runtime = handler.runtime
    try:
        recorder = await recorder_for(handler, keep=True)
        first = create_event(servers.response_url(), Steps=k)
        with quiet_stdout():
            await runtime.invoke(first, LambdaContext())
        recorder.keep = False
        calls = list(recorder.calls)
        if [c.operation for c in calls] != ["UpdateItem", *["PutItem"] * k, *["UpdateItem"] * 2]:
            raise RuntimeError(f"unexpected calls: {[c.operation for c in calls]}")
        body = servers.response_body(first["ResponseURL"])
        if body is None:
            raise RuntimeError("the first operation posted no response")
        old = op_key(first)

        async def ours(n: int) -> Callable[[], Awaitable[None]]:
            events = [create_event(servers.response_url(), Steps=k) for _ in range(n)]

            async def go() -> None:
                with quiet_stdout():
                    results = await asyncio.gather(
                        *(runtime.invoke(event, LambdaContext()) for event in events)
                    )
                ended = {r.outcome for r in results}
                if ended != {"SUCCESS"}:
                    raise RuntimeError(f"operations ended {ended}")

            return go

        async with raw_dynamodb(await runtime.clients.own("dynamodb")) as raw, raw_http() as http:

            async def floor(n: int) -> Callable[[], Awaitable[None]]:
                plans: list[tuple[list[Call], str]] = []
                for _ in range(n):
                    new = f"op#floor-{uuid.uuid4().hex}"
                    plans.append(
                        (
                            [Call(c.operation, retarget(c.params, old, new)) for c in calls],
                            servers.response_url(),
                        )
                    )

                async def operation(plan: list[Call], url: str) -> None:
                    for call in plan[:-1]:
                        await send(raw, call)
                    await raw_put(http, url, body)
                    await send(raw, plan[-1])

                async def go() -> None:
                    await asyncio.gather(*(operation(plan, url) for plan, url in plans))

                return go

            yield ours, floor
    finally:
        await runtime.close()


async def _throughput(servers: Servers, sizes: Sizes) -> Outcome:
    n, k = sizes.concurrent, sizes.concurrent_steps
    outcome = Outcome(name=NAME)
    mine: list[Timing] = []
    theirs: list[Timing] = []
    if sizes.memory_in_child:
        children = {side: _RoundsInChild(servers, side, k) for side in ("asynccfn", "floor")}
        make: dict[str, Callable[[int], Awaitable[Timing]]] = {
            side: child.round for side, child in children.items()
        }
    else:  # the smoke test's: both sides in this process
        children = {}
        sides = _sides(servers, k)
        ours, floor = await sides.__aenter__()

        async def in_process(round_of: Round, count: int) -> Timing:
            return await timed(await round_of(count))

        make = {
            "asynccfn": lambda count: in_process(ours, count),
            "floor": lambda count: in_process(floor, count),
        }
    try:
        warmup = int(sizes.warmup)
        for round_ in range(warmup + sizes.concurrent_repeats):
            order = [("asynccfn", mine), ("floor", theirs)]
            for side, laps in order if round_ % 2 == 0 else order[::-1]:
                lap = await make[side](n if round_ >= warmup else max(1, n // 4))
                if round_ >= warmup:
                    laps.append(lap)
    finally:
        for child in children.values():
            child.close()
        if not children:
            await sides.__aexit__(None, None, None)
    where = "each side in a process of its own" if children else "both sides in one process"
    outcome.compare(
        f"throughput, {n} operations of {k} step{'s' if k != 1 else ''} at once",
        [n / lap.wall for lap in mine],
        [n / lap.wall for lap in theirs],
        unit="ops/s",
        target=at_least(0.90),
        note=where,
    )
    outcome.compare(
        "event-loop CPU per operation",
        [lap.cpu / n for lap in mine],
        [lap.cpu / n for lap in theirs],
        unit="ms",
        scale=1e3,
        note="less sensitive to other load on the machine than the throughput",
    )
    return outcome


class _RoundsInChild:
    """One side's rounds, run on request in a process of its own (``round`` sends the size
    of a round and reads back its wall and event-loop CPU time)."""

    def __init__(self, servers: Servers, side: str, k: int) -> None:
        env = {**os.environ, **servers.environment, "BENCH_TABLE": servers.table()}
        self._errors = tempfile.TemporaryFile(mode="w+")  # a pipe could fill and stall it
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.concurrency", "rounds", side, "0", str(k)],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            text=True,
        )
        self._side = side

    async def round(self, n: int) -> Timing:
        return await asyncio.to_thread(self._round, n)

    def _round(self, n: int) -> Timing:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(f"{n}\n")
        stdin.flush()
        for line in stdout:
            if line.startswith("LAP "):
                wall, cpu = line.split()[1:3]
                return Timing(wall=float(wall), cpu=float(cpu))
        self._process.wait(timeout=30)
        self._errors.seek(0)
        raise RuntimeError(f"the {self._side} rounds failed:\n{self._errors.read()[-3000:]}")

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._errors.close()


async def _rounds(servers: Servers, side: str, k: int) -> None:
    """The child's side: warm both sides' clients up once, then time one round of ``side``
    for each size read from stdin."""
    async with _sides(servers, k) as (ours, floor):
        for make in (ours, floor):
            await (await make(2))()
        chosen = ours if side == "asynccfn" else floor
        for line in sys.stdin:
            lap = await timed(await chosen(int(line)))
            print(f"LAP {lap.wall} {lap.cpu}", flush=True)


def _memory_in_child(servers: Servers, side: str, n: int, k: int) -> float:
    """Peak RSS growth (bytes) of one round of ``side`` in a fresh process: in this one, the
    rounds before would have grown the heap already."""
    env = {**os.environ, **servers.environment, "BENCH_TABLE": servers.table()}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.concurrency", side, str(n), str(k)],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            return float(line.split()[1])
    raise RuntimeError(f"the memory round of {side} failed:\n{done.stderr[-3000:]}")


async def _memory(servers: Servers, side: str, n: int, k: int) -> float:
    async with _sides(servers, k) as (ours, floor):
        for make in (ours, floor):  # clients, pools and code paths warmed on both sides
            await (await make(2))()
        action = await (ours if side == "asynccfn" else floor)(n)
        gc.collect()
        with PeakRSS() as peak:
            await action()
    return peak.growth


class PeakRSS:
    """The process's peak RSS inside the block, over its RSS at the start (``growth``).

    Linux resets the high-water mark through ``/proc/self/clear_refs``; where that is not
    allowed, a thread samples the RSS every millisecond instead.
    """

    def __init__(self) -> None:
        self.growth = 0.0
        self._start = 0
        self._sampled = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRSS:
        self._start = _status("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
        except OSError:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            peak = self._sampled
        else:
            peak = _status("VmHWM")
        self.growth = float(max(0, peak - self._start))

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self._sampled = max(self._sampled, _status("VmRSS"))


def _status(field: str) -> int:
    """A ``/proc/self/status`` memory field, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


if __name__ == "__main__":
    rounds = sys.argv[1] == "rounds"
    side, count, steps = sys.argv[1 + rounds], int(sys.argv[2 + rounds]), int(sys.argv[3 + rounds])
    found = Servers(
        dynamodb=os.environ["AWS_ENDPOINT_URL_DYNAMODB"],
        s3=os.environ["AWS_ENDPOINT_URL_S3"],
        journal=os.environ["BENCH_TABLE"],
    )
    if rounds:
        asyncio.run(_rounds(found, side, steps))
    else:
        print(f"BENCH {asyncio.run(_memory(found, side, count, steps))}", flush=True)
    found.close()
