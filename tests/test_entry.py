"""lambda_entry and Resource: configuration, import-time independence from AWS, deadlines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import asynccfn
from asynccfn import _entry
from asynccfn._deadline import default_reserve


def test_import_and_entry_need_no_aws_client_or_region() -> None:
    script = (
        "import asynccfn, sys\n"
        "r = asynccfn.Resource(update='replace', delete='nothing')\n"
        "@r.create\n"
        "async def create(request, ctx): return asynccfn.Success()\n"
        "h = asynccfn.lambda_entry(r, journal='t')\n"
        "heavy = [m for m in ('aiohttp', 'aiobotocore.session') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"  # the HTTP stacks load on first use, not at import


def test_reserve_suits_lambda_and_shrinks_for_short_timeouts() -> None:
    assert default_reserve(900) == 10
    assert default_reserve(30) == 9
    assert default_reserve(2.5) == 0.8
    assert default_reserve(1) == 0.8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "timeout"),
        ({"lease": 1}, "lease"),
        ({"retention": 60}, "retention"),
        ({"reserve": -1}, "reserve"),
    ],
)
def test_lambda_entry_refuses_bad_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(asynccfn.ConfigurationError, match=message):
        asynccfn.lambda_entry(asynccfn.Resource(), **kwargs)  # type: ignore[arg-type]


def test_lambda_entry_needs_a_resource() -> None:
    with pytest.raises(asynccfn.ConfigurationError, match="Resource"):
        asynccfn.lambda_entry(lambda event, context: None)  # type: ignore[arg-type]


def _line_of(marker: str) -> int:
    source = Path(__file__).read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(source, 1) if line.endswith(f"# {marker}"))


async def _create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    return asynccfn.Success()


def test_off_lambda_lambda_entry_refuses_a_resource_missing_handlers_naming_each_and_its_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_entry, "inside_lambda", lambda: False)
    nothing = asynccfn.Resource("Custom::Nothing")  # nothing-here
    with pytest.raises(asynccfn.ConfigurationError) as refused:
        asynccfn.lambda_entry(nothing)
    message = str(refused.value)
    where = f"Custom::Nothing defined at tests/test_entry.py:{_line_of('nothing-here')}"
    for kind in ("Create", "Update", "Delete"):
        assert f"{where} has no {kind} handler" in message, message
    assert nothing.unanswered() and all(sentence in message for sentence in nothing.unanswered())

    # A provider: every resource's missing answers, each at its own line; none of a complete one.
    half = asynccfn.Resource("Custom::Half", update="replace")  # half-here
    half.create(_create)
    whole = asynccfn.Resource("Custom::Whole", update="replace", delete="nothing")
    whole.create(_create)
    with pytest.raises(asynccfn.ConfigurationError) as refused:
        asynccfn.lambda_entry([whole, half, nothing])
    message = str(refused.value)
    half_at = f"Custom::Half defined at tests/test_entry.py:{_line_of('half-here')}"
    assert f"{half_at} has no Delete handler" in message
    assert "Update" not in message.split(half_at)[1].split(";")[0]
    assert all(sentence in message for sentence in nothing.unanswered())
    assert "Custom::Whole" not in message


def test_off_lambda_lambda_entry_accepts_declared_answers_instead_of_handlers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_entry, "inside_lambda", lambda: False)
    declared = asynccfn.Resource("Custom::Declared", update="replace", delete="nothing")
    declared.create(_create)
    handler = asynccfn.lambda_entry(declared)
    assert handler.runtime.config.refusal is None  # type: ignore[attr-defined]
    handled = asynccfn.Resource("Custom::Handled")
    for register in (handled.create, handled.update, handled.delete):
        register(_create)
    assert asynccfn.lambda_entry(handled).runtime.config.refusal is None  # type: ignore[attr-defined]


def test_inside_lambda_lambda_entry_does_not_raise_and_says_why_it_refuses_once_at_init(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_entry, "inside_lambda", lambda: True)  # as Lambda sets it up
    half = asynccfn.Resource("Custom::Half")  # refused-inside
    half.create(_create)
    handler = asynccfn.lambda_entry(half)
    refusal = handler.runtime.config.refusal  # type: ignore[attr-defined]
    assert refusal is not None and refusal.unanswered == tuple(half.unanswered())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [said] = [line for line in lines if line["level"] == "ERROR"]
    assert said["message"] == refusal.reason
    assert f"tests/test_entry.py:{_line_of('refused-inside')} has no Update" in said["message"]


def test_resource_handlers_must_be_coroutines_and_set_once() -> None:
    resource = asynccfn.Resource("Custom::Thing")

    def not_async(request: asynccfn.Request, ctx: asynccfn.Context) -> None: ...

    with pytest.raises(asynccfn.ConfigurationError, match="async def"):
        resource.create(not_async)

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> None: ...

    with pytest.raises(asynccfn.ConfigurationError, match="already has a Create handler"):
        resource.create(create)


def test_retry_policy_validates_and_backs_off() -> None:
    with pytest.raises(asynccfn.ConfigurationError):
        asynccfn.RetryPolicy(max_attempts=0)
    policy = asynccfn.RetryPolicy(initial_delay=1, backoff=2, max_delay=3, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 3, 3]
    assert policy.should_retry(ValueError(), 1) and not policy.should_retry(ValueError(), 3)


def test_log_records_are_json_lines_carrying_the_operation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from asynccfn import _logging

    _logging.configure()
    with _logging.log_fields(requestType="Create", logicalResourceId="L", cfnRequestId="R"):
        with _logging.log_fields(invocation=2):
            _logging.logger.info("hello %s", "world")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "hello world" and line["level"] == "INFO"
    assert (line["requestType"], line["logicalResourceId"], line["cfnRequestId"]) == (
        "Create",
        "L",
        "R",
    )
    assert line["invocation"] == 2
