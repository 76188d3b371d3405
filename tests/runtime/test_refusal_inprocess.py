"""Issue 18 in-process, as inside Lambda (``_entry.inside_lambda`` true): a function with a
resource missing an answer refuses every request of every resource it serves, its Reason cut
to the response's budget; responses go to moto's S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import asynccfn
from asynccfn import _entry
from asynccfn._response import MAX_BODY_BYTES, TRUNCATION_MARKER
from tests.support import FakeLambdaContext, answering_resource, closing_handler, event_for


@pytest.fixture
def inside_lambda(monkeypatch: pytest.MonkeyPatch, response_hosts: None) -> None:
    monkeypatch.setattr(_entry, "inside_lambda", lambda: True)  # as Lambda sets it up


def _send(
    handler: Any, url: Any, kind: str, resource_type: str, **overrides: Any
) -> dict[str, Any]:
    event = {**event_for(kind, url.url), "ResourceType": resource_type, **overrides}
    handler(event, FakeLambdaContext())
    body = url.read_body()
    assert body is not None and len(body) <= MAX_BODY_BYTES
    return json.loads(body)  # type: ignore[no-any-return]


def test_inside_lambda_a_provider_with_one_resource_missing_handlers_refuses_them_all(
    inside_lambda: None, presigned_response_url: Callable[[], Any]
) -> None:
    ready = answering_resource("Custom::Ready")
    broken = asynccfn.Resource("Custom::Broken")
    handler = asynccfn.lambda_entry([ready, broken])
    with closing_handler(handler):
        answered = _send(handler, presigned_response_url(), "create", "Custom::Ready")
        assert answered["Status"] == "FAILED"
        assert answered["Reason"].startswith("this function refuses every request")
        assert all(sentence in answered["Reason"] for sentence in broken.unanswered())
        marker = answered["PhysicalResourceId"]
        assert marker.startswith("asynccfn-failed-create:")
        rollback = _send(
            handler,
            presigned_response_url(),
            "delete",
            "Custom::Ready",
            PhysicalResourceId=marker,
        )
        assert rollback["Status"] == "SUCCESS" and rollback["PhysicalResourceId"] == marker
        # a Delete of what an earlier, working version made (not the marker) is refused
        other = _send(handler, presigned_response_url(), "delete", "Custom::Ready")
        assert other["Status"] == "FAILED" and other["Reason"] == answered["Reason"]


def test_inside_lambda_a_refusal_too_long_for_a_response_is_cut_to_fit(
    inside_lambda: None, presigned_response_url: Callable[[], Any]
) -> None:
    many = [asynccfn.Resource(f"Custom::Broken{n}") for n in range(20)]
    handler = asynccfn.lambda_entry(many)
    with closing_handler(handler):
        answered = _send(handler, presigned_response_url(), "update", "Custom::Broken3")
    assert answered["Status"] == "FAILED"
    assert answered["Reason"].startswith("this function refuses every request")
    assert answered["Reason"].endswith(TRUNCATION_MARKER)
    assert answered["PhysicalResourceId"] == "demo-bucket"
