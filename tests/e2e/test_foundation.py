"""Issue 2's behaviour end to end: awslambdaric workers, real deadlines, responses read back
from pre-signed S3 URLs. Functions here run without a journal unless the test says so."""

from __future__ import annotations

import json

from tests.e2e.conftest import Deployment


def test_each_request_type_is_routed_and_answered(deployment: Deployment) -> None:
    fn = deployment.deploy("basic", "basic_handler", durable=False)
    create = deployment.send(fn, "create", BucketName="demo-bucket")
    update = deployment.send(fn, "update")
    delete = deployment.send(fn, "delete")
    created, updated, deleted = create.response(), update.response(), delete.response()
    assert created["Status"] == "SUCCESS"
    assert created["PhysicalResourceId"] == "demo-bucket"
    assert created["Data"] == {"Arn": "arn:aws:s3:::demo-bucket"}
    assert created["RequestId"] == create.event["RequestId"]
    assert created["LogicalResourceId"] == "DemoBucket"
    assert created["StackId"] == create.event["StackId"]
    assert updated["Status"] == "SUCCESS"
    assert updated["PhysicalResourceId"] == "demo-bucket"  # kept from the request
    assert updated["Data"] == {"Old": "{'Enabled': 'true'}", "New": "{'Enabled': 'false'}"}
    assert deleted["Status"] == "SUCCESS"
    assert deployment.ran("create") == 1 and deployment.ran("update") == 1
    assert deployment.ran("delete demo-bucket") == 1


def test_exception_answers_failed_with_type_message_and_log_stream(
    deployment: Deployment,
) -> None:
    fn = deployment.deploy("basic", "basic_handler", durable=False)
    response = deployment.send(fn, Fail="the bucket name is taken").response()
    assert response["Status"] == "FAILED"
    assert response["Reason"].startswith("ValueError: the bucket name is taken")
    assert "log stream" in response["Reason"] and "[$LATEST]" in response["Reason"]
    deployment.service.wait_idle()
    assert [r.outcome for r in deployment.records(fn)] == ["success"]  # returned normally


def test_deadline_answers_failed_before_lambda_does_and_cancels_the_handler(
    deployment: Deployment,
) -> None:
    fn = deployment.deploy("basic", "basic_handler", durable=False, timeout=2.0)
    sent = deployment.send(fn, Hang=True)
    response = sent.response()
    assert response["Status"] == "FAILED"
    assert "ran out of time" in response["Reason"]
    deployment.service.wait_idle()
    (record,) = deployment.records(fn)
    assert record.outcome == "success"  # answered inside the invocation, not killed at it
    assert deployment.ran("cancelled") == 1


def test_oversize_data_answers_failed_within_4096_bytes(deployment: Deployment) -> None:
    fn = deployment.deploy("basic", "basic_handler", durable=False)
    response = deployment.send(fn, DataBytes=5000).response()
    assert response["Status"] == "FAILED"
    assert "Data" in response["Reason"] and "4096" in response["Reason"]


def test_failed_create_reports_ctx_physical_id(deployment: Deployment) -> None:
    fn = deployment.deploy("basic", "basic_handler", durable=False)
    response = deployment.send(fn, PhysicalId="half-built", Fail="boom").response()
    assert response["Status"] == "FAILED"
    assert response["PhysicalResourceId"] == "half-built"


def test_delete_after_failed_create_succeeds_without_user_code(deployment: Deployment) -> None:
    fn = deployment.deploy("basic", "basic_handler", durable=False)
    failed = deployment.send(fn, Fail="boom").response()
    marker = failed["PhysicalResourceId"]
    assert marker.startswith("asynccfn-failed-create:")
    # the rollback's Delete carries the physical id the failed Create reported
    rollback = deployment.send(fn, "delete", overrides={"PhysicalResourceId": marker})
    response = rollback.response()
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == marker
    assert deployment.ran(f"delete {marker}") == 0


def test_malformed_events_answer_failed_where_deliverable(deployment: Deployment) -> None:
    fn = deployment.deploy("basic", "basic_handler", durable=False)
    url, read = deployment.make_url()
    sent = deployment.send(fn)  # a valid one, to borrow its identifiers
    sent.response()
    bad = {**sent.event, "ResponseURL": url, "RequestType": "Replace"}
    deployment.service.invoke(fn, bad, invocation_type="RequestResponse")
    body = json.loads(read() or b"{}")
    assert body["Status"] == "FAILED" and "RequestType" in body["Reason"]
    assert body["RequestId"] == sent.event["RequestId"]

    for broken in (
        {"RequestType": "Create"},  # nothing to echo, no URL
        {**sent.event, "ResponseURL": "ftp://example.com/x"},
        {**sent.event, "ResponseURL": "https://169.254.169.254/latest"},
        [1, 2, 3],
    ):
        result = deployment.service.invoke(fn, broken, invocation_type="RequestResponse")
        assert result.function_error is None, result
    deployment.service.wait_idle()
    assert all(r.outcome == "success" for r in deployment.records(fn))
    logs = deployment.logs()
    assert "malformed request" in logs and "RequestType" in logs
