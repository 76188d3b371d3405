"""3. Cold start: a fresh Python process that imports asynccfn, builds ``lambda_entry`` and
serves one no-op Create end to end (claim, outbox, response PUT, posted), against a fresh
process that imports aiobotocore and aiohttp and sends the same requests (as the other
benchmarks' floors do: the DynamoDB requests asynccfn sent for such a Create, recorded in
this process and retargeted at a new key, and the PUT, in asynccfn's order). A second floor
sends one PutItem and the PUT, to show what the outbox's two journal writes cost.

A cold start is timed from just before the process is spawned to the moment its invocation
is done (the child reports the wall clock then; interpreter teardown is not part of it, as
Lambda keeps the process). The children see ``AWS_LAMBDA_RUNTIME_API`` as in Lambda, so
``lambda_entry`` prepares its clients as it does during Lambda's init phase, which is part of
a cold start. ``python -X importtime`` of the asynccfn process, from the packaged zip, gives
the import time of asynccfn's own modules (self time, the dependencies they import
excluded); the child
also counts the modules loaded once it has served its Create (the interpreter's own included).

The target is the packaged row's: ``asynccfn package`` of the demo, unpacked, and both sides
run from that folder alone with no site-packages, as Lambda runs a function's zip. The
installed-package row beside it (both sides from site-packages) is shown for comparison.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import asynccfn
from benchmarks._harness import Outcome, Row, Sizes, at_most, median
from benchmarks._servers import Servers
from benchmarks._sides import build_handler, create_event, op_key, recorder_for, succeed

NAME = "3 cold start"
CHILDREN = Path(__file__).resolve().parent / "cold"
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)$")


def run(servers: Servers, sizes: Sizes) -> Outcome:
    outcome = Outcome(name=NAME)
    env = {
        **os.environ,
        **servers.environment,
        "BENCH_TABLE": servers.table(),
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",  # never contacted: the child calls the handler
    }
    env["BENCH_CALLS"] = json.dumps(asyncio.run(_recorded_create(servers)))
    ours: list[dict[str, float]] = []
    floor: list[dict[str, float]] = []
    packaged: list[dict[str, float]] = []
    packaged_floor: list[dict[str, float]] = []
    packaged_requests: list[dict[str, float]] = []
    scratch = Path(tempfile.mkdtemp(prefix="asynccfn-bench-package-"))
    unpacked, zipped = _package(scratch)
    warmup = int(sizes.warmup)  # a first round compiles and caches
    for round_ in range(warmup + sizes.cold_repeats):
        sides = [
            ("asynccfn_create.py", ours, None),
            ("floor_create.py", floor, None),
            ("asynccfn_create.py", packaged, unpacked),
            # The floor from the same folder: the zip's own aiobotocore and aiohttp, compiled
            # as the zip compiles them, so that the ratio measures asynccfn and not the folder.
            ("floor_create.py", packaged_floor, unpacked),
            # ... sending asynccfn's own requests: the target's floor
            ("floor_requests_create.py", packaged_requests, unpacked),
        ]
        for script, laps, package in sides if round_ % 2 == 0 else sides[::-1]:
            lap = _cold_start(script, servers, env, package=package)
            if round_ >= warmup:
                laps.append(lap)
    outcome.compare(
        "fresh process serving one Create",
        [lap["total"] for lap in ours],
        [lap["total"] for lap in floor],
        unit="ms",
        scale=1e3,
        note=(
            "the installed package, both sides from site-packages (the packaged row below is "
            "the target's: it is what Lambda runs); "
            f"asynccfn: import {median([lap['import'] for lap in ours]) * 1e3:.0f} ms, "
            f"lambda_entry {median([lap['build'] for lap in ours]) * 1e3:.0f} ms, "
            f"serve {median([lap['serve'] for lap in ours]) * 1e3:.0f} ms; "
            f"floor: import {median([lap['import'] for lap in floor]) * 1e3:.0f} ms, "
            f"serve {median([lap['serve'] for lap in floor]) * 1e3:.0f} ms"
        ),
    )
    outcome.compare(
        "fresh process serving one Create, from the packaged zip, vs the same requests",
        [lap["total"] for lap in packaged],
        [lap["total"] for lap in packaged_requests],
        unit="ms",
        scale=1e3,
        target=at_most(1.1),
        note=(
            "`asynccfn package` of the demo, unpacked, run with no site-packages as Lambda "
            f"runs it: import {median([lap['import'] for lap in packaged]) * 1e3:.0f} ms, "
            f"lambda_entry {median([lap['build'] for lap in packaged]) * 1e3:.0f} ms, "
            f"serve {median([lap['serve'] for lap in packaged]) * 1e3:.0f} ms; the floor from "
            "the same folder sends the DynamoDB requests asynccfn sent for a no-op Create "
            "(claim, outbox record, posted mark) and the PUT, in its order: import "
            f"{median([lap['import'] for lap in packaged_requests]) * 1e3:.0f} ms, serve "
            f"{median([lap['serve'] for lap in packaged_requests]) * 1e3:.0f} ms"
        ),
    )
    outcome.compare(
        "fresh process serving one Create, from the packaged zip, vs one PutItem and the PUT",
        [lap["total"] for lap in packaged],
        [lap["total"] for lap in packaged_floor],
        unit="ms",
        scale=1e3,
        note=(
            "the floor sends one PutItem and the PUT, not the two journal writes the outbox "
            "needs (DESIGN.md invariant 8): import "
            f"{median([lap['import'] for lap in packaged_floor]) * 1e3:.0f} ms, serve "
            f"{median([lap['serve'] for lap in packaged_floor]) * 1e3:.0f} ms"
        ),
    )
    outcome.add(
        Row(
            bench=NAME,
            metric="size of the packaged zip",
            value=zipped / 1e6,
            unit="MB",
            target=at_most(ZIP_BUDGET_MB),
            checked="value",
            note=f"unpacked {_folder_size(unpacked) / 1e6:.1f} MB (Lambda allows 250 MB)",
        )
    )
    outcome.compare(
        "CPU of the fresh process",
        [lap["cpu"] for lap in ours],
        [lap["cpu"] for lap in floor],
        unit="ms",
        scale=1e3,
        note="user + system; less sensitive to other load on the machine than the wall time",
    )
    outcome.samples["laps"] = {"asynccfn": ours, "floor": floor}
    loaded, loaded_floor = (median([lap["modules"] for lap in laps]) for laps in (ours, floor))
    outcome.add(
        Row(
            bench=NAME,
            metric="modules loaded by the cold start (after its Create)",
            value=loaded,
            unit="modules",
            floor=loaded_floor,
            ratio=loaded / loaded_floor if loaded_floor else None,
            checked="value",
            note=(
                f"{median([lap['modules_built'] for lap in ours]):.0f} once lambda_entry is "
                f"built, {median([lap['own_modules'] for lap in ours]):.0f} of them asynccfn's; "
                f"pynamodb loaded: {any(lap['pynamodb'] for lap in ours)}"
            ),
        )
    )

    own: list[float] = []
    total: list[float] = []
    modules: dict[str, list[float]] = {}
    for _ in range(sizes.importtime_repeats):
        times = _importtime(servers, env, unpacked)
        own.append(sum(us for name, (us, _) in times.items() if _is_own(name)) / 1e3)
        total.append(times["asynccfn"][1] / 1e3)
        for name, (us, _) in times.items():
            if _is_own(name):
                modules.setdefault(name, []).append(us / 1e3)
    heaviest = sorted(((min(v), k) for k, v in modules.items()), reverse=True)[:3]
    outcome.samples["own import ms"] = own
    outcome.samples["own module import ms (best)"] = {k: min(v) for k, v in modules.items()}
    # Importing is fixed work that other load on the machine can only slow down: the best of
    # the runs is the estimate of its cost (as timeit reports), the median is shown beside it.
    outcome.add(
        Row(
            bench=NAME,
            metric="import time of asynccfn's own modules (best run)",
            value=min(own),
            unit="ms",
            target=at_most(20),
            checked="value",
            note=(
                f"median of {len(own)} runs {median(own):.1f} ms; `import asynccfn` "
                f"{min(total):.0f} ms with its dependencies; heaviest: "
                + ", ".join(f"{name} {ms:.1f}" for ms, name in heaviest)
            ),
        )
    )
    shutil.rmtree(scratch, ignore_errors=True)
    return outcome


async def _recorded_create(servers: Servers) -> dict[str, Any]:
    """The DynamoDB requests asynccfn sends for the cold children's no-op Create, recorded
    in this process, with the operation's key and the response body, for the floor child
    that sends the same requests."""
    resource = asynccfn.Resource("Custom::Bench", update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="bench")

    handler = build_handler(resource, servers.table())
    try:
        recorder = await recorder_for(handler, keep=True)
        event = create_event(servers.response_url())
        await succeed(handler.runtime, event, "the recorded Create")
    finally:
        await handler.runtime.close()
    operations = [call.operation for call in recorder.calls]
    if operations != ["UpdateItem"] * 3:
        raise RuntimeError(f"unexpected calls for a no-op Create: {operations}")
    body = servers.response_body(event["ResponseURL"])
    if body is None:
        raise RuntimeError("the recorded Create posted no response")
    return {
        "key": op_key(event),
        "calls": [(call.operation, call.params) for call in recorder.calls],
        "body": body.decode(),
    }


def _cold_start(
    script: str, servers: Servers, env: dict[str, str], *, package: Path | None = None
) -> dict[str, float]:
    """One cold start of ``script``; with ``package`` (an unpacked ``asynccfn package`` zip),
    from that folder alone, as Lambda runs it: no site-packages, the folder on the path."""
    event = create_event(servers.response_url())
    child_env = {**env, "BENCH_EVENT": json.dumps(event)}
    command = [sys.executable, str(CHILDREN / script)]
    if package is not None:
        child_env["PYTHONPATH"] = str(package)
        command = [getattr(sys, "_base_executable", sys.executable), "-S", str(CHILDREN / script)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawned = time.time()
    done = subprocess.run(
        command,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = _bench_line(done.stdout)
    if report is None or not report["ok"]:
        raise RuntimeError(f"{script} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    if servers.response_body(event["ResponseURL"]) is None:
        raise RuntimeError(f"{script} posted no response")
    return {
        "total": report["done"] - spawned,
        # user + system CPU of the whole process, teardown included (it ends at once)
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "startup": report["started"] - spawned,
        "import": report["imported"] - report["started"],
        "build": report["built"] - report["imported"],
        "serve": report["done"] - report["built"],
        "modules": float(report.get("modules", 0)),
        "modules_built": float(report.get("modules_built", 0)),
        "own_modules": float(report.get("own_modules", 0)),
        "pynamodb": float(bool(report.get("pynamodb"))),
    }


ZIP_BUDGET_MB = 10.0  # the demo's zip with its bytecode; tests/deploy/test_package.py holds it too


def _package(scratch: Path) -> tuple[Path, int]:
    """``asynccfn package`` of the demo for this interpreter, unpacked: (folder, zip bytes)."""
    output = scratch / "provider.zip"
    built = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from asynccfn import cli; sys.exit(cli.main(sys.argv[1:]))",
            "package",
            "asynccfn.local.demo:demo",
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(
            f"asynccfn package failed:\n{built.stdout[-2000:]}{built.stderr[-2000:]}"
        )
    unpacked = scratch / "package"
    with zipfile.ZipFile(output) as archive:
        archive.extractall(unpacked)
    return unpacked, output.stat().st_size


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _bench_line(stdout: str) -> dict[str, Any] | None:
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            found: dict[str, Any] = json.loads(line[len("BENCH ") :])
            return found
    return None


def _importtime(servers: Servers, env: dict[str, str], package: Path) -> dict[str, tuple[int, int]]:
    """``python -X importtime`` of the asynccfn cold start from the unpacked ``package`` (its
    bytecode compiled, as Lambda runs it): module -> (self, cumulative) µs."""
    child_env = {
        **env,
        "BENCH_EVENT": json.dumps(create_event(servers.response_url())),
        "PYTHONPATH": str(package),
    }
    python = getattr(sys, "_base_executable", sys.executable)
    done = subprocess.run(
        [python, "-S", "-X", "importtime", str(CHILDREN / "asynccfn_create.py")],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    times: dict[str, tuple[int, int]] = {}
    for line in done.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            name = match.group(4)
            times.setdefault(name, (int(match.group(1)), int(match.group(2))))
    if "asynccfn" not in times:
        raise RuntimeError(f"no import times read:\n{done.stderr[-3000:]}")
    return times


def _is_own(module: str) -> bool:
    return module == "asynccfn" or module.startswith("asynccfn.")
