"""``asynccfn local``: one clear line for what the user got wrong, every process stopped."""

from __future__ import annotations

import inspect
import re
import signal
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from asynccfn.cli import main
from tests.local_runner import mistakes, resources, support

RESOURCES = "tests.local_runner.resources"


def _raise_line(fn: Callable[..., Any] | ModuleType, text: str) -> int:
    """The line of ``fn``'s (or a module's) source holding ``text``."""
    lines, first = inspect.getsourcelines(fn)
    return max(first, 1) + next(i for i, source in enumerate(lines) if text in source)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("no_such_module:thing", "cannot import module 'no_such_module'"),
        (f"{RESOURCES}:missing", f"module '{RESOURCES}' has no attribute 'missing'"),
        (f"{RESOURCES}:NOT_A_RESOURCE", "is a str, not an asynccfn.Resource"),
        ("tests.local_runner.broken_module:x", "RuntimeError: boom at import"),
        ("just-a-name", "is not MODULE:RESOURCE"),
    ],
)
def test_a_bad_module_path_is_one_clear_line(
    spec: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", spec]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("asynccfn: ") and says in err, err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("{not json", "not valid JSON: Expecting property name"),
        ("[1, 2]", "must be a JSON object of properties, not list"),
        ("@/no/such/file.json", "cannot read /no/such/file.json"),
    ],
)
def test_bad_json_properties_are_one_clear_line(
    value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", f"{RESOURCES}:counting", "--properties", value]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "--properties" in err and says in err, err


def test_a_failing_handler_is_one_clear_line_and_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--color", "never", "local", f"{RESOURCES}:failing"])
    out, err = capsys.readouterr()
    assert code == 3, out + err
    line = _raise_line(resources.fail, "raise RuntimeError")
    assert err == (
        "asynccfn: Create answered FAILED: RuntimeError: the widget is broken "
        f"(at tests/local_runner/resources.py:{line} in fail)\n"
    )
    # the handler's traceback, its own frame shown and asynccfn's folded; no CloudWatch
    assert f'resources.py", line {line}, in fail' in out, out
    assert 'raise RuntimeError("the widget is broken")' in out, out
    assert " of asynccfn and asyncio" in out and "_runtime.py" not in out, out
    assert "! failing the operation: RuntimeError: the widget is broken (at " in out, out
    assert "log stream" not in out.split("Response")[0], out
    # CloudFormation's rollback: the Delete of what the failed Create reported
    assert "◀ Create: FAILED" in out and "◀ Delete (rollback): SUCCESS" in out
    assert '"Status": "FAILED"' in out and "Timeline (UTC)" in out


# SIG_IGN is how a background job of a shell script starts; a SIGINT must still stop it.
@pytest.mark.parametrize("sigint", [signal.SIG_DFL, signal.SIG_IGN], ids=["default", "ignored"])
def test_ctrl_c_stops_every_process_it_started(sigint: signal.Handlers) -> None:
    command = support.start("local", f"{RESOURCES}:slow", "--lambda-timeout", "3", sigint=sigint)
    try:
        command.wait_for("invocation 1: claimed")
        endpoint = command.lambda_endpoint
        assert support.workers_of(endpoint), "the run's Lambda workers should be running"
        command.process.send_signal(signal.SIGINT)
        code, out, err = command.finish(timeout=60)
    finally:
        command.stop()
    assert code == 130 and err.strip() == "asynccfn: interrupted", (out, err)
    assert support.workers_of(endpoint) == []


def test_keep_leaves_the_journal_queryable_until_ctrl_c() -> None:
    from asynccfn.journal import Journal

    command = support.start("local", f"{RESOURCES}:counting", "--keep", sigint=signal.SIG_IGN)
    try:
        command.wait_for("Serving it until Ctrl-C.")
        kept = command.wait_for("asynccfn journal list")
        args = kept.split()
        table = args[args.index("--table") + 1]
        endpoint = args[args.index("--endpoint-url") + 1]
        journal = Journal(table, region="us-east-1", endpoint_url=endpoint)
        operations = list(journal.iter_operations())
        assert sorted(op.request_type.value for op in operations) == ["Create", "Delete"]
        assert support.workers_of(command.lambda_endpoint) == []  # the function is gone already
        command.process.send_signal(signal.SIGINT)
        code, out, err = command.finish(timeout=60)
    finally:
        command.stop()
    assert code == 0, (out, err)


def test_a_single_update_is_sent_and_replayed(capsys: pytest.CaptureFixture[str]) -> None:
    properties = ["--properties", '{"Steps": 1}', "--update-properties", '{"Steps": 2}']
    single = ["--request-type", "update", "--physical-id", "counting", "--replay"]
    code = main(["--color", "never", "local", f"{RESOURCES}:counting", *properties, *single])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", out + err
    assert "▶ Update" in out and "▶ Update, replayed" in out and "▶ Create" not in out
    assert '"Done": "2"' in out
    assert "every step came from the journal; the same response" in out
    assert out.splitlines()[-1] == "Update SUCCESS"


def test_ctrl_c_stops_the_demo_started_with_sigint_ignored() -> None:
    command = support.start("demo", sigint=signal.SIG_IGN)
    try:
        command.wait_for("invocation 1: claimed")
        endpoint = command.lambda_endpoint
        command.process.send_signal(signal.SIGINT)
        code, out, err = command.finish(timeout=60)
    finally:
        command.stop()
    assert code == 130 and err.strip() == "asynccfn: interrupted", (out, err)
    assert support.workers_of(endpoint) == []


def test_kms_key_encrypts_the_journal_in_moto_and_prints_no_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.local_runner.secretive import SECRET

    spec = "tests.local_runner.secretive:handler"
    options = ["--kms-key", "--handover-every-step", "--request-type", "Create"]
    code = main(["--color", "never", "local", spec, *options])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "journal secrets encrypted under arn:aws:kms:us-east-1:" in out
    assert "fetch-password" in out and '"Password": "****"' in out
    assert SECRET not in out + err


MISTAKES = "tests.local_runner.mistakes"


def test_a_resource_without_an_update_handler_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["local", f"{MISTAKES}:no_update"]) == 1
    out, err = capsys.readouterr()
    line = _raise_line(mistakes, 'no_update = asynccfn.Resource("Custom::NoUpdate")')
    assert err.count("\n") == 1 and err.startswith("asynccfn: "), err
    assert f"Custom::NoUpdate defined at tests/local_runner/mistakes.py:{line} has no Update" in err
    assert 'update="replace"' in err and "Delete" not in err.split("has no Update")[1], err
    assert "journal" not in out  # refused before any server started


