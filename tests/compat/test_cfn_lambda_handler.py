"""The cfn-lambda-handler layer driven in-process: responses, hand-overs and continuations
against DynamoDB Local and moto's S3, with Lambda's invoke replaced by a recorder.

The end-to-end tests (test_cfn_lambda_handler_e2e.py) run the same under awslambdaric.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asynccfn import ConfigurationError
from asynccfn._deadline import default_reserve
from asynccfn._errors import ContinuationError
from asynccfn.compat import cfn_lambda_handler
from asynccfn.compat.cfn_lambda_handler import CfnLambdaExecutionTimeout, Handler
from tests.support import (
    FakeLambdaContext,
    closing_handler,
    event_for,
    issued,
    journal_items,
    sleep,
)

EXAMPLE = '{"Status": "SUCCESS", "PhysicalResourceId": ..., "Data": {...}}'

# What a 20 s invocation leaves for work before the soft deadline, in milliseconds.
WORK_MS = (20 - default_reserve(20)) * 1000


@pytest.fixture
def invoked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The payloads the function would have been invoked with (hand-overs and continuations),
    each as the JSON Lambda would receive."""
    payloads: list[dict[str, Any]] = []

    async def hand_over(client: Any, arn: str, event: Any, *, token: str) -> None:
        payloads.append(json.loads(json.dumps({**event, "AsyncCfnHandOver": {"token": token}})))

    async def continuation(client: Any, arn: str, event: Any) -> None:
        payloads.append(json.loads(json.dumps(event)))

    monkeypatch.setattr("asynccfn._handoff.invoke_self", hand_over)
    monkeypatch.setattr(cfn_lambda_handler, "invoke_event", continuation)
    return payloads


@pytest.fixture
def said() -> Iterator[list[str]]:
    """Messages the layer logs (asynccfn's logger does not propagate to pytest's)."""
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    keep = Keep()
    logger = logging.getLogger("asynccfn.handler")
    logger.addHandler(keep)
    try:
        yield messages
    finally:
        logger.removeHandler(keep)


Call = Callable[..., dict[str, Any]]


def answer(handler: Handler, read: Callable[[], bytes | None]) -> dict[str, Any]:
    raw = read()
    assert raw is not None, "no response was posted"
    return json.loads(raw)  # type: ignore[no-any-return]


def respond(
    result: Any, presigned_response_url: Any, kind: str = "create", **properties: Any
) -> dict[str, Any]:
    """The response a journal-less Handler posts when its ``kind`` function returns ``result``."""
    handler = Handler()

    def function(event: dict[str, Any], context: Any) -> Any:
        return result

    getattr(handler, kind)(function)
    url, read = presigned_response_url()
    with closing_handler(handler):
        handler(event_for(kind, url, **properties), FakeLambdaContext())
    return answer(handler, read)


# -- responses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (None, f"the Create handler returned None; it must return a dict like {EXAMPLE}"),
        (["SUCCESS"], "the Create handler returned a value of type list; it must return a dict"),
        ({}, 'the Create handler returned no Status; Status must be "SUCCESS" or "FAILED"'),
        (
            {"Status": "success", "Reason": "all good"},
            "the Create handler returned Status 'success'; Status must be \"SUCCESS\" or "
            '"FAILED" (its Reason: all good)',
        ),
        (  # NoEcho Data stays out of the reason quoted, whatever the Status
            {"Status": "ok", "Reason": "pw s3cr3t-pw", "NoEcho": True, "Data": {"P": "s3cr3t-pw"}},
            "the Create handler returned Status 'ok'; Status must be \"SUCCESS\" or "
            '"FAILED" (its Reason: pw ****)',
        ),
        ({"Status": "FAILED"}, "the Create handler returned Status FAILED without a Reason"),
        ({"Status": "FAILED", "Reason": " "}, "the Create handler returned Status FAILED without"),
        (
            {"Status": "SUCCESS", "Data": ["a"]},
            "the Create handler returned Data of type list; Data must be a dict",
        ),
        (
            {"Status": "SUCCESS", "NoEcho": "yes"},
            "the Create handler returned NoEcho 'yes'; it must be True or False",
        ),
        (
            {"Status": "SUCCESS", "PhysicalResourceId": 42},
            "the Create handler returned PhysicalResourceId 42; it must be a non-empty string",
        ),
        (
            {"Status": "SUCCESS", "Data": {("a", 1): "tuple key"}},
            "the Data the Create handler returned cannot be sent as JSON: keys must be",
        ),
    ],
)
def test_malformed_return_value_answers_failed_with_a_clear_reason(
    response_hosts: None, presigned_response_url: Any, result: Any, reason: str
) -> None:
    response = respond(result, presigned_response_url)
    assert response["Status"] == "FAILED"
    assert response["Reason"].startswith(reason), response["Reason"]


