"""What every benchmark shares: sizes, rows of results, medians, ratios and targets."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class Sizes:
    """How big each benchmark runs. ``full()`` is the issue's; ``smoke()`` takes seconds."""

    warmup: bool = True  # one untimed round first (JIT, caches, connection pools)
    repeats: int = 7  # timed rounds per side
    steps: int = 500  # 1: sequential steps
    replay_steps: int = 1_000  # 2: steps replayed
    replay_large: int = 10_000  # 2: ... and the linearity check
    replay_repeats: int = 9
    replay_large_repeats: int = 5
    cold_repeats: int = 7  # 3: fresh processes per side
    importtime_repeats: int = 9
    round_trip_steps: int = 25  # 4: an N-step operation
    round_trip_replay: int = 1_000  # 4: replayed steps (2.5 KB results: a multi-page journal)
    concurrent: int = 200  # 5: operations at once
    concurrent_steps: int = 1  # 5: steps per operation
    concurrent_repeats: int = 7  # a shared machine's noise: the median of several rounds
    memory_in_child: bool = True  # 5: each side's RSS in a fresh process (else in this one)
    handover_chains: int = 4  # 6: operations handing over at the same time
    handover_hops: int = 6  # 6: durable sleeps per operation (about one hand-over each)
    size_steps: int = 20  # 7: steps journaled to measure

    @classmethod
    def full(cls) -> Sizes:
        return cls()

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            warmup=False,
            repeats=1,
            steps=10,
            replay_steps=20,
            replay_large=40,
            replay_repeats=1,
            replay_large_repeats=1,
            cold_repeats=1,
            importtime_repeats=1,
            round_trip_steps=3,
            round_trip_replay=30,
            concurrent=5,
            concurrent_steps=1,
            concurrent_repeats=1,
            memory_in_child=False,
            handover_chains=1,
            handover_hops=1,
            size_steps=3,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """A bound a value must keep: ``value <= bound`` (``at_most``) or ``>=`` (``at_least``)."""

    op: str
    bound: float

    def holds(self, value: float | None) -> bool | None:
        if value is None or math.isnan(value):
            return None
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


def at_most(bound: float) -> Target:
    return Target(op="<=", bound=bound)


def at_least(bound: float) -> Target:
    return Target(op=">=", bound=bound)


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One line of the results table.

    ``value`` is asynccfn's figure, ``floor`` the raw figure it is compared with (if any),
    ``ratio`` value/floor; ``target`` applies to ``checked`` ("ratio" or "value").
    """

    bench: str
    metric: str
    value: float | None
    unit: str
    floor: float | None = None
    ratio: float | None = None
    target: Target | None = None
    checked: str = "ratio"
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.target.holds(self.ratio if self.checked == "ratio" else self.value)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["target"] = str(self.target) if self.target else None
        out["passed"] = self.passed
        return out


@dataclass(kw_only=True)
class Outcome:
    """What one benchmark reports: its table rows and the raw samples behind them."""

    name: str
    rows: list[Row] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def compare(
        self,
        metric: str,
        ours: Sequence[float],
        floor: Sequence[float],
        *,
        unit: str,
        target: Target | None = None,
        scale: float = 1.0,
        note: str = "",
    ) -> Row:
        """A row of the ratio of medians of ``ours`` and ``floor`` (samples kept as given)."""
        self.samples[metric] = {"asynccfn": list(ours), "floor": list(floor)}
        value, base = median(ours), median(floor)
        return self.add(
            Row(
                bench=self.name,
                metric=metric,
                value=value * scale,
                floor=base * scale,
                unit=unit,
                ratio=value / base if base else None,
                target=target,
                note=note,
            )
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 2),
            "rows": [row.as_json() for row in self.rows],
            "samples": self.samples,
        }


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by the nearest-rank method (p99 of 20 samples is the largest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Timing:
    wall: float  # seconds
    cpu: float  # seconds of this thread's CPU (the event loop's)


class Stopwatch:
    """Wall and event-loop-thread CPU time between ``start`` and ``stop``, less the pauses.

    Thread CPU, not process CPU: moto's server or the Lambda service may run in threads of
    this process, and their work is not asynccfn's.
    """

    __slots__ = ("_cpu", "_cpu_sum", "_wall", "_wall_sum", "laps", "stopped_at")

    def __init__(self) -> None:
        self._wall = self._cpu = self._wall_sum = self._cpu_sum = 0.0
        self.laps: list[Timing] = []
        self.stopped_at = 0.0  # perf_counter() at the last stop

    def start(self) -> None:
        self._wall_sum = self._cpu_sum = 0.0
        self.resume()

    def resume(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.thread_time()

    def pause(self) -> None:
        self._wall_sum += time.perf_counter() - self._wall
        self._cpu_sum += time.thread_time() - self._cpu

    def stop(self) -> Timing:
        self.pause()
        self.stopped_at = time.perf_counter()
        lap = Timing(self._wall_sum, self._cpu_sum)
        self.laps.append(lap)
        return lap


async def timed(action: Callable[[], Awaitable[Any]]) -> Timing:
    """Run ``action`` once and time it."""
    watch = Stopwatch()
    watch.start()
    await action()
    return watch.stop()