def test_update_replace_creates_a_replacement_and_the_old_one_is_deleted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "local",
            f"{MISTAKES}:replaced",
            "--properties",
            '{"Name": "first"}',
            "--update-properties",
            '{"Name": "second"}',
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "◀ Update: SUCCESS  physical id second" in out, out
    assert "◀ Delete (replaced): SUCCESS  physical id first" in out, out
    assert "◀ Delete: SUCCESS  physical id second" in out, out


def test_a_forgotten_return_is_a_warning_naming_the_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["local", f"{MISTAKES}:forgetful_return"])
    out, err = capsys.readouterr()
    assert code == 0, out + err  # CloudFormation gets SUCCESS, as in production
    line = inspect.getsourcelines(mistakes.create_without_return)[1]
    assert (
        "! the Create handler create_without_return "
        f"(tests/local_runner/mistakes.py:{line}) returned None"
    ) in out, out


def test_functions_given_to_parallel_fail_saying_what_to_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["local", f"{MISTAKES}:uncalled"])
    out, err = capsys.readouterr()
    assert code == 3, out + err
    line = _raise_line(mistakes.create_in_parallel, "ctx.parallel(fetch_a, fetch_b)")
    assert "branch 1 is the function fetch_a" in err and "ctx.parallel(fetch_a(...), ...)" in err
    assert f"(at tests/local_runner/mistakes.py:{line} in create_in_parallel)" in err, err


def test_the_cli_sends_properties_as_strings_and_raw_on_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    props = '{"Count": 5, "Flag": true}'
    assert (
        main(["local", f"{MISTAKES}:echo", "--request-type", "Create", "--properties", props]) == 0
    )
    out, _ = capsys.readouterr()
    assert '"Seen": "{\\"Count\\": \\"5\\", \\"Flag\\": \\"true\\"}"' in out, out
    assert (
        main(
            [
                "local",
                f"{MISTAKES}:echo",
                "--request-type",
                "Create",
                "--raw-properties",
                "--properties",
                props,
            ]
        )
        == 0
    )
    out, _ = capsys.readouterr()
    assert '"Seen": "{\\"Count\\": 5, \\"Flag\\": true}"' in out, out