def test_failed_answer_carries_its_reason_and_physical_id(
    response_hosts: None, presigned_response_url: Any
) -> None:
    failed = {"Status": "FAILED", "Reason": "quota exceeded", "PhysicalResourceId": "half-built"}
    response = respond(failed, presigned_response_url)
    assert (response["Status"], response["Reason"]) == ("FAILED", "quota exceeded")
    assert response["PhysicalResourceId"] == "half-built"  # rollback's Delete gets it


def test_success_defaults_and_conversions_as_cfn_lambda_handler(
    response_hosts: None, presigned_response_url: Any
) -> None:
    when = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.UTC)
    result = {"Status": "SUCCESS", "Data": {"When": when, "Raw": b"bytes"}, "NoEcho": True}
    response = respond(result, presigned_response_url)
    assert response["Status"] == "SUCCESS"
    assert response["Data"] == {"When": "2026-11-22T12:00:00+00:00", "Raw": "bytes"}
    assert response["NoEcho"] is True
    stack_and_logical = response["StackId"] + response["LogicalResourceId"]
    assert response["PhysicalResourceId"] == hashlib.md5(stack_and_logical.encode()).hexdigest()
    update = respond({"Status": "SUCCESS"}, presigned_response_url, "update")
    assert update["PhysicalResourceId"] == "demo-bucket"  # the request's


def test_a_failed_create_without_an_id_reports_the_default_one(
    response_hosts: None, presigned_response_url: Any
) -> None:
    response = respond({"Status": "FAILED", "Reason": "no"}, presigned_response_url)
    stack_and_logical = response["StackId"] + response["LogicalResourceId"]
    # as cfn-lambda-handler: rollback's Delete then reaches the delete function
    assert response["PhysicalResourceId"] == hashlib.md5(stack_and_logical.encode()).hexdigest()


def test_request_type_without_a_function_answers_failed(
    response_hosts: None, presigned_response_url: Any
) -> None:
    response = respond({"Status": "SUCCESS"}, presigned_response_url, "create")
    assert response["Status"] == "SUCCESS"
    handler = Handler()
    url, read = presigned_response_url()
    with closing_handler(handler):
        handler(event_for("delete", url), FakeLambdaContext())
    response = answer(handler, read)
    assert response["Status"] == "FAILED"
    assert response["Reason"] == "No handler defined for request type Delete"


def test_function_exception_answers_failed_with_its_type_and_message(
    response_hosts: None, presigned_response_url: Any
) -> None:
    handler = Handler()

    @handler.create
    def create(event: dict[str, Any], context: Any) -> Any:
        raise ValueError("bucket name taken")

    url, read = presigned_response_url()
    with closing_handler(handler):
        handler(event_for("create", url), FakeLambdaContext())
    assert answer(handler, read)["Reason"].startswith("ValueError: bucket name taken")


def test_async_functions_are_awaited_on_the_loop(
    response_hosts: None, presigned_response_url: Any
) -> None:
    handler = Handler()

    @handler.create
    async def create(event: dict[str, Any], context: Any) -> Any:
        return {"Status": "SUCCESS", "Data": {"Left": context.get_remaining_time_in_millis()}}

    url, read = presigned_response_url()
    with closing_handler(handler):
        handler(event_for("create", url), FakeLambdaContext(seconds=20))
    assert WORK_MS - 1000 < answer(handler, read)["Data"]["Left"] <= WORK_MS


