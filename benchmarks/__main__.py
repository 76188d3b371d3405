"""``python -m benchmarks``: run the benchmarks, print the table, write the results.

::

    python -m benchmarks                      # all seven, full size (a few minutes)
    python -m benchmarks --only replay        # some of them
    python -m benchmarks --smoke              # tiny sizes: checks the harness, not asynccfn
    python -m benchmarks --update-readme      # also rewrite benchmarks/RESULTS.md (README links it)
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks._harness import Sizes
from benchmarks._report import (
    BENCHMARKS,
    RESULTS,
    Report,
    load_average,
    machine,
    update_readme,
)
from benchmarks._servers import start_servers
from benchmarks._sides import log_like_lambda


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME", help="run only these"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--no-write", action="store_true", help="do not write results/")
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="rewrite benchmarks/RESULTS.md and README.md's Performance section linking it",
    )
    args = parser.parse_args(argv)
    sizes = Sizes.smoke() if args.smoke else Sizes.full()
    names = args.only or list(BENCHMARKS)
    started = time.time()
    report = Report(machine=machine(), sizes=sizes, started=started)
    log_like_lambda()
    with ExitStack() as stack:
        print("starting DynamoDB Local and moto's server ...", file=sys.stderr, flush=True)
        servers = start_servers(stack)
        for name in names:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            begun = time.perf_counter()
            outcome = BENCHMARKS[name](servers, sizes)
            outcome.seconds = time.perf_counter() - begun
            report.outcomes.append(outcome)
            print(report.text_table(only=outcome), flush=True)
    report.seconds = time.time() - started
    report.machine["load_average_at_end"] = load_average()
    print()
    print(report.text_table())
    print(f"\n{report.summary()}")
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "latest.json").write_text(report.to_json())
        (RESULTS / "latest.md").write_text(report.markdown())
        print(f"wrote {_shown(RESULTS / 'latest.json')} and {_shown(RESULTS / 'latest.md')}")
    if args.update_readme:
        update_readme(report)
        print("rewrote benchmarks/RESULTS.md and README.md's Performance section")
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
