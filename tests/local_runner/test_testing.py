"""``asynccfn.testing.run_resource``: hand-over after every step, and replay of every
operation, catch a handler that does not replay its journal faithfully."""

from __future__ import annotations

import inspect
import json
import uuid
from typing import Any

import pytest

import asynccfn
from asynccfn.local._loader import locate
from asynccfn.testing import (
    HandlerReturnedNone,
    LocalServerError,
    ReplayDivergence,
    ResourceSpecError,
    run_resource,
)
from tests.local_runner import mistakes, resources, secretive


def test_a_resource_is_located_by_the_name_a_worker_imports() -> None:
    assert locate(resources.counting) == "tests.local_runner.resources:counting"


def test_a_deterministic_handler_survives_a_hand_over_after_every_step_and_a_replay(
    dynamodb_endpoint: str,
) -> None:
    life = run_resource(
        resources.counting,
        properties={"Steps": 3},
        handover_every_step=True,
        always_replay=True,
        dynamodb=dynamodb_endpoint,  # the journal in DynamoDB Local, not moto
    )
    assert [run.label for run in life] == ["Create", "Delete"]
    assert life.ok, life.failures
    create = life.create
    assert create.data == {"Done": "3", "Total": "60"}  # ctx.state never counted twice
    assert create.handovers == 2 and create.journal.operation.invocations == 3
    assert [step.name for step in create.steps] == ["step 1", "step 2", "step 3"]
    assert create.replay is not None and create.replay.problems == ()
    assert create.replay.response["Data"] == create.data


@pytest.mark.parametrize(
    "option", [{"always_replay": True}, {"handover_every_step": True}], ids=["replay", "handover"]
)
def test_a_handler_that_reads_the_world_outside_a_step_is_caught(option: dict[str, Any]) -> None:
    bucket = f"forgetful-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ReplayDivergence) as caught:
        run_resource(resources.forgetful, properties={"BucketName": bucket}, **option)
    message = str(caught.value)
    assert "Create" in message and "non-deterministic handler" in message, message
    assert "s3:CreateBucket" in message and "s3:PutBucketTagging" in message, message


def test_a_secret_is_in_no_printout_of_a_run_with_a_kms_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    life = run_resource(
        "tests.local_runner.secretive:handler",
        handover_every_step=True,
        always_replay=True,
        kms_key=True,
    )
    assert life.ok, life.failures
    create = life.create
    assert create.data == {"Password": secretive.SECRET}  # what CloudFormation gets
    assert create.handovers >= 1 and create.replay is not None and not create.replay.problems
    fetched = next(step for step in create.steps if step.name == "fetch-password")
    assert fetched.sensitive and fetched.result == "****"
    # the NoEcho outbox, once posted, is kept with its Data masked (and its digest)
    response = create.journal.operation.response
    assert response is not None and response.data == {"Password": "****"}
    assert response.no_echo and response.digest is not None
    out, err = capsys.readouterr()
    assert "fetch-password" in out and "Timeline (UTC)" in out
    assert secretive.SECRET not in out + err


def test_a_failing_run_shows_the_handlers_traceback_and_its_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    life = run_resource(resources.failing)
    lines, first = inspect.getsourcelines(resources.fail)
    line = first + next(i for i, text in enumerate(lines) if "raise RuntimeError" in text)
    assert life.failures[0].startswith(
        "Create: RuntimeError: the widget is broken "
        f"(at tests/local_runner/resources.py:{line} in fail)"
    ), life.failures
    out, _ = capsys.readouterr()
    assert f'resources.py", line {line}, in fail' in out, out
    assert " of asynccfn and asyncio" in out, out


def test_a_forgotten_return_fails_the_test_unless_allowed() -> None:
    with pytest.raises(HandlerReturnedNone) as caught:
        run_resource(mistakes.forgetful_return, echo=False)
    assert "the Create handler create_without_return" in str(caught.value)
    life = run_resource(mistakes.forgetful_return, echo=False, allow_none=True)
    assert life.ok and life.create.data == {}


def test_the_errors_run_resource_raises_are_importable_from_testing() -> None:
    with pytest.raises(ResourceSpecError, match="has no Update handler"):
        run_resource(mistakes.no_update)
    assert issubclass(LocalServerError, Exception)


def test_a_handler_that_is_not_async_is_refused_where_the_user_wrote_it() -> None:
    resource = asynccfn.Resource("Custom::Sync")

    def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success()

    line = inspect.getsourcelines(create)[1]
    with pytest.raises(asynccfn.ConfigurationError) as caught:
        resource.create(create)  # type: ignore[arg-type]
    assert f"(tests/local_runner/test_testing.py:{line}) must be an 'async def'" in str(
        caught.value
    )


PROPERTIES = {"Count": 5, "Flag": True, "Nested": {"List": [1, 2.5, False, "x"]}, "Null": None}


def test_properties_arrive_as_cloudformation_sends_them_unless_raw() -> None:
    life = run_resource(mistakes.echo, properties=PROPERTIES, echo=False)
    assert json.loads(life.create.data["Seen"]) == {
        "Count": "5",
        "Flag": "true",
        "Nested": {"List": ["1", "2.5", "false", "x"]},
        "Null": None,
    }
    raw = run_resource(mistakes.echo, properties=PROPERTIES, echo=False, raw_properties=True)
    assert json.loads(raw.create.data["Seen"]) == PROPERTIES


def test_a_step_taken_on_the_first_run_and_skipped_on_replay_is_caught() -> None:
    with pytest.raises(ReplayDivergence) as caught:
        run_resource(mistakes.extra_step, request_type="Create", always_replay=True)
    message = str(caught.value)
    assert "Create: the replay finished without asking for journaled steps" in message, message
    assert "'announce' at position" in message and "'make'" not in message, message
