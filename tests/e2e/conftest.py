"""End-to-end fixtures: functions deployed to the local Lambda service under awslambdaric,
a journal table in DynamoDB Local, and response URLs in moto's S3."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from asynccfn.local.lambda_service import FunctionConfig, LambdaServiceThread
from tests.support import Sent, create_journal_table, event_for

FUNCTIONS = Path(__file__).parent / "functions"


@dataclass
class Deployment:
    """Functions of tests/e2e/functions deployed to one local Lambda service."""

    service: LambdaServiceThread
    run_dir: Path
    dynamodb: str
    responses_host: str
    make_url: Callable[[], Any]
    journal: str | None = None
    functions: list[str] = field(default_factory=list)

    def deploy(
        self,
        name: str,
        handler: str,
        *,
        timeout: float = 3.0,
        durable: bool = True,
        environment: dict[str, str] | None = None,
        **config: Any,
    ) -> str:
        env = {
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb,
            "ASYNCCFN_ALLOWED_RESPONSE_HOSTS": self.responses_host,
            "E2E_RUN_DIR": str(self.run_dir),
            "ASYNCCFN_LOG_LEVEL": os.environ.get("ASYNCCFN_LOG_LEVEL", "INFO"),
            **(environment or {}),
        }
        if durable:
            if self.journal is None:
                self.journal = create_journal_table(self.dynamodb)
            env["ASYNCCFN_JOURNAL_TABLE"] = self.journal
        config.setdefault("retry_delays", (0.5, 1.0))
        self.service.add_function(
            FunctionConfig(
                name=name,
                handler=f"e2e_app.{handler}",
                code_paths=[str(FUNCTIONS)],
                timeout=timeout,
                environment=env,
                **config,
            )
        )
        self.functions.append(name)
        return name

    def send(
        self,
        function: str,
        kind: str = "create",
        *,
        overrides: dict[str, Any] | None = None,
        **properties: Any,
    ) -> Sent:
        """Send a fixture request with ``properties`` added, top-level fields ``overrides``."""
        url, read = self.make_url()
        event = {**event_for(kind, url, **properties), **(overrides or {})}
        self.service.invoke(function, event, invocation_type="Event")
        return Sent(event=event, read_body=read)

    def redeliver(self, function: str, sent: Sent) -> None:
        self.service.invoke(function, sent.event, invocation_type="Event")

    def runs(self) -> list[str]:
        path = self.run_dir / "runs.log"
        return path.read_text().splitlines() if path.exists() else []

    def ran(self, what: str) -> int:
        """How many times a body noted ``what``."""
        return sum(1 for line in self.runs() if line.rsplit(" ", 2)[0] == what)

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
        query = urlsplit(url).query
        signature = [
            p for p in query.split("&") if p.lower().startswith(("signature", "x-amz-signature"))
        ]
        for part in signature:
            assert part.split("=", 1)[1] not in logs, "a ResponseURL's signature was logged"
