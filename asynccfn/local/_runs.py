"""What a local stack reports: each request's run, its replay, and progress as it goes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from asynccfn._errors import AsyncCfnError
from asynccfn._protocol import RequestType, Status
from asynccfn.journal._schema import EventKind

if TYPE_CHECKING:
    from asynccfn.journal.query import OperationDetail, StepRecord
    from asynccfn.local._records import InvocationRecord

__all__ = [
    "NoResponse",
    "OperationRun",
    "QuietWatcher",
    "Replay",
    "Watcher",
    "response_differences",
]

# The runtime's NonDeterminismError message (asynccfn/_steps.py) starts with this.
_NON_DETERMINISM = "non-deterministic handler"
_LOG_STREAM = re.compile(r" \(see CloudWatch log stream [^)]*\)$")


class NoResponse(AsyncCfnError):
    """The function went quiet without answering: a stack would wait for its ServiceTimeout."""


class Watcher(Protocol):
    """What a :class:`LocalStack` tells about a request while it runs."""

    def request_sent(self, label: str, event: Mapping[str, Any]) -> None:
        """A request went out (``event`` without its ResponseURL)."""

    def journal(self, detail: OperationDetail) -> None:
        """The operation's journal changed (claims, steps, hand-overs, the response)."""

    def invocation_ended(self, record: InvocationRecord) -> None:
        """One attempt of one Lambda invocation ended."""

    def output(self, line: str) -> None:
        """A line a worker printed (the runtime's JSON log lines, the handler's own)."""

    def answered(self, run: OperationRun) -> None:
        """The response arrived and the invocation that sent it has finished."""


class QuietWatcher:
    """A :class:`Watcher` that ignores everything."""

    def request_sent(self, label: str, event: Mapping[str, Any]) -> None:
        pass

    def journal(self, detail: OperationDetail) -> None:
        pass

    def invocation_ended(self, record: InvocationRecord) -> None:
        pass

    def output(self, line: str) -> None:
        pass

    def answered(self, run: OperationRun) -> None:
        pass


@dataclass(frozen=True, kw_only=True, slots=True)
class OperationRun:
    """One request of the stack's life, its response and its journal.

    ``label`` says why it was sent (``Create``, ``Delete (rollback)`` ...); ``request`` is
    the event without its ResponseURL; ``response`` the body CloudFormation would have
    received; ``journal`` the operation as the journal holds it once answered;
    ``invocations`` the Lambda service's records of its attempts.
    """

    label: str
    request_type: RequestType
    request: Mapping[str, Any]
    response: Mapping[str, Any]
    journal: OperationDetail
    invocations: tuple[InvocationRecord, ...]
    elapsed: float
    replay: Replay | None = None

    @property
    def status(self) -> str:
        """``SUCCESS`` or ``FAILED``."""
        return str(self.response.get("Status"))

    @property
    def ok(self) -> bool:
        return self.status == Status.SUCCESS.value

    @property
    def physical_id(self) -> str:
        return str(self.response.get("PhysicalResourceId", ""))

    @property
    def data(self) -> Mapping[str, Any]:
        data = self.response.get("Data")
        return data if isinstance(data, Mapping) else {}

    @property
    def reason(self) -> str | None:
        reason = self.response.get("Reason")
        return str(reason) if reason is not None else None

    @property
    def steps(self) -> tuple[StepRecord, ...]:
        """The journaled steps, in program order."""
        return self.journal.steps

    @property
    def handovers(self) -> int:
        """How many times an invocation handed the operation over to the next."""
        return sum(1 for event in self.journal.events if event.kind is EventKind.HANDED_OVER)

    @property
    def non_deterministic(self) -> bool:
        """The runtime failed the operation because replay met different steps."""
        return _NON_DETERMINISM in (self.reason or "")


@dataclass(frozen=True, kw_only=True, slots=True)
class Replay:
    """The operation run once more from its journal (as a new attempt of the same request).

    ``problems`` says how the replay differed from the first run: a different response, or
    steps it ran live instead of taking from the journal (``rerun``); empty when it matched.
    """

    response: Mapping[str, Any]
    rerun: tuple[StepRecord, ...]
    problems: tuple[str, ...]


def response_differences(first: Mapping[str, Any], again: Mapping[str, Any]) -> list[str]:
    """How a replay's response differs from the first run's (the log stream aside)."""
    if again.get("Status") != first.get("Status"):
        why = f": {again.get('Reason')}" if again.get("Reason") else ""
        return [
            f"the first run answered {first.get('Status')}, the replay {again.get('Status')}{why}"
        ]
    problems = [
        f"the first run answered {name} {first.get(name)!r}, the replay {again.get(name)!r}"
        for name in ("PhysicalResourceId", "Data", "NoEcho")
        if again.get(name) != first.get(name)
    ]
    reasons = [_LOG_STREAM.sub("", str(r.get("Reason") or "")) for r in (first, again)]
    if reasons[0] != reasons[1]:
        problems.append(f"the first run answered Reason {reasons[0]!r}, the replay {reasons[1]!r}")
    return problems
