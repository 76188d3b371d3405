"""End-to-end fixtures: functions deployed to the local Lambda service under awslambdaric,
a journal table in DynamoDB Local, and response URLs in moto's S3."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from asynccfn.local.lambda_service import LambdaServiceThread
from tests.support import LocalFunctions, Sent, noted_runs, times_ran, url_signatures

FUNCTIONS = Path(__file__).parent / "functions"


class Deployment(LocalFunctions):
    """Functions of tests/e2e/functions deployed to one local Lambda service."""

    code_path = FUNCTIONS
    run_dir_variable = "E2E_RUN_DIR"
    handler_prefix = "e2e_app."

    def environment(self) -> dict[str, str]:
        log_level = os.environ.get("ASYNCCFN_LOG_LEVEL", "INFO")
        return {**super().environment(), "ASYNCCFN_LOG_LEVEL": log_level}

    def redeliver(self, function: str, sent: Sent) -> None:
        self.service.invoke(function, sent.event, invocation_type="Event")

    def runs(self) -> list[str]:
        return noted_runs(self.run_dir)

    def ran(self, what: str) -> int:
        """How many times a body noted ``what``."""
        return times_ran(self.runs(), what)

    def logs(self) -> str:
        return "\n".join(line for f in self.functions for line in self.service.logs(f))

    def records(self, function: str) -> list[Any]:
        return self.service.records(function)


@pytest.fixture
def deployment(
    lambda_service: LambdaServiceThread,
    dynamodb_endpoint: str,
    moto_endpoint: str,
    presigned_response_url: Callable[[], Any],
    tmp_path: Path,
) -> Iterator[Deployment]:
    """Deploy functions with ``deployment.deploy(...)``; send requests with ``send``.

    Afterwards, no log line of any function may contain a ResponseURL or its signature.
    """
    deployed = Deployment(
        service=lambda_service,
        run_dir=tmp_path,
        dynamodb=dynamodb_endpoint,
        responses_host=urlsplit(moto_endpoint).netloc,
        make_url=presigned_response_url,
    )
    urls: list[str] = []
    original = deployed.make_url

    def remembering() -> Any:
        made = original()
        urls.append(made.url)
        return made

    deployed.make_url = remembering
    yield deployed
    lambda_service.wait_idle(timeout=60)
    logs = deployed.logs()
    for url in urls:
        assert url not in logs, "a ResponseURL was logged"
        for signature in url_signatures(url):
            assert signature not in logs, "a ResponseURL's signature was logged"