def test_context_counts_down_to_the_soft_deadline_from_a_worker_thread(
    response_hosts: None, presigned_response_url: Any
) -> None:
    handler = Handler()
    seen: dict[str, Any] = {}

    @handler.create
    def create(event: dict[str, Any], context: Any) -> Any:
        seen["left"] = context.get_remaining_time_in_millis()
        seen["name"] = context.function_name
        seen["request"] = context.aws_request_id
        seen["event"] = event
        return {"Status": "SUCCESS"}

    url, read = presigned_response_url()
    context = FakeLambdaContext(seconds=20)
    with closing_handler(handler):
        handler(event_for("create", url, Name="x"), context)
    assert answer(handler, read)["Status"] == "SUCCESS"
    assert WORK_MS - 1000 < seen["left"] <= WORK_MS
    assert (seen["name"], seen["request"]) == ("inprocess", context.aws_request_id)
    assert seen["event"]["ResourceProperties"]["Name"] == "x"
    assert seen["event"]["ResponseURL"] == url  # the event as Lambda delivered it
    assert isinstance(seen["event"]["CreationTime"], int)


def test_timeout_that_is_not_a_number_answers_failed(
    response_hosts: None, presigned_response_url: Any
) -> None:
    handler = Handler()

    @handler.create
    def create(event: dict[str, Any], context: Any) -> Any:
        raise AssertionError("not called")

    url, read = presigned_response_url()
    with closing_handler(handler):
        handler({**event_for("create", url), "Timeout": "soon"}, FakeLambdaContext())
    assert answer(handler, read)["Reason"] == (
        "event['Timeout'] must be a number of seconds, got 'soon'"
    )


# -- continuing in a new invocation ------------------------------------------------------------


def counting_handler(calls: list[tuple[str, Any]], *, journal: str | None) -> Handler:
    handler = Handler(journal=journal)

    @handler.create
    def create(event: dict[str, Any], context: Any) -> Any:
        calls.append(("create", event.get("EventState")))
        event["Timeout"] = 1800
        event["Note"] = "set by create"
        raise CfnLambdaExecutionTimeout({"Polls": 0, "When": datetime.date(2026, 11, 22)})

    @handler.poll
    def poll(event: dict[str, Any], context: Any) -> Any:
        state = event["EventState"]
        calls.append(("poll", state))
        assert (event["Timeout"], event["Note"]) == (1800, "set by create")
        if state["Polls"] < 2:
            raise CfnLambdaExecutionTimeout({**state, "Polls": state["Polls"] + 1})
        return {"Status": "SUCCESS", "Data": {"Polls": state["Polls"]}}

    return handler


def test_durable_rounds_hand_over_and_replay_without_running_again(
    journal: str,
    dynamodb_endpoint: str,
    presigned_response_url: Any,
    invoked: list[dict[str, Any]],
    said: list[str],
) -> None:
    calls: list[tuple[str, Any]] = []
    handler = counting_handler(calls, journal=journal)
    url, read = presigned_response_url()
    event = event_for("create", url)
    with closing_handler(handler):
        assert handler(event, FakeLambdaContext())["outcome"] == "handed-over"
        for _ in range(3):
            payload = invoked[-1]
            # the hand-over payload is the original event and a token: the state is journaled
            assert {k: v for k, v in payload.items() if k != "AsyncCfnHandOver"} == event
            outcome = handler(payload, FakeLambdaContext())["outcome"]
        assert outcome == "SUCCESS"
        assert len(invoked) == 3
    assert answer(handler, read)["Data"] == {"Polls": 2}
    first = {"Polls": 0, "When": "2026-11-22"}
    assert calls == [
        ("create", None),
        ("poll", first),
        ("poll", {**first, "Polls": 1}),
        ("poll", {**first, "Polls": 2}),
    ]  # each round ran once: later invocations replayed the earlier rounds
    stored = json.dumps(journal_items(dynamodb_endpoint, journal))
    assert "EventState" in stored and url not in stored  # the URL is never stored
    assert cfn_lambda_handler.NOT_DURABLE not in said


