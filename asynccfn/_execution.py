"""What one invocation's executor works with: who the invocation is (:class:`Execution`, fixed
for its life), what it learns while it runs (:class:`Progress`), and the one definition of a
finished step (:func:`finished`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._deadline import Deadlines
from ._probe import NO_PROBE, Probe
from ._record import Record
from .journal._schema import StepStatus

if TYPE_CHECKING:
    from ._lease import Lease
    from .journal.models import StepItem
    from .journal.protocol import StepJournal

__all__ = ["Execution", "Progress", "finished", "is_final"]

_FINAL = frozenset({StepStatus.SUCCEEDED.value, StepStatus.FAILED.value})


def is_final(status: str) -> bool:
    """Whether a step with ``status`` is over: nothing more is recorded for it in its attempt."""
    return status in _FINAL


def finished(step: StepItem, op_attempt: int) -> bool:
    """Whether operation attempt ``op_attempt`` replays ``step`` rather than running it.

    A success is final for every attempt; a failure belongs to its attempt: a retried
    deployment runs the step again.
    """
    if step.status == StepStatus.SUCCEEDED.value:
        return True
    return step.status == StepStatus.FAILED.value and step.op_attempt == op_attempt


_NO_ERRORS: Mapping[str, type[Exception]] = MappingProxyType({})


class Execution(Record):
    """Who one invocation is, fixed for its life: the operation, its claim and deadlines.

    A plain record rather than a NamedTuple: a fraction of the cost to define at a cold
    start."""

    __slots__ = (
        "deadlines",
        "errors",
        "fence",
        "handover_at",
        "invocation",
        "keeps_secrets",
        "lease",
        "op_attempt",
        "op_id",
        "probe",
        "secret_state",
        "started",
        "store",
    )

    def __init__(
        self,
        *,
        store: StepJournal,
        op_id: str,
        op_attempt: int,
        fence: int,
        invocation: int,
        deadlines: Deadlines,
        started: float,  # loop time the invocation started
        # positions of the last hand-over (see StepLog.go_live)
        handover_at: frozenset[str] = frozenset(),
        lease: Lease | None = None,  # the operation's lease, in a durable journal
        errors: Mapping[str, type[Exception]] = _NO_ERRORS,  # rebuilt on replay
        keeps_secrets: bool = True,  # a sensitive result never reaches the journal in clear
        secret_state: frozenset[str] = frozenset(),  # lambda_entry(sensitive_state=...)
        probe: Probe = NO_PROBE,
    ) -> None:
        self.store = store
        self.op_id = op_id
        self.op_attempt = op_attempt
        self.fence = fence
        self.invocation = invocation
        self.deadlines = deadlines
        self.started = started
        self.handover_at = handover_at
        self.lease = lease
        self.errors = errors
        self.keeps_secrets = keeps_secrets
        self.secret_state = secret_state
        self.probe = probe


class Progress:
    """What one invocation's executor learns and changes while it runs.

    A plain class rather than a dataclass: every cold start defines it, and a dataclass
    costs that about 0.5 ms (its methods are compiled from generated source)."""

    __slots__ = (
        "current",
        "handover_state",
        "interrupted_at",
        "journal",
        "physical_id",
        "progressed",
        "recorded_physical_id",
        "recorded_state",
        "replaying",
        "state",
        "stopping",
        "to_replay",
        "visited",
    )

    def __init__(
        self,
        *,
        journal: dict[str, StepItem] | None = None,
        handover_state: str | None = None,
        physical_id: str | None = None,
        recorded_physical_id: str | None = None,
        replaying: bool = True,
        to_replay: int = 0,
        progressed: bool = False,
        current: str | None = None,
    ) -> None:
        # the journal as loaded, then as written
        self.journal: dict[str, StepItem] = {} if journal is None else journal
        # EventState at the last hand-over (see StepLog.go_live)
        self.handover_state = handover_state
        self.interrupted_at: set[str] = set()  # actions the hand-over cut off
        self.visited: set[str] = set()  # positions the handler asked for
        self.state: dict[str, Any] = {}
        self.recorded_state = "{}"
        self.replaying = replaying  # until every finished journal entry has been replayed
        self.to_replay = to_replay
        self.stopping = False
        # a record was written or a durable wait spent this invocation
        self.progressed = progressed
        self.current = current  # the position live work is at (for stalled reasons)
        # ctx.physical_id, journaled before live work when changed
        self.physical_id = physical_id
        self.recorded_physical_id = recorded_physical_id
