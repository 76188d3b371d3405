"""The benchmarks in order, the machine they ran on, and the results as text, JSON, Markdown."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import (
    cold_start,
    concurrency,
    handover,
    journal_size,
    replay,
    round_trips,
    step_overhead,
)
from benchmarks._harness import Outcome, Row, Sizes
from benchmarks._servers import Servers

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parents[1] / "README.md"
RESULTS_PAGE = Path(__file__).resolve().parent / "RESULTS.md"

BENCHMARKS: dict[str, Callable[[Servers, Sizes], Outcome]] = {
    "step_overhead": step_overhead.run,
    "replay": replay.run,
    "cold_start": cold_start.run,
    "round_trips": round_trips.run,
    "concurrency": concurrency.run,
    "handover": handover.run,
    "journal_size": journal_size.run,
}


def machine() -> dict[str, Any]:
    """What the numbers ran on."""
    from asynccfn.local.dynamodb import DYNAMODB_LOCAL_VERSION

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    versions = {}
    for package in ("aiobotocore", "aiohttp", "pynamodb", "moto", "awslambdaric"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["DynamoDB Local"] = DYNAMODB_LOCAL_VERSION
    return {
        "load_average_at_start": load_average(),
        "os": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
        "versions": versions,
        "commit": _commit(),
    }


def load_average() -> list[float] | None:
    try:
        return [round(x, 1) for x in os.getloadavg()]
    except OSError:
        return None


def _commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=README.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head or None


@dataclass(kw_only=True)
class Report:
    machine: dict[str, Any]
    sizes: Sizes
    started: float
    seconds: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)

    def rows(self) -> list[Row]:
        return [row for outcome in self.outcomes for row in outcome.rows]

    def summary(self, *, short: bool = False) -> str:
        checked = [row for row in self.rows() if row.passed is not None]
        missed = [row for row in checked if not row.passed]
        text = f"{len(checked) - len(missed)} of {len(checked)} targets met"
        if missed and not short:
            text += "; missed: " + "; ".join(f"{r.bench}: {r.metric}" for r in missed)
        return text + f" in a run of {self.seconds:.0f} s"

    def text_table(self, only: Outcome | None = None) -> str:
        rows = only.rows if only is not None else self.rows()
        header = ("benchmark", "metric", "asynccfn", "floor", "unit", "ratio", "target", "")
        lines = [header, *(_cells(row) for row in rows)]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        out = []
        for n, line in enumerate(lines):
            out.append(
                "  ".join(
                    cell.rjust(w) if i in (2, 3, 5) else cell.ljust(w)
                    for i, (cell, w) in enumerate(zip(line, widths, strict=True))
                ).rstrip()
            )
            if n == 0:
                out.append("-" * len(out[0]))
        notes = [f"  {row.bench} / {row.metric}: {row.note}" for row in rows if row.note]
        return "\n".join(out + notes)

    def markdown(self) -> str:
        lines = [
            "| benchmark | metric | asynccfn | floor | unit | ratio | target | met |",
            "|---|---|---:|---:|---|---:|---|---|",
        ]
        notes = []
        for row in self.rows():
            cells = list(_cells(row))
            cells[-1] = {"ok": "yes", "MISS": "**no**", "": ""}[cells[-1]]
            if row.note:
                notes.append(f"- {row.bench}, {row.metric}: {row.note}.")
                cells[1] += f" [{len(notes)}]"
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        when = time.strftime("%Y-%m-%d", time.gmtime(self.started))
        lines += ["", *(f"{n}. {note[2:]}" for n, note in enumerate(notes, 1))]
        lines += [
            "",
            f"Ran {when} on {describe_machine(self.machine)}. {self.summary(short=True)}.",
        ]
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        return json.dumps(
            {
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
                "seconds": round(self.seconds, 1),
                "machine": self.machine,
                "sizes": asdict(self.sizes),
                "summary": self.summary(),
                "benchmarks": [outcome.as_json() for outcome in self.outcomes],
            },
            indent=2,
            allow_nan=False,
            default=_finite,
        )


def describe_machine(m: dict[str, Any]) -> str:
    versions = m.get("versions", {})
    text = (
        f"{m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), {m['os']}, Python "
        f"{m['python']}, DynamoDB Local {versions.get('DynamoDB Local')}, moto "
        f"{versions.get('moto')}, aiobotocore {versions.get('aiobotocore')}, commit "
        f"{m.get('commit')}"
    )
    start, end = m.get("load_average_at_start"), m.get("load_average_at_end")
    if start and end:
        text += f"; 1-minute load average {start[0]:g} at the start, {end[0]:g} at the end"
    return text


def _finite(value: Any) -> Any:
    raise TypeError(f"not JSON: {value!r}")


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cells(row: Row) -> tuple[str, ...]:
    passed = {True: "ok", False: "MISS", None: ""}[row.passed]
    target = ""
    if row.target is not None:
        target = f"{row.checked} {row.target}" if row.checked != "ratio" else str(row.target)
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
    return (
        row.bench,
        row.metric,
        _number(row.value),
        _number(row.floor),
        row.unit,
        ratio,
        target,
        passed,
    )


_SECTION = re.compile(r"^## Performance\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)

_ABOUT = (
    "asynccfn against the raw floor (the same DynamoDB requests and response PUTs sent "
    "with aiobotocore and aiohttp alone, through clients with botocore's defaults), on "
    "the same local servers in the same run: "
    "DynamoDB Local, moto's S3, the local Lambda service. Ratios of medians over "
    "repeated rounds are the figures of record; absolute times are from a shared, noisy "
    "machine."
)


def results_page(report: Report) -> str:
    """The benchmark results page (``benchmarks/RESULTS.md``): the whole table."""
    return (
        "# asynccfn benchmark results\n\n"
        + _ABOUT
        + " `nox -s bench` reruns them and rewrites this page (`python -m benchmarks "
        "--update-readme`); `benchmarks/results/latest.md` keeps the latest run.\n\n"
        + report.markdown()
    )


def update_readme(report: Report, readme: Path = README, results: Path = RESULTS_PAGE) -> None:
    """Write the results page ``results`` and point README.md's "Performance" section (or
    one added at the end) at it, with the run's one-line summary: the user's README keeps
    no table."""
    results.write_text(results_page(report).rstrip("\n") + "\n")
    link = Path(os.path.relpath(results, readme.parent)).as_posix()
    section = (
        "## Performance\n\n" + _ABOUT + f" The figures, each against its target: [{link}]({link}) "
        f"({report.summary(short=True)}).\n\n"
    )
    text = readme.read_text()
    if _SECTION.search(text):
        text = _SECTION.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    readme.write_text(text.rstrip("\n") + "\n")
