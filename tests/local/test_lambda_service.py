"""The local Lambda service runs real handlers under awslambdaric, as Lambda would."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from asynccfn.local.lambda_service import (
    MAX_HOPS,
    FunctionConfig,
    InvokeError,
    LambdaService,
    LambdaServiceThread,
    Outcome,
)

HANDLERS = """
import json
import os
import time

import botocore.session

_lambda = botocore.session.get_session().create_client("lambda")


def echo(event, context):
    names = ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "_HANDLER",
             "AWS_REGION", "AWS_LAMBDA_LOG_GROUP_NAME", "CUSTOM", "_X_AMZN_TRACE_ID")
    return {
        "event": event,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "env": {name: os.environ.get(name) for name in names},
    }


def fail(event, context):
    print("failing", context.aws_request_id)
    raise RuntimeError("nope")


def sleep(event, context):
    print("sleeping", context.aws_request_id)
    time.sleep(60)


def crash(event, context):
    print("crashing", context.aws_request_id)
    os._exit(3)


def recurse(event, context):
    if event["depth"] < event["limit"]:
        _lambda.invoke(
            FunctionName=context.invoked_function_arn,
            InvocationType="Event",
            Payload=json.dumps({"depth": event["depth"] + 1, "limit": event["limit"]}),
        )
    return event["depth"]


