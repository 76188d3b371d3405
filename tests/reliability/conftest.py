"""The reliability suite's fixtures, its secrets scan, and its summary line.

Functions of ``functions/rel_app.py`` run in the local Lambda service under awslambdaric
against DynamoDB Local (directly, or through the fault proxy), and answer to the response
endpoint of ``_endpoint.py``, which records every PUT. After each test, every log line of
every function, the in-process ``asynccfn`` logs and pytest's captured output are searched
for the ResponseURLs, their signatures and the NoEcho values the test used.

At the end of the session one line says what was tried and what survived; with pytest-xdist
the workers' tallies are added up in the controller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from asynccfn._logging import JsonLinesFormatter
from asynccfn.journal.query import Journal, OperationDetail
from asynccfn.local import LOCAL_AWS_ENV
from asynccfn.local.lambda_service import FunctionConfig, LambdaServiceThread
from tests.reliability._endpoint import IssuedURL, ResponseEndpoint
from tests.reliability._tally import SECRETS
from tests.support import create_journal_table, event_for, event_op_id, noted_runs, times_ran

FUNCTIONS = Path(__file__).parent / "functions"
# One machine's clock: the deployed functions tolerate little skew, so a crashed holder's lease
# (3 s by default here) runs out soon after it stops renewing.
REL_LEASE_SKEW = 0.3
# Lambda retries a failed async event a minute or two later, after a crashed holder's lease
# has run out; these delays keep that order at the suite's scale (lease 3 s + skew).
LEASE_OUTLASTING_RETRIES = (3.5, 3.5)


# -- secrets in pytest's captured output ------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    texts = [content for _, content in report.sections]
    leaked = SECRETS.found_in(texts)
    if leaked and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = f"a secret appeared in captured output ({report.when}): {leaked}"
    return report


# -- in-process logs ----------------------------------------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLinesFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def asynccfn_logs() -> Iterator[list[str]]:
    """Every line the ``asynccfn`` loggers write in this process during the test (JSON)."""
    handler = _Lines()
    logger = logging.getLogger("asynccfn")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
    leaked = SECRETS.found_in(handler.lines)
    assert not leaked, f"a secret was logged in-process: {leaked}"


# -- the response endpoint --------------------------------------------------------------------


@pytest.fixture(scope="session")
def endpoint() -> Iterator[ResponseEndpoint]:
    with ResponseEndpoint() as server:
        yield server


class URLs:
    """Issues this test's response URLs; afterwards, each expecting an answer must have one."""

    def __init__(self, server: ResponseEndpoint) -> None:
        self.server = server
        self.issued: list[IssuedURL] = []

    @property
    def host(self) -> str:
        return self.server.host

    def issue(self, **options: Any) -> IssuedURL:
        url = self.server.issue(**options)
        self.issued.append(url)
        return url


@pytest.fixture
def urls(endpoint: ResponseEndpoint) -> Iterator[URLs]:
    issued = URLs(endpoint)
    yield issued
    keys = {u.key for u in issued.issued}
    lost = [key for key in endpoint.unanswered() if key in keys]
    assert not lost, f"{len(lost)} response(s) never arrived"


# -- functions in the local Lambda service ----------------------------------------------------


@dataclass
class Sent:
    event: dict[str, Any]
    url: IssuedURL

    @property
    def op_id(self) -> str:
        return event_op_id(self.event)

    def response(self, timeout: float = 40.0) -> dict[str, Any]:
        return self.url.single_response(timeout)


