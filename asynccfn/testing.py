"""Run a custom resource through its life in your own tests, on the machinery of
``asynccfn local``: moto's server, the journal, and the local Lambda service running the
handler under awslambdaric in worker processes, with the function's environment pointed at
moto for every AWS API (nothing reaches a real account)::

    from asynccfn.testing import run_resource

    def test_table_life() -> None:
        life = run_resource(
            "myproject.table:table",                 # or the Resource object itself
            properties={"TableName": "orders"},
            update_properties={"TableName": "orders", "Tags": {"team": "data"}},
            handover_every_step=True,                # every step reached through replay
            always_replay=True,                      # each operation replayed once more
        )
        assert [run.label for run in life] == ["Create", "Update", "Delete"]
        assert life.ok, life.failures
        assert life.create.data["TableName"] == "orders"
        assert [step.name for step in life.create.steps][:1] == ["dynamodb:CreateTable"]

``handover_every_step`` makes each invocation hand over right after its first recorded step,
so the code between steps runs again in replay in a new process, as after any real
hand-over. ``always_replay`` then sends every request once more as a new attempt, which keeps
the journal: the handler must take every step from it and answer the same. A handler that
asks for different steps on replay (reading the world outside a step, say) raises
:class:`ReplayDivergence`, as does one the runtime failed for non-determinism.

The progress and each operation's timeline are printed as ``asynccfn local`` prints them;
pytest shows them when a test fails.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import JournalError
from ._protocol import RequestType
from ._resource import Resource
from .local._env import LocalServerError
from .local._loader import ResourceSpecError, locate
from .local._runs import QuietWatcher, Watcher
from .local.stack import DYNAMODB_LOCAL, LocalStack, NoResponse, OperationRun, Replay, StackConfig

if TYPE_CHECKING:
    from .journal.query import OperationDetail
    from .local._records import InvocationRecord

__all__ = [
    "DYNAMODB_LOCAL",
    "HandlerReturnedNone",
    "JournalError",
    "Life",
    "LocalServerError",
    "NoResponse",
    "OperationRun",
    "Replay",
    "ReplayDivergence",
    "ResourceSpecError",
    "run_resource",
]


class HandlerReturnedNone(AssertionError):
    """A handler returned None (a ``return`` forgotten, usually), which answers SUCCESS with
    no Data; ``run_resource(..., allow_none=True)`` accepts it."""


class ReplayDivergence(AssertionError):
    """The handler did not replay its journal faithfully: it asked for other steps than the
    journal holds, ran steps again, or answered differently."""


@dataclass(frozen=True, slots=True)
class Life:
    """The requests of one run, in the order they were sent (iterable)."""

    runs: tuple[OperationRun, ...]

    def __iter__(self) -> Iterator[OperationRun]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def ok(self) -> bool:
        """Every response was SUCCESS."""
        return all(run.ok for run in self.runs)

    @property
    def failures(self) -> list[str]:
        """``label: reason`` of each FAILED response (for an assertion's message)."""
        return [f"{run.label}: {run.reason}" for run in self.runs if not run.ok]

    @property
    def create(self) -> OperationRun:
        """The Create. Raises ``LookupError`` when none was sent."""
        return self._first("Create")

    @property
    def update(self) -> OperationRun:
        """The first Update. Raises ``LookupError`` when none was sent."""
        return self._first("Update")

    @property
    def delete(self) -> OperationRun:
        """The last Delete (the stack's own, after any rollback or replacement). Raises
        ``LookupError`` when none was sent."""
        deletes = [run for run in self.runs if run.request_type is RequestType.DELETE]
        if not deletes:
            raise LookupError("no Delete was sent")
        return deletes[-1]

    def _first(self, request_type: str) -> OperationRun:
        for run in self.runs:
            if run.request_type.value == request_type:
                return run
        raise LookupError(f"no {request_type} was sent")


def run_resource(
    resource: Resource | str,
    *,
    properties: Mapping[str, Any] | None = None,
    update_properties: Mapping[str, Any] | None = None,
    request_type: RequestType | str | None = None,
    physical_id: str | None = None,
    handover_every_step: bool = False,
    always_replay: bool = False,
    lambda_timeout: float = 60.0,
    service_timeout: float = 300.0,
    environment: Mapping[str, str] | None = None,
    dynamodb: str | None = None,
    code_paths: Sequence[str] | None = None,
    echo: bool = True,
    kms_key: bool = False,
    allow_none: bool = False,
    raw_properties: bool = False,
) -> Life:
    """Run ``resource`` (a Resource defined at the top level of an importable module, or
    ``"MODULE:RESOURCE"``) through Create, Update (when ``update_properties`` is given) and
    Delete, with a stack's rollbacks, or through the one ``request_type`` (an Update goes from
    ``properties`` to ``update_properties``; ``physical_id`` is the Update's or Delete's).

    ``lambda_timeout`` is the function's timeout and ``service_timeout`` the requests'
    ServiceTimeout, after which the runtime answers FAILED; ``environment`` is added to the
    function's; ``dynamodb`` is the journal's endpoint (or :data:`DYNAMODB_LOCAL`; default:
    moto's server); ``code_paths`` where the worker imports from (default: the working
    directory and this process's ``sys.path``); ``echo`` prints progress and timelines;
    ``kms_key`` encrypts the journal's secrets with ``KmsCodec`` under a key in moto's KMS;
    ``allow_none`` accepts a handler that returns None (answered as SUCCESS with no Data).
    The properties go as CloudFormation sends them, every number and boolean a string at any
    depth, unless ``raw_properties`` keeps their JSON types.
    Everything started is stopped before this returns or raises.

    Raises:
        HandlerReturnedNone: a handler returned None, and ``allow_none`` is not set.
        ReplayDivergence: a replay differed, or the runtime failed an operation for
            non-determinism.
        NoResponse: a request was never answered.
        ResourceSpecError: ``resource`` cannot be imported by name in another process, or
            lacks a handler for a request type it declares no answer for
            (:meth:`asynccfn.Resource.unanswered`).
        LocalServerError, JournalError: the local servers or the table failed.
    """
    spec = resource if isinstance(resource, str) else locate(resource)
    config = StackConfig(
        resource=spec,
        lambda_timeout=lambda_timeout,
        dynamodb=dynamodb,
        environment=dict(environment or {}),
        code_paths=list(code_paths) if code_paths is not None else _code_paths(),
        handover_after_step=handover_every_step,
        stack_name="asynccfn-testing",
        service_timeout=service_timeout,
        kms_key=kms_key,
        raw_properties=raw_properties,
    )
    printer = _printer() if echo else None
    noticing = _NoticingWatcher(printer or QuietWatcher())
    props = dict(properties or {})
    with LocalStack(config, watcher=noticing) as stack:
        if request_type is None:
            runs = stack.lifecycle(props, update_properties, replay=always_replay)
        else:
            runs = [
                _single(stack, RequestType(request_type), props, update_properties, physical_id)
            ]
            if always_replay:
                runs = [stack.replay(runs[0])]
    if printer is not None:
        from ._cli_progress import print_summary

        print_summary(runs, printer.console)
    _check_replays(runs)
    if noticing.returned_none and not allow_none:
        raise HandlerReturnedNone(
            "a handler returned None, answered as SUCCESS with no Data (is a 'return' "
            "missing? run_resource(..., allow_none=True) accepts it):\n  "
            + "\n  ".join(noticing.returned_none)
        )
    return Life(runs=tuple(runs))


class _NoticingWatcher:
    """Passes everything on to ``inner``, noting the runtime's warnings that a handler
    returned None."""

    def __init__(self, inner: Watcher) -> None:
        self.inner = inner
        self.returned_none: list[str] = []

    def request_sent(self, label: str, event: Mapping[str, Any]) -> None:
        self.inner.request_sent(label, event)

    def journal(self, detail: OperationDetail) -> None:
        self.inner.journal(detail)

    def invocation_ended(self, record: InvocationRecord) -> None:
        self.inner.invocation_ended(record)

    def output(self, line: str) -> None:
        self.inner.output(line)
        try:
            record = json.loads(line)
        except ValueError:
            return
        if isinstance(record, dict) and "returned_none" in record:
            message = str(record.get("message", ""))
            if message not in self.returned_none:  # replays and retries say it again
                self.returned_none.append(message)

    def answered(self, run: OperationRun) -> None:
        self.inner.answered(run)


def _single(
    stack: LocalStack,
    request_type: RequestType,
    properties: Mapping[str, Any],
    update_properties: Mapping[str, Any] | None,
    physical_id: str | None,
) -> OperationRun:
    if request_type is RequestType.UPDATE:
        return stack.send(
            request_type,
            update_properties if update_properties is not None else properties,
            old_properties=properties,
            physical_id=physical_id,
        )
    return stack.send(request_type, properties, physical_id=physical_id)


def _check_replays(runs: Sequence[OperationRun]) -> None:
    problems = [f"{run.label}: {run.reason}" for run in runs if run.non_deterministic]
    for run in runs:
        if run.replay is not None:
            problems += [f"{run.label}: {problem}" for problem in run.replay.problems]
    if problems:
        raise ReplayDivergence(
            "the handler did not replay its journal faithfully:\n  " + "\n  ".join(problems)
        )


def _code_paths() -> list[str]:
    """The working directory, then this process's import path: the worker imports the test's
    modules under the names they have here."""
    paths = [os.getcwd()]
    for entry in sys.path:
        path = os.path.abspath(entry or os.getcwd())
        if os.path.isdir(path) and path not in paths:
            paths.append(path)
    return paths


def _printer() -> Any:
    from ._cli_progress import ProgressPrinter
    from .cli import Console

    return ProgressPrinter(Console(out=sys.stdout, err=sys.stderr, color=False))
