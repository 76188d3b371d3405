"""``asynccfn package``: the demo's zip, built from this environment for this interpreter,
unpacked into an empty folder, runs its Create, Update and Delete under the local Lambda
service from that folder alone (the worker's interpreter started without site-packages, with
awslambdaric beside it as Lambda's runtime provides it); its size stays within a budget; a
build for another platform is the pip command Lambda's wheels need."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from asynccfn import cli
from asynccfn.local.demo import CREATE_PROPERTIES, UPDATE_PROPERTIES
from asynccfn.local.stack import LocalStack, StackConfig

ROOT = Path(__file__).resolve().parents[2]
ZIPPED_BUDGET = 10 * 1000 * 1000  # today 8.1 MB with its bytecode
UNZIPPED_BUDGET = 25 * 1024 * 1024  # today 17.6 MB; Lambda allows 250


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _lambda_runtime(into: Path) -> Path:
    """What Lambda's Python runtime provides beside the function's code (its /var/runtime):
    awslambdaric and its dependencies, copied from this environment."""
    for name in ("awslambdaric", "simplejson", "snapshot-restore-py"):
        dist = importlib.metadata.distribution(name)
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if ".." in Path(str(file)).parts or not source.is_file():
                continue
            (into / str(file)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / str(file))
    return into


def _bare_python(tmp_path: Path, runtime: Path) -> str:
    """An interpreter with no site-packages at all (``-S``): only PYTHONPATH, which the
    local Lambda service sets to the task root, and the runtime folder after it."""
    script = tmp_path / "python"
    base = getattr(sys, "_base_executable", sys.executable)
    script.write_text(f'#!/bin/sh\nPYTHONPATH="$PYTHONPATH:{runtime}" exec {base} -S "$@"\n')
    script.chmod(0o755)
    return str(script)


def test_the_demo_package_runs_its_life_from_an_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    output = tmp_path / "provider.zip"
    code, out, err = _run(capsys, "package", "asynccfn.local.demo:demo", "-o", str(output))
    assert code == 0, err
    assert "botocore data removed" in out and "% of Lambda's 250 MB" in out
    assert "handler asynccfn_handler.handler" in out
    assert output.stat().st_size < ZIPPED_BUDGET

    task = tmp_path / "task"
    task.mkdir()
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
        unzipped = sum(info.file_size for info in archive.infolist())
        archive.extractall(task)
    assert unzipped < UNZIPPED_BUDGET
    # no local runner, CLI, examples, tests or caches; botocore's data only for the services used
    left_out = ("asynccfn/local/", "asynccfn/_cli_", "asynccfn/examples/", "tests/")
    assert not any(n.startswith(left_out) for n in names)
    assert not any(n.split("/")[1:2] == ["tests"] for n in names)  # aioitertools/tests/...
    assert "aioitertools/__init__.py" in names
    assert "asynccfn/cli.py" not in names and "asynccfn/testing.py" not in names
    # bytecode for this Python only (Lambda's folder is read-only: no compiling at cold start)
    tag = sys.implementation.cache_tag
    compiled = [n for n in names if n.endswith(".pyc")]
    assert compiled and all("__pycache__/" in n and f".{tag}." in n for n in compiled)
    assert "asynccfn/__pycache__/_runtime." + tag + ".pyc" in names
    assert not any(n.startswith(("awslambdaric", "moto/", "pytest")) for n in names)
    services = {
        n.split("/")[2] for n in names if n.startswith("botocore/data/") and n.count("/") > 3
    }
    assert services == {"dynamodb", "lambda", "s3", "sts"}
    assert {"demo.py", "asynccfn_handler.py", "aiobotocore/__init__.py"} <= set(names)

    python = _bare_python(tmp_path, _lambda_runtime(tmp_path / "runtime"))
    config = StackConfig(
        resource="asynccfn.local.demo:demo",
        handler="asynccfn_handler.handler",
        python=python,
        code_paths=[str(task)],
        lambda_timeout=30,
        stack_name="asynccfn-package",
    )
    with LocalStack(config) as stack:
        runs = stack.lifecycle(
            {**CREATE_PROPERTIES, "SecondsPerReport": 0},
            {**UPDATE_PROPERTIES, "SecondsPerReport": 0},
        )
    assert [(run.label, run.status) for run in runs] == [
        ("Create", "SUCCESS"),
        ("Update", "SUCCESS"),
        ("Delete", "SUCCESS"),
    ], [run.reason for run in runs]
    assert runs[0].data["Reports"] == "5"


def test_an_example_is_packaged_from_any_folder_as_the_users_code_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no clone: the example comes from the installed package
    output = tmp_path / "provider.zip"
    spec = "asynccfn.examples.dynamodb_table:table"
    code, _, err = _run(capsys, "package", spec, "-o", str(output))
    assert code == 0, err
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
        entry = archive.read("asynccfn_handler.py").decode()
    # the example is the user's module, at the top as the demo is; the other examples and
    # asynccfn's own copy of them stay out
    assert "dynamodb_table.py" in names and "import dynamodb_table as _module" in entry
    assert not any(n.startswith("asynccfn/examples/") for n in names)
    assert "backfill.py" not in names and "asynccfn/_runtime.py" in names


def test_another_platform_is_built_by_pip_with_lambdas_wheels(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = _run(
        capsys,
        "package",
        "asynccfn.examples.backfill:backfill",
        "--python",
        "3.12",
        "--arch",
        "arm64",
        "--plan",
    )
    assert code == 0, err
    command = out.split()
    assert command[1:4] == ["-m", "pip", "install"]
    for flag, value in (
        ("--platform", "manylinux2014_aarch64"),
        ("--python-version", "3.12"),
        ("--implementation", "cp"),
        ("--target", "TARGET"),
    ):
        assert command[command.index(flag) + 1] == value
    assert "--only-binary=:all:" in command
    assert {"aiobotocore>=2.13", "aiohttp>=3.10"} <= set(command)
    assert not any(word.startswith(("awslambdaric", "moto", "cryptography")) for word in command)
    # the example's typed properties are a msgspec.Struct: its function imports msgspec
    assert f"msgspec=={importlib.metadata.version('msgspec')}" in command


def test_what_the_users_code_imports_is_shipped_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Imports anywhere in the user's code (here inside a handler, which loading the module
    does not run), KmsCodec's cryptography, and --with; not the standard library's."""
    (tmp_path / "kms_app.py").write_text(
        "import json\n"
        "import asynccfn\n\n"
        'resource = asynccfn.Resource("Custom::Kms", update="replace", delete="nothing")\n\n\n'
        "@resource.create\n"
        "async def create(request, ctx):\n"
        "    import msgspec  # only when a Create runs\n\n"
        '    return asynccfn.Success(physical_id=json.dumps(msgspec.json.decode(b"1")))\n\n\n'
        "handler = asynccfn.lambda_entry(\n"
        '    resource, journal="t",\n'
        '    codec=asynccfn.KmsCodec("arn:aws:kms:us-east-1:123456789012:key/k"),\n'
        ")\n"
    )
    monkeypatch.chdir(tmp_path)
    argv = ["package", "kms_app:handler", "--python", "3.12", "--arch", "arm64", "--plan"]
    code, out, err = _run(capsys, *argv, "--with", "idna>=3")
    assert code == 0, err
    command = out.split()
    for name in ("msgspec", "cryptography"):
        assert f"{name}=={importlib.metadata.version(name)}" in command, command
    assert "idna>=3" in command and not any(w.startswith("json") for w in command)
    output = tmp_path / "provider.zip"
    code, _, err = _run(capsys, "package", "kms_app:handler", "-o", str(output))
    assert code == 0, err
    with zipfile.ZipFile(output) as archive:
        names = set(archive.namelist())
    assert "msgspec/__init__.py" in names and "cryptography/__init__.py" in names


