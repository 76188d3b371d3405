"""What an invocation answers for a handler's result or failure, and Lambda's give-up record."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import asynccfn
from asynccfn._outcomes import (
    failed_response,
    failure_reason,
    gave_up_reason,
    lambda_failure_record,
    success_response,
)
from asynccfn._protocol import Request, Status, parse_request
from tests.support import event_for

URL = "https://responses.example/key?X-Amz-Expires=7200"


def request(kind: str = "create") -> Request:
    return parse_request(event_for(kind, URL), allowed_hosts=frozenset({"responses.example"}))


def ctx(physical_id: str | None = None) -> Any:
    return SimpleNamespace(physical_id=physical_id)


def test_lambda_failure_records_are_told_from_requests() -> None:
    record = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": {}}
    assert lambda_failure_record(record) is record
    assert lambda_failure_record({"requestContext": {}, "requestPayload": {}}) is None
    assert lambda_failure_record(event_for("create", URL)) is None
    assert lambda_failure_record(["not", "a", "mapping"]) is None


def test_a_record_of_a_failed_record_is_unwrapped_to_the_event_it_gave_up_on() -> None:
    event = event_for("create", URL)
    first = {
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responsePayload": {"errorType": "Sandbox.Timedout", "errorMessage": "timed out"},
    }
    # The invocations on that record failed in turn (the lease outlived their retries).
    second = {
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": first,
        "responsePayload": {"errorType": "OperationBusy", "errorMessage": "live lease"},
    }
    third = {**second, "requestPayload": second}
    for outer in (first, second, third):
        assert lambda_failure_record(outer) is first
    assert "the last one failed with Sandbox.Timedout" in gave_up_reason(first)
    nested: dict[str, Any] = event
    for _ in range(9):  # deeper than Lambda makes: the outer records are not followed down
        nested = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": nested}
    found = lambda_failure_record(nested)
    assert found is not None and found["requestPayload"] is not event


@pytest.mark.parametrize(
    ("count", "error", "says"),
    [
        (0, None, "Lambda gave up on the operation (EventAgeExceeded) before any attempt ran"),
        (1, None, "after 1 attempt"),
        (
            3,
            {"errorType": "Boom", "errorMessage": "x"},
            "after 3 attempts; the last one failed with Boom: x",
        ),
        (True, None, "(EventAgeExceeded)"),
    ],
)
def test_the_give_up_reason_says_what_lambda_reported(count: Any, error: Any, says: str) -> None:
    record = {
        "requestContext": {"condition": "EventAgeExceeded", "approximateInvokeCount": count},
        "requestPayload": {},
        "responsePayload": error,
    }
    assert says in gave_up_reason(record)


def test_failure_reasons_name_the_error_and_the_log_stream() -> None:
    lambda_context = SimpleNamespace(log_stream_name="2026/[$LATEST]abc")
    assert failure_reason(asynccfn.Failed("expected"), lambda_context) == "expected"
    assert failure_reason(KeyError("k"), lambda_context) == (
        "KeyError: 'k' (see CloudWatch log stream 2026/[$LATEST]abc)"
    )
    assert failure_reason(ValueError("v"), object()) == "ValueError: v"


def test_a_failed_create_reports_the_handlers_physical_id_or_the_marker() -> None:
    req = request("create")
    assert failed_response(req, "bucket-1", "r").physical_id == "bucket-1"
    marker = failed_response(req, None, "r")
    assert marker.status is Status.FAILED and marker.physical_id != "bucket-1"
    update = request("update")
    assert failed_response(update, "other", "r").physical_id == update.physical_id


def test_success_falls_back_to_the_ids_it_knows_and_refuses_other_results() -> None:
    req = request("create")
    assert success_response(req, ctx(), None).physical_id == f"{req.logical_id}-{req.request_id}"
    assert success_response(req, ctx("set"), asynccfn.Success()).physical_id == "set"
    given = success_response(req, ctx("set"), asynccfn.Success(physical_id="p", data={"A": 1}))
    assert (given.status, given.physical_id, given.data) == (Status.SUCCESS, "p", {"A": 1})
    wrong = success_response(req, ctx(), {"not": "a Success"})
    assert wrong.status is Status.FAILED and "returned dict" in (wrong.reason or "")
