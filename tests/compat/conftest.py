"""Fixtures of the cfn-lambda-handler layer's tests: its functions (tests/compat/functions)
deployed to the local Lambda service, a journal in DynamoDB Local, responses in moto's S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from asynccfn.local.lambda_service import FunctionConfig, LambdaServiceThread
from tests.support import Sent, create_journal_table, event_for

FUNCTIONS = Path(__file__).parent / "functions"


@dataclass
class Functions:
    """cfn-lambda-handler functions deployed to one local Lambda service."""

    service: LambdaServiceThread
    run_dir: Path
    dynamodb: str
    responses_host: str
    make_url: Callable[[], Any]
    journal: str | None = None
    names: list[str] = field(default_factory=list)

    def deploy(
        self,
        name: str,
        handler: str,
        *,
        timeout: float = 3.0,
        durable: bool = True,
        environment: dict[str, str] | None = None,
    ) -> str:
        """Deploy ``handler`` (``module.object`` of tests/compat/functions) as ``name``."""
        env = {
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb,
            "ASYNCCFN_ALLOWED_RESPONSE_HOSTS": self.responses_host,
            "COMPAT_RUN_DIR": str(self.run_dir),
            **(environment or {}),
        }
        if durable:
            if self.journal is None:
                self.journal = create_journal_table(self.dynamodb)
            env["ASYNCCFN_JOURNAL_TABLE"] = self.journal
        self.service.add_function(
            FunctionConfig(
                name=name,
                handler=handler,
                code_paths=[str(FUNCTIONS)],
                timeout=timeout,
                environment=env,
                retry_delays=(0.5, 1.0),
            )
        )
        self.names.append(name)
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

    def noted(self, log: str) -> list[dict[str, Any]]:
        """The JSON lines the functions wrote to ``log`` in the run directory."""
        path = self.run_dir / log
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def logs(self, function: str) -> str:
        return "\n".join(self.service.logs(function))

    def outcomes(self, function: str) -> list[Any]:
        """What each invocation of ``function`` returned (the runtime's outcome)."""
        return [
            r.result.get("outcome") if isinstance(r.result, dict) else r.outcome
            for r in self.service.records(function)
        ]


@pytest.fixture
def functions(
    lambda_service: LambdaServiceThread,
    dynamodb_endpoint: str,
    moto_endpoint: str,
    presigned_response_url: Callable[[], Any],
    tmp_path: Path,
) -> Functions:
    """Deploy with ``functions.deploy(...)``; send requests with ``functions.send(...)``."""
    return Functions(
        service=lambda_service,
        run_dir=tmp_path,
        dynamodb=dynamodb_endpoint,
        responses_host=urlsplit(moto_endpoint).netloc,
        make_url=presigned_response_url,
    )
