"""The README's first example runs as a new user copies it: nothing it calls is left undefined."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asynccfn.testing import run_resource

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readmes_first_example_runs_its_whole_life(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert first is not None and "asynccfn.Resource(" in first[1]
    (tmp_path / "readme_bucket.py").write_text(first[1], encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))  # where a user runs it from
    life = run_resource(
        "readme_bucket:bucket",
        properties={"BucketName": "readme-first", "Owner": "me"},
        update_properties={"BucketName": "readme-second", "Owner": "me"},
        always_replay=True,
    )
    assert [run.label for run in life] == ["Create", "Update", "Delete (replaced)", "Delete"]
    assert life.ok, life.failures
    assert life.create.data == {"Arn": "arn:aws:s3:::readme-first"}
    assert life.update.physical_id == "readme-second"
    assert [step.name for step in life.create.steps] == ["s3:CreateBucket", "exists", "tag"]
