"""The README's commands, run as a user types them from the repository's root: the demo and
each example succeed, show their hand-overs, and leave no process behind; and the README's
example test passes."""

from __future__ import annotations

import re
import shlex

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


def run_readme_command(start: str) -> str:
    args = readme_command(start)
    assert args[0] == "asynccfn"
    code, out, err, endpoint = support.run(*args[1:], timeout=120)
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


def test_dynamodb_table_example() -> None:
    out = run_readme_command("asynccfn local asynccfn.examples.dynamodb_table:table")
    assert "handed over" in out
    assert '"Arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"' in out
    for action in ("CreateTable", "TagResource", "UpdateTimeToLive", "DeleteTable"):
        assert f"dynamodb:{action}" in out
    assert out.splitlines()[-1] == "Create SUCCESS, Update SUCCESS, Delete SUCCESS"


def test_backfill_example() -> None:
    out = run_readme_command("asynccfn local asynccfn.examples.backfill:backfill")
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
