"""Nothing in the project reads a path outside its own tree: a clone into an empty folder is
all it needs.

The scan is textual, so it reads a reference the most generous way that still matters: a
``Path(__file__)`` climb counted from the file, a relative ``..`` path counted from the file's
own folder, and an absolute path under a folder where checkouts live (or the one this checkout
sits in).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("asynccfn", "tests", "benchmarks")

# Spelled in pieces so that this file does not match its own patterns.
_HOMES = tuple("/" + name + "/" for name in ("work", "home", "Users"))
_UP = "." + "."

_FILE_CLIMB = re.compile(
    r"Path\(\s*__file__\s*\)(?:\.(?:resolve|absolute)\(\))*"
    r"(?P<chain>(?:\.parent\b(?!s)|\.parents\[\s*\d+\s*\])+)"
    r"(?P<ups>(?:\s*/\s*[\"']\.\.[\"'])*)"
)
_DIRNAME_CLIMB = re.compile(
    r"(?P<dirnames>(?:os\.path\.dirname\(\s*)+)(?:os\.path\.(?:abspath|realpath)\(\s*)?__file__"
)
_STRING = re.compile(r"\"([^\"\n]*)\"|'([^'\n]*)'|`([^`\n]*)`|\]\(([^)\s]*)\)")


def _climb_of(chain: str, ups: str) -> int:
    """How many folders a ``.parent``/``.parents[N]`` chain and trailing ``/ ".."``s climb."""
    levels = chain.count(".parent") - chain.count(".parents[")
    levels += sum(int(n) + 1 for n in re.findall(r"\.parents\[\s*(\d+)\s*\]", chain))
    return levels + ups.count(_UP)


def _deepest_climb(path: str) -> int:
    """How far above its starting folder a relative path reaches at its deepest point."""
    depth = lowest = 0
    for part in re.split(r"[/\\]", path):
        if part == _UP:
            depth -= 1
            lowest = min(lowest, depth)
        elif part not in ("", "."):
            depth += 1
    return -lowest


def _absolute_prefixes() -> tuple[str, ...]:
    beside = ROOT.parent
    ordinary = {Path("/"), Path("/tmp"), Path(tempfile.gettempdir()).resolve()}
    return _HOMES if beside in ordinary else (*_HOMES, f"{beside}/")


def climbs_out(relative: PurePosixPath, text: str) -> list[tuple[int, str]]:
    """The lines of ``text`` (the file at ``relative`` in the repository) that refer to a
    path above the repository's root, as (line number, line)."""
    folders = len(relative.parts) - 1
    absolute = re.compile(
        r"(?<![\w./:])(?:" + "|".join(re.escape(p) for p in _absolute_prefixes()) + ")"
    )
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        climbs = [
            _climb_of(m["chain"], m["ups"]) > len(relative.parts)
            for m in _FILE_CLIMB.finditer(line)
        ]
        climbs += [
            m["dirnames"].count("dirname") > len(relative.parts)
            for m in _DIRNAME_CLIMB.finditer(line)
        ]
        climbs += [
            _deepest_climb(next(g for g in m.groups() if g is not None)) > folders
            for m in _STRING.finditer(line)
        ]
        if any(climbs) or absolute.search(line):
            found.append((number, line.strip()))
    return found


def _project_files() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            parts = path.relative_to(ROOT).parts
            if path.is_file() and not any(p == "__pycache__" or p.startswith(".") for p in parts):
                yield path


def test_no_project_file_refers_to_a_path_above_the_repository_root() -> None:
    found = []
    for path in _project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        relative = PurePosixPath(path.relative_to(ROOT).as_posix())
        found += [f"{relative}:{n}: {line}" for n, line in climbs_out(relative, text)]
    assert found == [], "\n".join(found)


def test_the_request_fixtures_are_in_the_repository() -> None:
    from tests.support import FIXTURES

    assert FIXTURES.is_relative_to(ROOT)
    assert sorted(p.name for p in FIXTURES.iterdir()) == [
        "README.md",
        "create.json",
        "delete.json",
        "update.json",
    ]


UP2 = "/".join([_UP, _UP])
HOME = _HOMES[0]
HERE = "Path(__" + "file__)"
DIRNAME = "os.path." + "dirname("


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ("tests/support.py", f'F = {HERE}.resolve().parents[2] / "outside" / "fixtures" / "cfn"'),
        ("tests/support.py", f"F = {HERE}.parent.parent.parent"),
        ("tests/support.py", f'F = {HERE}.parents[1] / "{_UP}" / "outside"'),
        ("benchmarks/_report.py", f"F = {DIRNAME * 3}__file__)))"),
        ("tests/support.py", f'F = Path("{UP2}/outside/fixtures/cfn")'),
        ("tests/fixtures/cfn/README.md", f"see [the events]({UP2}/{UP2}/outside/README.md)"),
        ("examples/x.py", f'F = "{HOME}outside/fixtures/cfn/create.json"'),
        ("asynccfn/x.py", f"F = Path('{HOME}someone/checkout')"),
    ],
)
def test_the_scan_finds_a_path_above_the_root(where: str, line: str) -> None:
    assert climbs_out(PurePosixPath(where), f"x = 1\n{line}\n") == [(2, line)]


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ("tests/support.py", f'F = {HERE}.resolve().parent / "fixtures" / "cfn"'),
        ("tests/local_runner/support.py", f"ROOT = {HERE}.resolve().parents[2]"),
        ("tests/local_runner/support.py", f"ROOT = {HERE}.parent.parent.parent"),
        ("benchmarks/_report.py", f"F = {DIRNAME * 2}__file__))"),
        ("tests/local_runner/README.md", f"see [the README]({UP2}/README.md)"),
        ("tests/e2e/functions/app.py", 'RUN_DIR = Path(os.environ.get("RUN_DIR", "/tmp"))'),
        ("tests/test_x.py", 'main(["--properties", "@/no/such/file.json"])'),
        ("tests/test_x.py", 'URL = "https://example.com/home/index.html"'),
        ("asynccfn/x.py", 'print("...", f"{a}..{b}", "a/../b")'),
        ("asynccfn/x.py", 'CACHE = Path("~/.cache/asynccfn").expanduser()'),
    ],
)
def test_the_scan_leaves_paths_inside_the_root(where: str, line: str) -> None:
    assert climbs_out(PurePosixPath(where), line) == []
