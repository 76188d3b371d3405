"""Journaled errors come back only as types that are safe to build: built-in exceptions,
botocore's ClientError, asynccfn's own and the types a Resource registers. The journal names a
type as text; nothing it names is imported."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import asynccfn
from asynccfn._journaled import rebuild_error
from asynccfn.journal.models import StepItem


class BucketError(Exception):
    """A handler's own error type."""


def failed_step(error_type: str | None, message: str = "it broke") -> StepItem:
    return StepItem(
        pk="op#x",
        sk="step#0#00001",
        name="work",
        kind="step",
        status="FAILED",
        attempt=1,
        op_attempt=1,
        started_at=0.0,
        invocation=1,
        fence=1,
        error_type=error_type,
        error_message=message,
    )


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A module on sys.path that leaves a file behind if it is ever imported."""
    name = f"asynccfn_canary_{tmp_path.name.replace('-', '_')}"
    marker = tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
        "class Boom(Exception):\n    pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield name, marker
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_a_type_of_an_unknown_module_comes_back_as_step_failed_without_an_import(
    canary: tuple[str, Path],
) -> None:
    module, marker = canary
    error = rebuild_error(failed_step(f"{module}:Boom", "kaboom"))
    assert isinstance(error, asynccfn.StepFailed)
    assert error.type_name == f"{module}:Boom" and error.message == "kaboom"
    assert error.reason == "Boom: kaboom"
    assert not marker.exists(), "rebuilding a journaled error imported the module it names"
    assert module not in sys.modules


@pytest.mark.parametrize(
    "error_type",
    [
        "os:system",
        "subprocess:Popen",
        "builtins:SystemExit",  # a BaseException, not an Exception
        "builtins:print",  # not a type at all
        "builtins:KeyError.__class__",
        "asynccfn._errors:HandOver",  # the runtime's signal, never a step's error
        "asynccfn.journal.query:OperationNotFound",  # asynccfn's, but not its error tree
        f"{BucketError.__module__}:BucketError",  # importable, but not registered
        "no-colon-at-all",
    ],
)
def test_types_outside_the_allowed_sets_come_back_as_step_failed(error_type: str) -> None:
    error = rebuild_error(failed_step(error_type))
    assert type(error) is asynccfn.StepFailed
    assert error.message == "it broke"


def test_builtins_asynccfn_errors_and_registered_types_are_rebuilt() -> None:
    key_error = rebuild_error(failed_step("builtins:KeyError", "missing"))
    assert type(key_error) is KeyError and key_error.args == ("missing",)
    assert type(rebuild_error(failed_step(None))) is Exception
    timeout = rebuild_error(failed_step("asynccfn._errors:WaitTimeout", "gave up"))
    assert type(timeout) is asynccfn.WaitTimeout and timeout.reason == "gave up"
    resource = asynccfn.Resource(errors=[BucketError])
    name = f"{BucketError.__module__}:BucketError"
    rebuilt = rebuild_error(failed_step(name, "no bucket"), resource.error_types)
    assert type(rebuilt) is BucketError and str(rebuilt) == "no bucket"


def test_a_journaled_aws_error_code_is_rebuilt_as_client_error() -> None:
    step = failed_step("botocore.exceptions:ClientError", "denied")
    step.error_code = "AccessDenied"
    error = rebuild_error(step)
    assert isinstance(error, ClientError)
    assert error.response["Error"] == {"Code": "AccessDenied", "Message": "denied"}


def test_a_registered_type_with_another_constructor_comes_back_as_step_failed() -> None:
    class Picky(Exception):
        def __init__(self, code: int, detail: str) -> None:
            super().__init__(code, detail)

    resource = asynccfn.Resource(errors=[Picky])
    name = f"{Picky.__module__}:{Picky.__qualname__}"
    error = rebuild_error(failed_step(name, "(1, 'x')"), resource.error_types)
    assert type(error) is asynccfn.StepFailed and error.type_name == name


@pytest.mark.parametrize("errors", [[int], [KeyboardInterrupt], ["ValueError"], ValueError])
def test_resource_errors_must_be_exception_subclasses(errors: object) -> None:
    with pytest.raises(asynccfn.ConfigurationError, match="errors"):
        asynccfn.Resource(errors=errors)  # type: ignore[arg-type]