def test_retried_deployment_keeps_the_rounds_that_handed_over_and_restarts_the_timeout(
    journal: str, presigned_response_url: Any, invoked: list[dict[str, Any]]
) -> None:
    calls: list[str] = []
    handler = Handler(journal=journal)

    @handler.create
    def create(event: dict[str, Any], context: Any) -> Any:
        calls.append("create")
        event["Timeout"] = 20
        raise CfnLambdaExecutionTimeout({"Created": True})

    @handler.poll
    def poll(event: dict[str, Any], context: Any) -> Any:
        calls.append("poll")
        return {"Status": "SUCCESS", "Data": event["EventState"]}

    first_url, read_first = presigned_response_url()
    second_url, read_second = presigned_response_url()
    # CloudFormation issued the first attempt 19 s ago: its poll comes after the 20 s Timeout
    event = event_for("create", issued(first_url, seconds_ago=19))
    with closing_handler(handler):
        assert handler(event, FakeLambdaContext())["outcome"] == "handed-over"
        sleep(1.5)
        assert handler(invoked[-1], FakeLambdaContext())["outcome"] == "FAILED"
        retry = {**event, "ResponseURL": second_url}
        assert handler(retry, FakeLambdaContext())["outcome"] == "SUCCESS"
    assert answer(handler, read_first)["Reason"] == (
        "The custom resource operation failed to complete within the user specified timeout "
        "of 20 seconds"
    )
    assert answer(handler, read_second)["Data"] == {"Created": True}
    assert calls == ["create", "poll"]  # create ran once; the timed-out poll never started


def test_without_a_journal_the_function_continues_with_its_state_in_the_payload(
    response_hosts: None,
    presigned_response_url: Any,
    invoked: list[dict[str, Any]],
    said: list[str],
) -> None:
    calls: list[tuple[str, Any]] = []
    handler = counting_handler(calls, journal=None)
    url, read = presigned_response_url()
    event = event_for("create", url)
    with closing_handler(handler):
        assert handler(event, FakeLambdaContext())["outcome"] == "continued"
        payload = invoked[-1]
        assert payload["ResponseURL"] == url  # as cfn-lambda-handler: the payload is the state
        assert payload["EventStatus"] == "Poll"
        assert payload["EventState"] == {"Polls": 0, "When": "2026-11-22"}
        assert (payload["Timeout"], payload["Note"]) == (1800, "set by create")
        while handler(invoked[-1], FakeLambdaContext())["outcome"] == "continued":
            pass
    assert answer(handler, read)["Data"] == {"Polls": 2}
    assert [kind for kind, _ in calls] == ["create", "poll", "poll", "poll"]
    assert said.count(cfn_lambda_handler.NOT_DURABLE) == 1  # once per container


def test_without_a_journal_a_refused_continuation_answers_failed(
    response_hosts: None, presigned_response_url: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(client: Any, arn: str, event: Any) -> None:
        raise ContinuationError("Lambda refused the hand-over invocation: TooManyRequests")

    monkeypatch.setattr(cfn_lambda_handler, "invoke_event", refuse)
    handler = counting_handler([], journal=None)
    url, read = presigned_response_url()
    with closing_handler(handler):
        assert handler(event_for("create", url), FakeLambdaContext())["outcome"] == "FAILED"
    assert answer(handler, read)["Reason"] == (
        "could not continue in a new invocation: Lambda refused the hand-over invocation: "
        "TooManyRequests"
    )


# -- the API ---------------------------------------------------------------------------------


def test_decorators_return_the_function_and_refuse_a_second_one(response_hosts: None) -> None:
    handler = Handler()

    def create(event: Any, context: Any) -> Any:
        return {"Status": "SUCCESS"}

    assert handler.create(create) is create
    with pytest.raises(ConfigurationError, match="already has a Create handler"):
        handler.create(create)
    with pytest.raises(ConfigurationError, match="must be a function"):
        handler.poll("not a function")  # type: ignore[type-var]
    assert not handler.durable


def test_execution_timeout_keeps_its_state() -> None:
    assert CfnLambdaExecutionTimeout().state == {}
    assert CfnLambdaExecutionTimeout(None).state is None
    assert CfnLambdaExecutionTimeout([1, 2]).state == [1, 2]
    assert CfnLambdaExecutionTimeout({"a": 1}).args == ({"a": 1},)
    assert isinstance(CfnLambdaExecutionTimeout(), Exception)