def sink(event, context):
    return event
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """A code folder holding ``handlers.py``."""
    (tmp_path / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    return tmp_path


def function(code: Path, name: str, handler: str, **options: Any) -> FunctionConfig:
    return FunctionConfig(name=name, handler=f"handlers.{handler}", code_paths=[code], **options)


def invoke_over_http(endpoint: str, *, retries: int = 1, **request: Any) -> dict[str, Any]:
    """Call the Invoke API with a real aiobotocore client; the payload comes back decoded."""

    async def call() -> dict[str, Any]:
        config = AioConfig(retries={"total_max_attempts": retries, "mode": "standard"})
        async with get_session().create_client(
            "lambda", endpoint_url=endpoint, config=config
        ) as client:
            response = await client.invoke(**request)
            raw = await response["Payload"].read()
            return {**response, "Payload": json.loads(raw) if raw else None}

    return asyncio.run(call())


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_request_response_returns_the_result(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(
        function(code, "echo", "echo", timeout=2.5, environment={"CUSTOM": "yes"})
    )
    response = invoke_over_http(
        lambda_service.endpoint_url, FunctionName="echo", Payload=json.dumps({"n": 1})
    )
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    result = response["Payload"]
    assert result["event"] == {"n": 1}
    assert result["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:echo"
    assert result["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "echo"
    assert result["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert result["env"]["_HANDLER"] == "handlers.echo"
    assert result["env"]["AWS_REGION"] == "us-east-1"
    assert result["env"]["CUSTOM"] == "yes"
    assert "Lineage=" in result["env"]["_X_AMZN_TRACE_ID"]
    # The deadline is real: now + timeout when the runtime took the event.
    assert 2000 < result["remaining_ms"] <= 2500
    [record] = lambda_service.records("echo")
    assert record.outcome is Outcome.SUCCESS
    assert record.request_id == result["request_id"]
    assert record.result == result


def test_function_name_may_be_an_arn_with_a_qualifier(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(function(code, "echo", "echo"))
    arn = "arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST"
    for name in (arn, "echo:$LATEST", "123456789012:function:echo"):
        response = invoke_over_http(lambda_service.endpoint_url, FunctionName=name, Payload="{}")
        assert response["Payload"]["event"] == {}


def test_a_failing_handler_sets_the_function_error(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(function(code, "fail", "fail"))
    response = invoke_over_http(lambda_service.endpoint_url, FunctionName="fail", Payload="{}")
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert response["Payload"]["errorType"] == "RuntimeError"
    assert response["Payload"]["errorMessage"] == "nope"
    [record] = lambda_service.records("fail")
    assert record.outcome is Outcome.ERROR
    assert record.error is not None and record.error["errorType"] == "RuntimeError"
    assert f"failing {record.request_id}" in lambda_service.logs("fail")


def test_an_event_is_queued_then_run(lambda_service: LambdaServiceThread, code: Path) -> None:
    lambda_service.add_function(function(code, "echo", "echo"))
    response = invoke_over_http(
        lambda_service.endpoint_url,
        FunctionName="echo",
        InvocationType="Event",
        Payload=json.dumps({"queued": True}),
    )
    assert response["StatusCode"] == 202
    assert response["Payload"] is None
    lambda_service.wait_idle(timeout=30)
    [record] = lambda_service.records("echo")
    assert record.outcome is Outcome.SUCCESS
    assert record.invocation_type == "Event"
    assert record.result["event"] == {"queued": True}


def test_dry_run_and_unknown_functions(lambda_service: LambdaServiceThread, code: Path) -> None:
    lambda_service.add_function(function(code, "echo", "echo"))
    dry = invoke_over_http(
        lambda_service.endpoint_url, FunctionName="echo", InvocationType="DryRun"
    )
    assert dry["StatusCode"] == 204
    with pytest.raises(ClientError) as caught:
        invoke_over_http(lambda_service.endpoint_url, FunctionName="nobody", Payload="{}")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "function:nobody" in caught.value.response["Error"]["Message"]
    with pytest.raises(InvokeError) as direct:
        lambda_service.invoke("nobody", {})
    assert direct.value.status == 404
    assert lambda_service.records() == []


def test_a_timed_out_event_is_retried_then_reported_on_failure(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(function(code, "sink", "sink"))
    lambda_service.add_function(
        function(code, "sleepy", "sleep", timeout=0.5, retry_delays=(0.1, 0.2), on_failure="sink")
    )
    queued = lambda_service.invoke("sleepy", {"job": 7}, invocation_type="Event")
    assert queued.status == 202
    lambda_service.wait_idle(timeout=30)

    attempts = lambda_service.records("sleepy")
    assert [r.outcome for r in attempts] == [Outcome.TIMEOUT] * 3
    assert [r.attempt for r in attempts] == [1, 2, 3]
    assert {r.request_id for r in attempts} == {queued.request_id}
    for record in attempts:
        assert 0.5 <= record.ended - record.started < 5
        assert record.error is not None and record.error["errorType"] == "Sandbox.Timedout"
        assert record.worker_pid is not None and not is_running(record.worker_pid)
    assert len({r.worker_pid for r in attempts}) == 3  # a killed worker is never reused
    assert attempts[1].started - attempts[0].ended >= 0.1

    [delivered] = lambda_service.records("sink")
    failure = delivered.result
    assert failure["version"] == "1.0"
    assert failure["requestContext"] == {
        "requestId": queued.request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:sleepy:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert failure["requestPayload"] == {"job": 7}
    assert failure["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert failure["responsePayload"]["errorType"] == "Sandbox.Timedout"


def test_a_crashed_worker_is_recorded_and_retried(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(
        function(code, "crash", "crash", max_retries=1, retry_delays=(0.05,))
    )
    queued = lambda_service.invoke("crash", {}, invocation_type="Event")
    lambda_service.wait_idle(timeout=30)
    attempts = lambda_service.records("crash")
    assert [(r.attempt, r.outcome) for r in attempts] == [
        (1, Outcome.CRASHED),
        (2, Outcome.CRASHED),
    ]
    assert {r.request_id for r in attempts} == {queued.request_id}
    assert attempts[0].error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {queued.request_id} Error: Runtime exited with error: "
        "exit status 3",
    }
    assert lambda_service.logs("crash").count(f"crashing {queued.request_id}") == 2


def test_a_synchronous_timeout_answers_with_the_timeout_error(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(function(code, "sleepy", "sleep", timeout=0.3))
    result = lambda_service.invoke("sleepy", {})
    assert result.status == 200
    assert result.function_error == "Unhandled"
    assert result.payload["errorMessage"].endswith("Task timed out after 0.30 seconds")
    [record] = lambda_service.records("sleepy")
    assert record.outcome is Outcome.TIMEOUT  # RequestResponse calls are not retried


def test_an_old_event_is_dropped_and_reported(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(function(code, "sink", "sink"))
    lambda_service.add_function(
        function(code, "fail", "fail", max_event_age=0.3, retry_delays=(0.5,), on_failure="sink")
    )
    lambda_service.invoke("fail", {"old": True}, invocation_type="Event")
    lambda_service.wait_idle(timeout=30)
    assert [r.outcome for r in lambda_service.records("fail")] == [Outcome.ERROR, Outcome.DROPPED]
    [delivered] = lambda_service.records("sink")
    assert delivered.result["requestContext"]["condition"] == "EventAgeExceeded"
    assert delivered.result["requestContext"]["approximateInvokeCount"] == 1
    assert delivered.result["requestPayload"] == {"old": True}


def test_invoke_faults_answer_errors_then_clear(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(function(code, "echo", "echo"))
    lambda_service.invoke_faults("echo", status=500, times=2)
    lambda_service.invoke_faults("echo", status=429, times=1)
    endpoint = lambda_service.endpoint_url
    for expected in ("ServiceException", "ServiceException", "TooManyRequestsException"):
        with pytest.raises(ClientError) as caught:
            invoke_over_http(endpoint, FunctionName="echo", Payload="{}")
        assert caught.value.response["Error"]["Code"] == expected
    assert invoke_over_http(endpoint, FunctionName="echo", Payload="{}")["StatusCode"] == 200
    assert [c.status for c in lambda_service.api_calls("echo")] == [500, 500, 429, 200]
    assert len(lambda_service.records("echo")) == 1  # a faulted call never reaches a worker

    lambda_service.invoke_faults(None, status=503, times=None)
    with pytest.raises(ClientError):
        invoke_over_http(endpoint, FunctionName="echo", Payload="{}", retries=3)
    assert [c.status for c in lambda_service.api_calls("echo")][-3:] == [503, 503, 503]
    lambda_service.clear_invoke_faults()
    assert invoke_over_http(endpoint, FunctionName="echo", Payload="{}")["StatusCode"] == 200


def test_a_recursive_chain_is_cut_after_16_hops(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(function(code, "loop", "recurse", on_failure="sink"))
    lambda_service.add_function(function(code, "sink", "sink"))
    lambda_service.invoke("loop", {"depth": 1, "limit": 100}, invocation_type="Event")
    lambda_service.wait_idle(timeout=40)
    records = lambda_service.records("loop")
    ran = [r for r in records if r.outcome is Outcome.SUCCESS]
    assert sorted(r.result for r in ran) == list(range(1, MAX_HOPS + 1))
    assert sorted(r.hops for r in ran) == list(range(1, MAX_HOPS + 1))
    [cut] = [r for r in records if r.outcome is Outcome.RECURSION_CUT]
    assert cut.hops == MAX_HOPS + 1
    assert cut.payload == {"depth": MAX_HOPS + 1, "limit": 100}
    [delivered] = lambda_service.records("sink")
    assert delivered.result["requestPayload"] == cut.payload


def test_an_allowed_recursive_chain_goes_on(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(function(code, "loop", "recurse", recursive_loop="Allow"))
    lambda_service.invoke("loop", {"depth": 1, "limit": MAX_HOPS + 3}, invocation_type="Event")
    lambda_service.wait_idle(timeout=40)
    records = lambda_service.records("loop")
    assert all(r.outcome is Outcome.SUCCESS for r in records)
    assert max(r.hops for r in records) == MAX_HOPS + 3


def test_a_handler_that_cannot_load_is_an_error(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(
        FunctionConfig(name="broken", handler="no_such_module.handler", code_paths=[code])
    )
    result = lambda_service.invoke("broken", {})
    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == "Runtime.ImportModuleError"
    [record] = lambda_service.records("broken")
    assert record.outcome is Outcome.ERROR


def test_warm_workers_are_reused_and_stop_leaves_no_process(code: Path) -> None:
    service = LambdaServiceThread()
    service.start()
    try:
        service.add_function(function(code, "echo", "echo"))
        service.add_function(function(code, "sleepy", "sleep", timeout=30))
        first = service.invoke("echo", {})
        second = service.invoke("echo", {})
        service.invoke("sleepy", {}, invocation_type="Event")
        deadline = time.monotonic() + 10
        while not any(line.startswith("sleeping") for line in service.logs("sleepy")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pids = service.worker_pids()
    finally:
        service.stop()
    echo_pids = {r.worker_pid for r in service.records("echo")}
    assert len(echo_pids) == 1, (first, second)
    assert len(pids) == 2
    assert not [pid for pid in pids if is_running(pid)]
    assert service.service.idle


def test_the_async_service_runs_on_the_callers_loop(code: Path) -> None:
    async def scenario() -> tuple[Any, list[int]]:
        service = LambdaService()
        service.add_function(function(code, "echo", "echo"))  # before start() is fine
        await service.start()
        try:
            result = await service.invoke("echo", {"async": True})
            await service.invoke("echo", {"queued": True}, invocation_type="Event")
            async with asyncio.timeout(30):
                await service.wait_idle()
            pids = service.worker_pids()
        finally:
            await service.stop()
        return result.payload["event"], pids

    event, pids = asyncio.run(scenario())
    assert event == {"async": True}
    assert pids and not [pid for pid in pids if is_running(pid)]


def test_an_event_payload_over_the_async_limit_is_refused(
    lambda_service: LambdaServiceThread, code: Path
) -> None:
    lambda_service.add_function(function(code, "echo", "echo"))
    big = json.dumps({"blob": "x" * (256 * 1024)})
    with pytest.raises(ClientError) as caught:
        invoke_over_http(
            lambda_service.endpoint_url, FunctionName="echo", InvocationType="Event", Payload=big
        )
    assert caught.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert lambda_service.records() == []


def test_start_waits_until_the_service_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a busy machine the service's thread may run its loop only some time after it was
    started: start() waits for it rather than finding the loop not running yet."""
    original = LambdaServiceThread._run_loop

    def late(*args: Any) -> None:
        time.sleep(0.3)  # the thread is scheduled late
        original(*args)

    monkeypatch.setattr(LambdaServiceThread, "_run_loop", staticmethod(late))
    service = LambdaServiceThread()
    try:
        assert service.start().startswith("http://")
    finally:
        service.stop()