@dataclass
class Rel:
    """Functions of rel_app.py deployed to one local Lambda service, answering to ``urls``."""

    service: LambdaServiceThread
    urls: URLs
    run_dir: Path
    dynamodb: str
    journal_table: str
    functions: list[str] = field(default_factory=list)

    def deploy(
        self,
        name: str,
        *,
        timeout: float = 5.0,
        lease: float = 3.0,
        lease_skew: float = REL_LEASE_SKEW,
        dynamodb: str | None = None,
        environment: dict[str, str] | None = None,
        retry_delays: tuple[float, ...] = (0.3, 0.6),
        **config: Any,
    ) -> str:
        env = {
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb or self.dynamodb,
            "ASYNCCFN_ALLOWED_RESPONSE_HOSTS": self.urls.host,
            "ASYNCCFN_JOURNAL_TABLE": self.journal_table,
            "REL_RUN_DIR": str(self.run_dir),
            "REL_LEASE": str(lease),
            "REL_LEASE_SKEW": str(lease_skew),
            **(environment or {}),
        }
        self.service.add_function(
            FunctionConfig(
                name=name,
                handler="rel_app.handler",
                code_paths=[str(FUNCTIONS)],
                timeout=timeout,
                environment=env,
                retry_delays=retry_delays,
                **config,
            )
        )
        self.functions.append(name)
        return name

    def event(
        self,
        kind: str = "create",
        *,
        url: IssuedURL | None = None,
        overrides: dict[str, Any] | None = None,
        **properties: Any,
    ) -> Sent:
        url = url or self.urls.issue()
        event = {**event_for(kind, url.url, **properties), **(overrides or {})}
        return Sent(event=event, url=url)

    def send(self, function: str, kind: str = "create", **options: Any) -> Sent:
        sent = self.event(kind, **options)
        self.deliver(function, sent)
        return sent

    def deliver(self, function: str, sent: Sent | dict[str, Any]) -> None:
        event = sent.event if isinstance(sent, Sent) else sent
        self.service.invoke(function, event, invocation_type="Event")

    def warm(self, function: str) -> None:
        """Start a worker and its clients with one Delete, as a warm container has them."""
        sent = self.event("delete", Tag="warm-up")
        self.service.invoke(function, sent.event)
        assert sent.response()["Status"] == "SUCCESS"

    def runs(self) -> list[str]:
        return noted_runs(self.run_dir)

    def ran(self, what: str, tag: str = "op") -> int:
        """How many times a body of ``tag`` noted ``what``."""
        return times_ran(self.runs(), f"{tag} {what}")

    def logs(self) -> list[str]:
        return [line for f in self.functions for line in self.service.logs(f)]

    def records(self, function: str) -> list[Any]:
        return self.service.records(function)

    def wait_idle(self, timeout: float = 90.0) -> None:
        self.service.wait_idle(timeout=timeout)

    def reader(self) -> Journal:
        return Journal(self.journal_table, region="us-east-1", endpoint_url=self.dynamodb)

    def detail(self, sent: Sent) -> OperationDetail:
        return self.reader().get_operation(sent.op_id)


@pytest.fixture
def lambda_service() -> Iterator[LambdaServiceThread]:
    """The local Lambda service, its workers' output kept (not echoed: the scan reads it)."""
    with LambdaServiceThread(echo=False) as service:
        yield service


@pytest.fixture(scope="session")
def journal_table(dynamodb_endpoint: str) -> str:
    """One journal table per worker: every operation has its own key."""
    return create_journal_table(dynamodb_endpoint)


@pytest.fixture
def rel(
    urls: URLs,
    lambda_service: LambdaServiceThread,
    dynamodb_endpoint: str,
    journal_table: str,
    tmp_path: Path,
) -> Iterator[Rel]:
    deployed = Rel(
        service=lambda_service,
        urls=urls,
        run_dir=tmp_path,
        dynamodb=dynamodb_endpoint,
        journal_table=journal_table,
    )
    yield deployed
    try:
        lambda_service.wait_idle(timeout=90)
    finally:
        logs = deployed.logs()
        _write_debug(deployed, tmp_path / "debug.txt")
        leaked = SECRETS.found_in(logs)
        assert not leaked, f"a function logged a secret: {leaked}"


def _write_debug(deployed: Rel, path: Path) -> None:
    """What the functions printed and how each invocation ended (no payloads: they hold
    the ResponseURLs), for reading after a failure."""
    with path.open("w") as out:
        for function in deployed.functions:
            out.write(f"== {function}\n")
            for r in deployed.records(function):
                out.write(
                    f"{r.request_id[:8]} attempt {r.attempt} {r.started:.3f}-{r.ended:.3f} "
                    f"{r.outcome} {r.result} {r.error} pid {r.worker_pid} hops {r.hops}\n"
                )
            out.writelines(f"{line}\n" for line in deployed.service.logs(function))


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch, dynamodb_endpoint: str, urls: URLs) -> str:
    """Environment for an in-process handler: DynamoDB Local and the endpoint allowed."""
    for key, value in LOCAL_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", urls.host)
    return dynamodb_endpoint


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate`` is truthy; return its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
