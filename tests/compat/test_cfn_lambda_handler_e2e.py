"""cfn-lambda-handler functions under the local Lambda service: the documentation's examples
and the layer's own promises, across real invocations of a 3-second function."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from asynccfn._deadline import default_reserve
from asynccfn.compat.cfn_lambda_handler import NOT_DURABLE
from tests.compat.conftest import Functions


def default_physical_id(event: dict[str, str]) -> str:
    return hashlib.md5((event["StackId"] + event["LogicalResourceId"]).encode()).hexdigest()


# -- the documentation's examples ----------------------------------------------------------


def test_documented_handlers_answer_create_update_and_delete(functions: Functions) -> None:
    fn = functions.deploy("doc-basic", "cfn_doc_basic.handler")
    create = functions.send(fn, "create").response()
    assert create["Status"] == "SUCCESS", create
    assert create["PhysicalResourceId"] == "1234"
    # The example's Update and Delete bodies are placeholders (``...``) that return None:
    # cfn-lambda-handler answered FAILED to that too; here the reason says why.
    for kind in ("update", "delete"):
        response = functions.send(fn, kind).response()
        assert response["Status"] == "FAILED", response
        assert response["Reason"].startswith(f"the {kind.title()} handler returned None;")
        assert response["PhysicalResourceId"] == "demo-bucket"  # the request's, echoed


def test_documented_failure_answers_failed_with_its_reason(functions: Functions) -> None:
    fn = functions.deploy("doc-failed", "cfn_doc_basic.handler", environment={"DOC_FAILED": "1"})
    response = functions.send(fn, "create").response()
    assert response["Status"] == "FAILED", response
    assert response["Reason"] == (
        'the Create handler returned Status \'FAILURE\'; Status must be "SUCCESS" or "FAILED" '
        "(its Reason: Some failure occurred)"
    )


def polls(functions: Functions) -> list[dict[str, Any]]:
    return functions.noted("polls.log")


def test_documented_polling_example_runs_across_invocations(functions: Functions) -> None:
    fn = functions.deploy("doc-polling", "cfn_doc_polling.handler")
    sent = functions.send(fn, "create", ReadyAtCheck=3)  # three invocations at least
    response = sent.response(timeout=40)
    assert response["Status"] == "SUCCESS", response
    assert response["PhysicalResourceId"] == default_physical_id(sent.event)
    functions.service.wait_idle()
    outcomes = functions.outcomes(fn)
    assert outcomes[-1] == "SUCCESS" and outcomes.count("handed-over") >= 2, outcomes
    seen = polls(functions)
    assert seen[-1]["Made"] == {"Checks": 3, "Complete": True}, seen
    for before, after in itertools.pairwise(seen):
        if after["EventStatus"] == "Poll" and after["EventState"] != before["EventState"]:
            # a new invocation: it got the state the last one raised with, and its Timeout
            assert after["EventState"] == before["Made"], seen
            assert after["Timeout"] == 1800
    assert NOT_DURABLE not in functions.logs(fn)


def test_without_a_journal_the_state_rides_in_the_payload(functions: Functions) -> None:
    fn = functions.deploy("doc-polling-light", "cfn_doc_polling.handler", durable=False)
    sent = functions.send(fn, "create", ReadyAtCheck=2)
    response = sent.response(timeout=40)
    assert response["Status"] == "SUCCESS", response
    functions.service.wait_idle()
    records = functions.service.records(fn)
    assert [r.result for r in records][-1] == {"outcome": "SUCCESS"}
    continued = [r.payload for r in records if r.payload.get("EventStatus") == "Poll"]
    assert continued, [r.payload for r in records]
    assert all(p["ResponseURL"] == sent.event["ResponseURL"] for p in continued)
    assert all(p["Timeout"] == 1800 and "EventState" in p for p in continued)
    assert NOT_DURABLE in functions.logs(fn)


# -- the layer's promises --------------------------------------------------------------------


def test_context_reports_the_time_left_before_the_soft_deadline(functions: Functions) -> None:
    fn = functions.deploy("app-remaining", "cfn_app.handler", timeout=5)
    data = functions.send(fn, Mode="remaining").response()["Data"]
    first, later = int(data["First"]), int(data["Later"])
    # a 5 s function keeps a reserve back: its work time is less, and runs down in real time
    assert 0 < first <= (5 - default_reserve(5)) * 1000, data
    assert 500 <= first - later <= 1500, data  # the function slept 0.5 s between the two
    assert data["FunctionName"] == fn and data["RequestId"]


def test_state_and_event_keys_carry_across_invocations(functions: Functions) -> None:
    fn = functions.deploy("app-count", "cfn_app.handler")
    # a 3 s function counts at most 7 (0.3 s each) an invocation: 20 needs three or more
    response = functions.send(fn, Mode="count", Count=20).response(timeout=60)
    assert response["Status"] == "SUCCESS", response
    assert response["Data"] == {"Counted": 20}
    runs = functions.noted("runs.log")
    assert runs[0] == {"kind": "Create", "state": {"Counted": 0}, "marker": None}
    assert len(runs) >= 3 and all(run["kind"] == "Poll" for run in runs[1:]), runs
    for before, after in itertools.pairwise(runs):
        assert after["marker"] == f"set before invocation {before['state']['Counted']}"
        assert after["state"]["Counted"] > before["state"]["Counted"]  # never re-run


def test_exceeding_timeout_answers_failed(functions: Functions) -> None:
    fn = functions.deploy("app-forever", "cfn_app.handler")
    response = functions.send(fn, Mode="forever", Timeout=2).response(timeout=30)
    assert response["Status"] == "FAILED", response
    assert response["Reason"] == (
        "The custom resource operation failed to complete within the user specified timeout "
        "of 2 seconds"
    )


def test_malformed_return_value_answers_failed_with_a_clear_reason(functions: Functions) -> None:
    fn = functions.deploy("app-malformed", "cfn_app.handler")
    response = functions.send(fn, Mode="return", Return="done").response()
    assert response["Status"] == "FAILED"
    assert response["Reason"] == (
        "the Create handler returned a value of type str; it must return a dict like "
        '{"Status": "SUCCESS", "PhysicalResourceId": ..., "Data": {...}}'
    )
