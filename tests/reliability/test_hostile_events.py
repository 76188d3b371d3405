"""Area 5: hostile and malformed events (see _hostile.py), in volume in-process and a handful
through the local Lambda service.

For each: no exception out of the Lambda handler, no hang; a response to the event's URL when
it can be answered (exactly one, FAILED when the event is malformed, never to a decoy URL),
otherwise nothing posted and one clear log line.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asynccfn
from asynccfn._entry import LambdaHandler
from asynccfn.local import Outcome
from tests.reliability._endpoint import IssuedURL
from tests.reliability._hostile import Case, hostile_events, nested, with_decoys
from tests.reliability._tally import count
from tests.reliability.conftest import Rel, URLs
from tests.support import FakeLambdaContext, closing_handler, event_for

resource = asynccfn.Resource()


@resource.create
@resource.update
@resource.delete
async def answer(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    props = request.properties
    data: Any = props["Data"] if "Data" in props else {"Ok": "1"}
    if "NoEchoSecret" in props:
        return asynccfn.Success(data={"Secret": props["NoEchoSecret"]}, no_echo=True)
    return asynccfn.Success(data=data)


def url_key_identifiers(url: IssuedURL) -> dict[str, str]:
    """The identifiers a response endpoint URL's object key names (``StackId|Logical|Request``
    after the bucket), decoded as CloudFormation encodes them."""
    key = unquote(urlsplit(url.url).path).split("/", 2)[2]
    stack_id, logical_id, request_id = key.split("|")
    return {"StackId": stack_id, "LogicalResourceId": logical_id, "RequestId": request_id}


def check(case: Case, handler: LambdaHandler, logs: list[str]) -> None:
    """Drive one case through the handler and hold the runtime to what the case requires."""
    count(bad_events=1)
    seen = len(logs)
    started = time.monotonic()
    result = handler(case.event, FakeLambdaContext(10))  # raising fails the test
    assert time.monotonic() - started < 12, "the handler hung"
    assert isinstance(result, dict) and isinstance(result.get("outcome"), str)
    errors = [json.loads(line) for line in logs[seen:]]
    errors = [e for e in errors if e["level"] in ("ERROR", "CRITICAL")]
    for decoy in case.decoys:
        assert decoy.puts() == [], "a decoy key's URL was answered"
    if case.deliverable:
        assert case.url is not None
        count(responses_expected=1)
        stored = case.url.stored()
        if not stored:
            case.url.endpoint.mark_lost(case.url.key)
        assert len(stored) == 1, (case.malformed, result, stored)
        body = json.loads(stored[0])
        assert len(stored[0]) <= 4096
        from_key = url_key_identifiers(case.url)
        for name in ("StackId", "RequestId", "LogicalResourceId"):
            if case.identifiers_valid:
                assert body[name] == case.request[name]
            else:  # each valid one as given, the others from the URL's object key
                assert body[name] in (case.request.get(name), from_key[name]), (name, body)
        assert body["PhysicalResourceId"]
        if case.malformed or case.gave_up:
            assert body["Status"] == "FAILED", (case.malformed, body)
            assert body["Reason"]
        if case.gave_up and not case.malformed:
            assert body["Reason"].startswith("Lambda gave up on the operation"), body
        return
    if case.url is not None:
        assert case.url.puts() == [], "an event that is not an object was answered"
    assert len(errors) == 1, (case.malformed, errors)
    message = errors[0]["message"]
    assert message.startswith("malformed request"), message
    assert len(message) < 2000


@pytest.mark.timeout(240)
def test_hostile_events_in_process(
    local_env: str, journal_table: str, urls: URLs, asynccfn_logs: list[str]
) -> None:
    handler = asynccfn.lambda_entry(resource, journal=journal_table)
    assert isinstance(handler, LambdaHandler)

    def issue(expect_answer: bool) -> Any:
        # hypothesis may draw a URL for an example it then discards: check() expects answers
        return urls.issue(expect_answer=False)

    tried: list[Case] = []

    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),  # timing varies with the machine's load
    )
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        case = data.draw(hostile_events(issue))
        tried.append(case)
        check(case, handler, asynccfn_logs)

    with closing_handler(handler):
        one()
    # Every event that carried an issued URL got exactly one answer, those with missing,
    # empty or invalid identifiers included (check() asserts each; here: they were tried).
    deliverable = [case for case in tried if case.deliverable]
    assert all(len(case.url.stored()) == 1 for case in deliverable if case.url is not None)
    assert sum(1 for case in deliverable if not case.identifiers_valid) >= 20


def test_a_handful_of_hostile_payloads_through_the_lambda_service(rel: Rel) -> None:
    """Raw bytes as Lambda's runtime receives them: duplicate keys, non-objects, depth, size."""
    fn = rel.deploy("hostile", timeout=10)
    answered: list[tuple[Any, str]] = []  # (URL, expected Status)
    silent: list[bytes] = []

    duplicate = rel.event(Steps=1)
    decoy = rel.urls.issue(expect_answer=False)
    raw = with_decoys(duplicate.event, {"ResponseURL": decoy.url, "RequestType": "Explode"})
    rel.service.invoke(fn, raw.encode())
    answered.append((duplicate.url, "SUCCESS"))

    deep = rel.event(Nested=nested(150))
    rel.service.invoke(fn, deep.event)
    answered.append((deep.url, "FAILED"))

    huge = rel.event(Steps=1, Huge="h" * 200_000)
    rel.service.invoke(fn, huge.event)
    answered.append((huge.url, "SUCCESS"))

    weird_data = rel.event(Data=["not", "an", "object"])
    rel.service.invoke(fn, weird_data.event)
    answered.append((weird_data.url, "FAILED"))

    odd = rel.event(overrides={"LogicalResourceId": "Odd\u202e\u0000\U0001f4a5"}, Steps=1)
    rel.service.invoke(fn, odd.event)
    answered.append((odd.url, "SUCCESS"))

    # an invalid RequestId: answered FAILED all the same, the identifiers from the URL's key
    lone = rel.urls.issue()
    lone_event = event_for("create", lone.url, request_id="\\ud800-lone")
    rel.service.invoke(fn, json.dumps(lone_event).replace("\\\\ud800", "\\ud800").encode())
    answered.append((lone, "FAILED"))

    silent += [b"[1, 2, 3]", b'"just text"', b"42", b"null", b'{"RequestType": "Create"}']
    for payload in silent:
        rel.service.invoke(fn, payload)
    count(bad_events=len(answered) + len(silent))

    for url, status in answered:
        body = url.single_response()
        assert body["Status"] == status, body
    assert decoy.puts() == []
    rel.wait_idle()
    records = rel.records(fn)
    assert all(r.outcome is Outcome.SUCCESS for r in records), [r.error for r in records]
    unanswerable = [line for line in rel.logs() if "no response can be sent" in line]
    assert len(unanswerable) == len(silent), unanswerable
