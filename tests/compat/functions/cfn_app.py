"""cfn-lambda-handler functions for the behaviours the documentation's examples do not show.

``ResourceProperties["Mode"]`` picks what the Create function does; they note what they saw in
``$COMPAT_RUN_DIR/runs.log`` (one JSON object a line) for the tests.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from asynccfn.compat.cfn_lambda_handler import CfnLambdaExecutionTimeout, Handler

handler = Handler()


def note(**seen: Any) -> None:
    with (Path(os.environ["COMPAT_RUN_DIR"]) / "runs.log").open("a") as log:
        log.write(json.dumps(seen) + "\n")


def count(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Count up to ``Count``, one a 0.3 s, across invocations; keys set on the event (and the
    EventState) come back in the next invocation's event."""
    state = event.get("EventState") or {"Counted": 0}
    note(
        kind=event.get("EventStatus", event["RequestType"]), state=state, marker=event.get("Marker")
    )
    event["Marker"] = f"set before invocation {state['Counted']}"
    while state["Counted"] < int(event["ResourceProperties"]["Count"]):
        if context.get_remaining_time_in_millis() < 500:
            raise CfnLambdaExecutionTimeout(state)
        time.sleep(0.3)
        state = {"Counted": state["Counted"] + 1}
    return {
        "Status": "SUCCESS",
        "PhysicalResourceId": "counted",
        "Data": {"Counted": state["Counted"]},
    }


@handler.create
def create(event: dict[str, Any], context: Any) -> Any:
    props = event["ResourceProperties"]
    mode = props["Mode"]
    if mode == "remaining":
        remaining = context.get_remaining_time_in_millis()
        time.sleep(0.5)
        return {
            "Status": "SUCCESS",
            "Data": {
                "First": remaining,
                "Later": context.get_remaining_time_in_millis(),
                "FunctionName": context.function_name,
                "RequestId": context.aws_request_id,
            },
        }
    if mode == "return":
        return props["Return"]
    if mode == "count":
        return count(event, context)
    if mode == "forever":
        event["Timeout"] = int(props["Timeout"])
        time.sleep(0.5)
        raise CfnLambdaExecutionTimeout({"Forever": True})
    raise ValueError(f"unknown mode {mode}")


@handler.poll
def poll(event: dict[str, Any], context: Any) -> Any:
    if event["ResourceProperties"]["Mode"] == "forever":
        time.sleep(0.5)
        raise CfnLambdaExecutionTimeout(event["EventState"])
    return count(event, context)


@handler.update
async def update(event: dict[str, Any], context: Any) -> Any:
    return {"Status": "SUCCESS", "Data": {"Async": "yes"}}


@handler.delete
def delete(event: dict[str, Any], context: Any) -> Any:
    return {"Status": "SUCCESS"}
