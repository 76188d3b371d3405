"""The benchmark harness at a very small size, so that it cannot rot: every benchmark runs end
to end against the suite's local servers and reports its rows. The numbers mean nothing here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from asynccfn.local.lambda_service import LambdaServiceThread
from benchmarks._harness import Sizes
from benchmarks._report import BENCHMARKS, Report, machine, update_readme
from benchmarks._servers import Servers


@pytest.fixture
def servers(
    dynamodb_endpoint: str,
    moto_endpoint: str,
    lambda_service: LambdaServiceThread,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Servers]:
    found = Servers(dynamodb=dynamodb_endpoint, s3=moto_endpoint, lambdas=lambda_service)
    for name, value in found.environment.items():
        monkeypatch.setenv(name, value)
    yield found
    found.close()


@pytest.mark.timeout(60)
def test_every_benchmark_runs_and_reports(servers: Servers, tmp_path: Path) -> None:
    report = Report(machine=machine(), sizes=Sizes.smoke(), started=0.0)
    for name, run in BENCHMARKS.items():
        outcome = run(servers, Sizes.smoke())
        assert outcome.rows, name
        report.outcomes.append(outcome)
    counted = {row.metric: row for row in report.rows() if row.bench == "4 round-trips"}
    assert counted["no-op Create"].passed, counted  # counted, not timed: holds at any size
    assert "| benchmark |" in report.markdown()
    assert json.loads(report.to_json())["benchmarks"][0]["rows"]
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Performance\n\nstale numbers\n\n## Other\n\nkept\n")
    results = tmp_path / "benchmarks" / "RESULTS.md"
    results.parent.mkdir()
    update_readme(report, readme, results)
    text = readme.read_text()
    assert "stale numbers" not in text and "## Other\n\nkept" in text
    assert "| benchmark |" not in text  # the table is on its own page, which README links
    assert "[benchmarks/RESULTS.md](benchmarks/RESULTS.md)" in text
    assert "| benchmark |" in results.read_text()


def test_the_results_are_written_where_the_readme_links_them() -> None:
    """The run's files go to benchmarks/results/, the page README links is
    benchmarks/RESULTS.md (one name held both, and a full run could not write either)."""
    import inspect

    from benchmarks import _report

    assert _report.RESULTS.name == "results" and _report.RESULTS_PAGE.name == "RESULTS.md"
    page = inspect.signature(update_readme).parameters["results"].default
    assert page == _report.RESULTS_PAGE and page.parent == _report.RESULTS.parent
