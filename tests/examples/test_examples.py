"""The README's commands, run as a user types them: the demo and each example succeed, show
their hand-overs, and leave no process behind; the examples from a folder that is not a
clone's, through ``asynccfn demo NAME``, which is the ``asynccfn local`` command it prints.
And the README's example test passes."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from asynccfn import cli
from asynccfn._cli_demo import example_arguments
from asynccfn.examples import EXAMPLES
from tests.local_runner import support

README = support.ROOT / "README.md"


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def readme_command(start: str) -> list[str]:
    """The README's ``asynccfn`` command that begins with ``start`` (after any ``&&``)."""
    for block in readme_blocks("bash"):
        for line in block.splitlines():
            command = line.split("&&")[-1].strip()
            if command.startswith(start):
                return shlex.split(command, comments=True)
    raise AssertionError(f"the README has no command starting {start!r}")


def run_readme_command(start: str, cwd: Path = support.ROOT) -> str:
    args = readme_command(start)
    assert args[0] == "asynccfn"
    code, out, err, endpoint = support.run(*args[1:], timeout=120, cwd=cwd)
    assert code == 0, out + err
    assert err == "", err
    assert support.workers_of(endpoint) == [], "a Lambda worker outlived the command"
    return out


def test_the_readme_begins_with_install_and_demo() -> None:
    first = readme_blocks("bash")[0].splitlines()[0]
    assert first.split("#")[0].strip() == "pip install -e '.[local]' && asynccfn demo"


def test_demo() -> None:
    out = run_readme_command("asynccfn demo")
    # 5 reports of 0.8 s cannot fit in the 3.5 s a 5-second invocation works
    assert "invocation 2: claimed with hand-over token" in out
    assert '"Reports": "5"' in out
    assert out.splitlines()[-1] == "Create SUCCESS, Update SUCCESS, Delete SUCCESS"


def printed_local_command(out: str) -> list[str]:
    """The ``asynccfn local`` command ``asynccfn demo NAME`` said it runs; its property files
    exist wherever the package is installed."""
    line = next(line for line in out.splitlines() if line.startswith("  asynccfn local "))
    args = shlex.split(line)
    for arg in args:
        if arg.startswith("@"):
            assert Path(arg[1:]).is_absolute() and Path(arg[1:]).is_file(), arg
    return args


def test_dynamodb_table_example(tmp_path: Path) -> None:
    out = run_readme_command("asynccfn demo dynamodb-table", cwd=tmp_path)  # not a clone
    example = EXAMPLES["dynamodb-table"]
    assert printed_local_command(out) == [
        "asynccfn",
        "local",
        "asynccfn.examples.dynamodb_table:table",
        "--properties",
        f"@{example.properties}",
        "--update-properties",
        f"@{example.update_properties}",
        "--handover-every-step",
        "--lambda-timeout",
        "5",
    ]
    assert "handed over" in out
    assert '"Arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"' in out
    for action in ("CreateTable", "TagResource", "UpdateTimeToLive", "DeleteTable"):
        assert f"dynamodb:{action}" in out
    assert out.splitlines()[-1] == "Create SUCCESS, Update SUCCESS, Delete SUCCESS"


def test_backfill_example(tmp_path: Path) -> None:
    out = run_readme_command("asynccfn demo backfill", cwd=tmp_path)  # not a clone
    assert printed_local_command(out)[2:4] == [
        "asynccfn.examples.backfill:backfill",
        "--properties",
    ]
    # 7 pauses of 0.6 s cannot fit in the 3.5 s a 5-second invocation works
    assert "invocation 2: claimed with hand-over token" in out
    assert '"Copied": "160"' in out and '"Pages": "8"' in out
    assert out.splitlines()[-1] == "Create SUCCESS, Delete SUCCESS"


def test_the_readme_example_test_passes() -> None:
    block = next(b for b in readme_blocks("python") if "asynccfn.testing" in b)
    namespace: dict[str, object] = {}
    exec(compile(block, str(README), "exec"), namespace)
    test = namespace["test_table_life"]
    assert callable(test)
    test()


def demo_args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["demo", *argv])


def test_an_example_is_the_local_command_with_the_demos_run_options() -> None:
    given = ("--lambda-timeout", "7.5", "--env", "A=1", "--env", "B=x=y", "--keep", "--replay")
    demo = demo_args("backfill", *given)
    argv = example_arguments(EXAMPLES["backfill"], demo)
    assert argv == [
        "asynccfn.examples.backfill:backfill",
        "--properties",
        f"@{EXAMPLES['backfill'].properties}",
        *given[:2],
        "--keep",
        "--env",
        "A=1",
        "--env",
        "B=x=y",
        "--replay",
    ]
    local = cli.build_parser().parse_args(["local", *argv])
    for name, value in vars(demo).items():
        if name not in ("example", "list", "run"):
            assert getattr(local, name) == value, name
    # an example's own flag is given once, whether the user gives it too or not
    for extra in ((), ("--handover-every-step",)):
        argv = example_arguments(EXAMPLES["dynamodb-table"], demo_args("dynamodb-table", *extra))
        assert argv.count("--handover-every-step") == 1
        assert argv[-2:] == ["--lambda-timeout", "5"]  # the demo's, not asynccfn local's 900


def test_demo_list_and_help_name_every_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--list"]) == 0
    out = capsys.readouterr().out
    for name, resource in [("reports", "asynccfn.local.demo:demo")] + [
        (e.name, e.resource) for e in EXAMPLES.values()
    ]:
        assert re.search(rf"^{name} +{re.escape(resource)}$", out, flags=re.MULTILINE), out
    assert cli.main(["demo", "--help"]) == 0
    assert "reports, dynamodb-table, backfill" in capsys.readouterr().out
    assert cli.main(["demo", "no-such-example"]) == 2
    assert "invalid choice: 'no-such-example'" in capsys.readouterr().err
