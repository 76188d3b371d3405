"""Issue 18 end to end: inside Lambda (an awslambdaric worker of the local Lambda service), a
function whose resource lacks an answer for a request type initialises and refuses, answering
every request FAILED with the reason, except the Delete that rolls back a refused Create."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from asynccfn.local.lambda_service import LambdaServiceThread
from tests.e2e.conftest import FUNCTIONS, Deployment

_SOURCE = (FUNCTIONS / "refused_app.py").read_text(encoding="utf-8").splitlines()
# where the worker (run from the function's code path) says the resource is defined
DEFINED_AT = "refused_app.py:" + str(
    next(n for n, line in enumerate(_SOURCE, 1) if "asynccfn.Resource(" in line)
)


class Refused(Deployment):
    handler_prefix = "refused_app."


@pytest.fixture
def refused(
    lambda_service: LambdaServiceThread,
    dynamodb_endpoint: str,
    moto_endpoint: str,
    presigned_response_url: Callable[[], Any],
    tmp_path: Path,
) -> tuple[Refused, str]:
    deployment = Refused(
        service=lambda_service,
        run_dir=tmp_path,
        dynamodb=dynamodb_endpoint,
        responses_host=urlsplit(moto_endpoint).netloc,
        make_url=presigned_response_url,
    )
    return deployment, deployment.deploy("refused", "handler")


def _is_refusal(reason: str) -> bool:
    return (
        reason.startswith("this function refuses every request")
        and "has no Update handler" in reason
        and "has no Delete handler" in reason
        and "has no Create handler" not in reason
    )


def test_inside_lambda_a_resource_missing_handlers_is_refused_with_failed_not_silence(
    refused: tuple[Refused, str],
) -> None:
    deployment, fn = refused
    create = deployment.send(fn, "create", BucketName="never-made").response()
    update = deployment.send(fn, "update").response()
    assert create["Status"] == "FAILED" and update["Status"] == "FAILED"
    assert _is_refusal(create["Reason"]), create["Reason"]
    assert f"{DEFINED_AT} has no Update handler" in create["Reason"]
    assert f"{DEFINED_AT} has no Delete handler" in create["Reason"]
    assert create["Reason"] == update["Reason"]
    assert update["PhysicalResourceId"] == "demo-bucket"  # the request's, as for any failure
    deployment.service.wait_idle()
    # answered from inside the invocation: no crash, no init error, no Lambda retry
    assert [r.outcome for r in deployment.records(fn)] == ["success", "success"]
    logs = [json.loads(line) for line in deployment.logs().splitlines() if line.startswith("{")]
    at_init = [
        line
        for line in logs
        if line.get("level") == "ERROR"
        and "cfnRequestId" not in line
        and _is_refusal(line["message"])
    ]
    assert at_init, logs  # said once at init, naming where the resource is defined
    assert all(DEFINED_AT in line["message"] for line in at_init)


def test_inside_lambda_the_rollback_delete_of_a_refused_create_succeeds_and_another_fails(
    refused: tuple[Refused, str],
) -> None:
    deployment, fn = refused
    create = deployment.send(fn, "create").response()
    marker = create["PhysicalResourceId"]
    assert create["Status"] == "FAILED"
    assert marker.startswith("asynccfn-failed-create:")
    rollback = deployment.send(fn, "delete", overrides={"PhysicalResourceId": marker}).response()
    assert rollback["Status"] == "SUCCESS"
    assert rollback["PhysicalResourceId"] == marker
    other = deployment.send(fn, "delete").response()  # a resource an earlier version made
    assert other["Status"] == "FAILED"
    assert _is_refusal(other["Reason"]), other["Reason"]
    assert other["PhysicalResourceId"] == "demo-bucket"