def test_a_blocked_event_loop_is_named_with_the_users_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["local", f"{MISTAKES}:blocking", "--request-type", "Create"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    line = _raise_line(mistakes.create_blocking, "time.sleep(2)")
    assert "! the event loop has been blocked for 1." in out, out
    assert f"by create_blocking at tests/local_runner/mistakes.py:{line}:" in out, out
    assert out.count("the event loop has been blocked") == 1, out  # once per invocation
    assert "belongs in ctx.step(name, fn, ...)" in out, out
    timeline = out[out.index("Timeline (UTC)") :]  # the journal's timeline says it too
    assert "event loop blocked over 1." in timeline, timeline
    assert f"s by create_blocking at tests/local_runner/mistakes.py:{line}" in timeline, timeline


def test_a_loop_blocked_past_the_lambda_timeout_is_named_and_the_stack_still_answered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each attempt is killed by its timeout while the loop is blocked: each says so with the
    user's line; Lambda's retries come once the killed attempt's lease has run out, and its
    on-failure record answers FAILED (it used to meet a live lease at every retry and leave
    the stack unanswered)."""
    spec = f"{MISTAKES}:blocking_past_timeout"
    code = main(
        ["--color", "never", "local", spec, "--request-type", "Create", "--lambda-timeout", "2"]
    )
    out, err = capsys.readouterr()
    assert code == 3, out + err  # answered FAILED
    line = _raise_line(mistakes.create_blocking_long, "time.sleep(4)")
    warning = f"by create_blocking_long at tests/local_runner/mistakes.py:{line}:"
    assert out.count("the event loop has been blocked for 1.") == 3, out  # one per attempt
    assert out.count(warning) == 3, out
    assert "belongs in ctx.step(name, fn, ...)" in out, out
    said = out + err
    assert "answered FAILED: Lambda gave up on the operation (RetriesExhausted) after 3 " in said
    assert "the last one failed with Sandbox.Timedout" in said, said
    assert "never answered" not in said, said


def test_a_step_the_replay_never_asked_for_is_a_divergence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = "tests.local_runner.mistakes:extra_step"
    code = main(["--color", "never", "local", spec, "--request-type", "create", "--replay"])
    out, err = capsys.readouterr()
    assert code == 3, out + err
    assert "every step came from the journal" not in out
    assert "Replay differed" in out and "'announce' at position" in out, out
    timeline_event = (
        r"\d\d:\d\d:\d\d\.\d{3}\s+finished without asking for journaled steps: 'announce'"
    )
    assert re.search(timeline_event, out), out  # the timeline's event too
    assert "Create replayed differently: the replay finished without asking" in err, err


PROVIDER = "tests.local_runner.provider_resources"


def test_a_stack_of_a_providers_resources_feeds_one_resources_data_to_the_next(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "local",
            f"{PROVIDER}:provider",
            "--resource",
            f"Orders={PROVIDER}:queue",
            "--resource",
            f"Sub={PROVIDER}:subscription",
            "--properties",
            'Orders={"QueueName": "orders", "Fifo": true}',
            "--properties",
            'Sub={"QueueArn": {"Fn::GetAtt": ["Orders", "Arn"]}, "MaxMessages": 5}',
            "--color",
            "never",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0 and err == "", out + err
    arn = "arn:aws:sqs:us-east-1:123456789012:orders.fifo"
    assert f'properties   {{"MaxMessages": "5", "QueueArn": "{arn}"}}' in out, out
    assert f'"Subscribed": "{arn}"' in out, out
    assert out.splitlines()[-1] == (
        "Create Orders SUCCESS, Create Sub SUCCESS, Delete Sub SUCCESS, Delete Orders SUCCESS"
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--resource", "Orders"], "is not LOGICAL_ID=MODULE:RESOURCE"),
        (
            ["--resource", f"A={PROVIDER}:queue", "--resource", f"A={PROVIDER}:queue"],
            "logical id A given twice",
        ),
        (["--resource", f"A={PROVIDER}:queue", "--properties", "B={}"], "no --resource names"),
        (["--resource", f"A={PROVIDER}:provider"], "name one of the Provider's resources"),
        (["--resource", f"A={PROVIDER}:queue", "--replay"], "--replay is for one resource"),
        (["--resource", f"A={PROVIDER}:queue", "--properties", "{}"], "--properties ID=JSON"),
        (["--properties", "A={}"], "is for a stack of --resource"),
    ],
)
def test_a_bad_stack_is_one_clear_line_before_anything_starts(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", f"{PROVIDER}:provider", *args]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and says in err, err
    assert out == "", out
