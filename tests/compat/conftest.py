"""Fixtures of the cfn-lambda-handler layer's tests: its functions (tests/compat/functions)
deployed to the local Lambda service, a journal in DynamoDB Local, responses in moto's S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from asynccfn.local.lambda_service import LambdaServiceThread
from tests.support import LocalFunctions

FUNCTIONS = Path(__file__).parent / "functions"


class Functions(LocalFunctions):
    """cfn-lambda-handler functions deployed to one local Lambda service."""

    code_path = FUNCTIONS
    run_dir_variable = "COMPAT_RUN_DIR"

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