def test_a_package_past_lambdas_limit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from asynccfn import _cli_package

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(_cli_package, "UNZIPPED_LIMIT", 1024 * 1024)
    output = tmp_path / "big.zip"
    code, _, err = _run(
        capsys, "package", "asynccfn.examples.dynamodb_table:table", "-o", str(output)
    )
    assert code == 1
    assert "past Lambda's 1.0 MB" in err and not output.exists()


@pytest.mark.parametrize("command", ["package", "template"])
def test_a_resource_without_an_answer_for_every_request_is_not_deployed(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its function would refuse every request on Lambda: said here, with the user's line."""
    (tmp_path / "half_app.py").write_text(
        "import asynccfn\n\n"
        'half = asynccfn.Resource("Custom::Half")\n\n\n'
        "@half.create\n"
        "async def create(request, ctx):\n"
        '    return asynccfn.Success(physical_id="half")\n'
    )
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "provider.zip"
    options = ["-o", str(output)] if command == "package" else []
    code, out, err = _run(capsys, command, "half_app:half", *options)
    assert code == 1 and out == "", out
    assert "defined at half_app.py:3 has no Update handler" in err, err
    assert "has no Delete handler" in err and not output.exists()


def test_a_pip_built_folder_loses_the_packages_own_tests_and_nothing_else(tmp_path: Path) -> None:
    from asynccfn._cli_package import drop_test_suites

    for name in ("aioitertools/tests/test_x.py", "aioitertools/__init__.py", "tests/mine.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "data/tests").mkdir(parents=True)  # not a package: kept
    drop_test_suites(tmp_path)
    assert not (tmp_path / "aioitertools/tests").exists()
    assert (tmp_path / "aioitertools/__init__.py").is_file()
    assert (tmp_path / "tests/mine.py").is_file() and (tmp_path / "data/tests").is_dir()
