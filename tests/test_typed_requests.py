"""``Request[Props]`` is a generic the type checker follows: the typed examples pass
``mypy --strict``, and a handler that misreads its typed properties does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MISTAKES = """
from __future__ import annotations

import dataclasses

import asynccfn


@dataclasses.dataclass(frozen=True, kw_only=True)
class Props:
    Name: str
    Retries: int = 3


thing = asynccfn.Resource("Custom::Thing", properties=Props)


@thing.create
async def create(request: asynccfn.Request[Props], ctx: asynccfn.Context) -> asynccfn.Success:
    retries: str = request.properties.Retries
    request.properties.Colour
    request.properties["Name"]
    assert request.old_properties is not None
    return asynccfn.Success(physical_id=request.old_properties.Name)


@thing.delete
async def delete(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    name: str = request.properties["Name"]  # untyped: the raw mapping, as before
    return asynccfn.Success(physical_id=name)
"""


def mypy(*paths: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_typed_examples_pass_mypy_strict() -> None:
    checked = mypy("asynccfn/examples/dynamodb_table.py", "asynccfn/examples/backfill.py")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_mypy_follows_the_properties_type(tmp_path: Path) -> None:
    module = tmp_path / "mistakes.py"
    module.write_text(MISTAKES)
    checked = mypy(module)
    errors = [
        line.split(": error: ")[1] for line in checked.stdout.splitlines() if ": error: " in line
    ]
    assert errors == [
        'Incompatible types in assignment (expression has type "int", variable has type "str")'
        "  [assignment]",
        '"Props" has no attribute "Colour"  [attr-defined]',
        'Value of type "Props" is not indexable  [index]',
    ], checked.stdout
