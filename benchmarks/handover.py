"""6. Hand-over latency: from the end of the deadline scope in one invocation to the first line
of user code in its successor, through the local Lambda service (real worker processes under
awslambdaric; the successor is invoked with InvocationType=Event over HTTP).

Each measured operation is a chain of durable sleeps, each longer than an invocation's work
time, so every invocation hands over: the predecessor records its hand-over token and invokes
itself; the service queues the event and gives it to an idle worker; the successor claims the
operation, loads the journal and calls the handler. Workers are started and used once before
(warm containers with their clients made). There is no floor: the figure is reported as is,
split at the moment the service received the successor's Invoke.
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks._harness import Outcome, Row, Sizes, median, percentile
from benchmarks._servers import Servers
from benchmarks._sides import create_event

NAME = "6 hand-over"
FUNCTIONS = Path(__file__).resolve().parent / "functions"
TIMEOUT = 4.0  # seconds per invocation: 2.8 s of work, 1.2 s of reserve
NAP = 3.0  # seconds per durable sleep: longer than the work time, so one hand-over each


def run(servers: Servers, sizes: Sizes) -> Outcome:
    from asynccfn.local.lambda_service import FunctionConfig

    outcome = Outcome(name=NAME)
    lambdas = servers.lambda_service()
    with tempfile.TemporaryDirectory(prefix="asynccfn-bench-marks-") as scratch:
        marks_dir = Path(scratch)
        name = f"chain{int(time.time() * 1000) % 10**8}"
        workers = 2 * sizes.handover_chains
        lambdas.add_function(
            FunctionConfig(
                name=name,
                handler="bench_app.handler",
                code_paths=[str(FUNCTIONS)],
                timeout=TIMEOUT,
                environment={
                    "AWS_ENDPOINT_URL_DYNAMODB": servers.dynamodb,
                    "ASYNCCFN_ALLOWED_RESPONSE_HOSTS": urlsplit(servers.s3).netloc,
                    "ASYNCCFN_JOURNAL_TABLE": servers.table(),
                    "BENCH_MARKS": str(marks_dir),
                },
                max_retries=0,
                recursive_loop="Allow",
                concurrency=workers,
            )
        )
        # Warm containers: every worker started, its clients made, before the chains.
        if sizes.warmup:
            for _ in range(workers):
                warm = create_event(servers.response_url(), Hold=0.5)
                lambdas.invoke(name, warm, invocation_type="Event")
            lambdas.wait_idle(timeout=60)
        chains = [
            create_event(servers.response_url(), Hops=sizes.handover_hops, Seconds=NAP)
            for _ in range(sizes.handover_chains)
        ]
        for event in chains:
            lambdas.invoke(name, event, invocation_type="Event")
        lambdas.wait_idle(timeout=60 + sizes.handover_hops * 5)
        for event in chains:
            if servers.response_body(event["ResponseURL"]) is None:
                outcomes = [(r.outcome, r.result, r.error) for r in lambdas.records(name)]
                logs = "\n".join(lambdas.logs(name)[-40:])
                raise RuntimeError(f"a chain posted no response: {outcomes}\n{logs}")

        lines = (marks_dir / "marks.log").read_text().splitlines()
    marks: dict[tuple[str, str, int], float] = {}
    for line in lines:
        request_id, what, invocation, at = line.split()
        marks.setdefault((request_id, what, int(invocation)), float(at))
    received: dict[str, list[float]] = defaultdict(list)
    for record in lambdas.records(name):
        payload = record.payload if isinstance(record.payload, dict) else {}
        if "AsyncCfnHandOver" in payload:
            received[payload.get("RequestId", "")].append(record.started)
    total: list[float] = []
    to_invoke: list[float] = []
    to_code: list[float] = []
    for event in chains:
        rid = event["RequestId"]
        arrivals = sorted(received[rid])
        ends = sorted((k[2], at) for k, at in marks.items() if k[0] == rid and k[1] == "end")
        for n, (invocation, ended) in enumerate(ends):
            started = marks.get((rid, "start", invocation + 1))
            if started is None:
                continue
            total.append(started - ended)
            if n < len(arrivals):
                to_invoke.append(arrivals[n] - ended)
                to_code.append(started - arrivals[n])
    if not total:
        raise RuntimeError("no hand-over was measured")
    outcome.samples["latency s"] = total
    note = (
        f"{len(total)} hand-overs; median split: {median(to_invoke) * 1e3:.0f} ms to the "
        f"service's receipt of the Invoke (token recorded, Invoke sent), "
        f"{median(to_code) * 1e3:.0f} ms from there to user code (queue, worker, claim, "
        "journal load)"
    )
    for metric, value, extra in (
        ("median", median(total), note),
        ("p99", percentile(total, 99), f"nearest rank of {len(total)}"),
    ):
        outcome.add(
            Row(
                bench=NAME,
                metric=f"hand-over latency, {metric}",
                value=value * 1e3,
                unit="ms",
                note=extra,
            )
        )
    return outcome
