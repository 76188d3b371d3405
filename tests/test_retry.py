"""RetryPolicy's ``retry_on``: the forms retry libraries accept, and nothing else."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

import asynccfn
from tests.support import FakeLambdaContext, closing_handler, event_for


class Throttled(Exception):
    pass


class Gone(Exception):
    pass


class SlowThrottled(Throttled):
    pass


def retries(policy: asynccfn.RetryPolicy, exc: BaseException) -> bool:
    return policy.should_retry(exc, 1)


def test_by_default_any_exception_is_retried() -> None:
    policy = asynccfn.RetryPolicy()
    assert retries(policy, ValueError()) and retries(policy, Gone())
    assert not retries(policy, KeyboardInterrupt())


def test_an_exception_type_retries_it_and_its_subclasses() -> None:
    policy = asynccfn.RetryPolicy(retry_on=Throttled)
    assert retries(policy, Throttled()) and retries(policy, SlowThrottled())
    assert not retries(policy, Gone())


def test_a_tuple_of_exception_types_retries_any_of_them() -> None:
    policy = asynccfn.RetryPolicy(retry_on=(Throttled, ConnectionError))
    assert retries(policy, SlowThrottled()) and retries(policy, ConnectionResetError())
    assert not retries(policy, Gone())
    assert retries(asynccfn.RetryPolicy(retry_on=(Throttled,)), Throttled())


def test_a_predicate_decides_from_the_exception() -> None:
    policy = asynccfn.RetryPolicy(retry_on=lambda exc: "try again" in str(exc))
    assert retries(policy, Gone("please try again")) and not retries(policy, Gone("gone"))


def test_the_last_attempt_is_not_retried_whatever_retry_on_says() -> None:
    policy = asynccfn.RetryPolicy(max_attempts=2, retry_on=(Throttled,))
    assert policy.should_retry(Throttled(), 1) and not policy.should_retry(Throttled(), 2)


@pytest.mark.parametrize(
    ("retry_on", "says"),
    [
        ("Throttled", "got str 'Throttled'"),
        (None, "got NoneType None"),
        (42, "got int 42"),
        ([Throttled], "got list"),
        (int, "got the class int"),
        ((Throttled, "ValueError"), "got 'ValueError' in"),
        ((Throttled, int), "got <class 'int'> in"),
        ((Throttled, Gone()), "got Gone() in"),
        ((), "empty tuple"),
    ],
    ids=[
        "string",
        "none",
        "number",
        "list",
        "non-exception class",
        "tuple with a string",
        "tuple with a non-exception class",
        "tuple with an instance",
        "empty tuple",
    ],
)
def test_anything_else_is_a_configuration_error_at_construction(retry_on: Any, says: str) -> None:
    with pytest.raises(asynccfn.ConfigurationError, match="retry_on") as raised:
        asynccfn.RetryPolicy(retry_on=retry_on)
    assert says in str(raised.value)


def test_a_copied_policy_keeps_and_checks_its_retry_on() -> None:
    policy = asynccfn.RetryPolicy(retry_on=(Throttled,))
    longer = dataclasses.replace(policy, max_attempts=5)
    assert retries(longer, Throttled()) and not retries(longer, Gone())
    assert longer != policy and dataclasses.replace(longer, max_attempts=3) == policy
    with pytest.raises(asynccfn.ConfigurationError):
        dataclasses.replace(policy, retry_on="Throttled")
    assert "_retries" not in repr(policy)


@pytest.mark.parametrize(
    ("failures", "status", "attempts"),
    [([Throttled, Throttled], "SUCCESS", 3), ([Throttled, Gone], "FAILED", 2)],
    ids=["retried", "not retried"],
)
def test_a_step_retries_the_types_in_its_tuple(
    failures: list[type[Exception]],
    status: str,
    attempts: int,
    journal: str,
    presigned_response_url: Any,
) -> None:
    url, read = presigned_response_url()
    calls: list[int] = []
    resource = asynccfn.Resource("Custom::Bucket", update="replace", delete="nothing")
    policy = asynccfn.RetryPolicy(retry_on=(Throttled,), initial_delay=0, jitter=0)

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        async def flaky() -> str:
            calls.append(len(calls))
            if len(calls) <= len(failures):
                raise failures[len(calls) - 1]("not now")
            return "done"

        await ctx.step("flaky", flaky, retry=policy)
        return asynccfn.Success(physical_id="flaky")

    handler = asynccfn.lambda_entry(resource, journal=journal)
    with closing_handler(handler):
        handler(event_for("create", url), FakeLambdaContext())
    body = json.loads(read())
    assert body["Status"] == status and len(calls) == attempts, body
    if status == "FAILED":
        assert body["Reason"].startswith("Gone: not now"), body
