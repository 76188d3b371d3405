"""The wheel a user installs holds what ``asynccfn demo`` and ``asynccfn package`` need from
the package: the examples' modules and the property files beside them, and py.typed.

The wheel is built by the project's own build backend (setuptools, as pip or ``uv build``
would call it) from a copy of the sources, so the checkout is left as it was.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_BUILD = """
import sys
from setuptools import build_meta
print(build_meta.build_wheel(sys.argv[1]))
"""


def test_the_wheel_holds_the_examples_and_their_property_files(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "asynccfn", source / "asynccfn", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-c", _BUILD, str(dist)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = dist / built.stdout.splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())

    examples = ROOT / "asynccfn" / "examples"
    wanted = {
        f"asynccfn/examples/{p.name}" for p in examples.iterdir() if p.suffix in {".py", ".json"}
    }
    assert {
        "asynccfn/examples/__init__.py",
        "asynccfn/examples/backfill.json",
        "asynccfn/examples/dynamodb_table.update.json",
    } <= wanted
    assert wanted <= names, sorted(wanted - names)
    assert {"asynccfn/py.typed", "asynccfn/local/demo.py", "asynccfn/cli.py"} <= names
    # the installed package only: no tests, no benchmarks, no top-level examples folder
    assert not any(n.startswith(("tests/", "benchmarks/", "examples/")) for n in names)
