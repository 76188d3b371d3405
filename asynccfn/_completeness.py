"""Replay completeness: journaled steps a finished handler never asked for.

A handler that took a step on an earlier run and, replaying, finishes without asking for it
(a step behind ``if not ctx.is_replaying``, a branch on time or randomness) did not replay its
journal faithfully, though every step it did ask for came from the journal. The runtime says so
once per invocation that finishes: a warning in the log and an event in the operation's
timeline, which the local runner's replay check reads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._execution import finished
from .journal._events import unvisited_event

if TYPE_CHECKING:
    from ._steps import Executor
    from .journal.models import OperationItem, StepItem

log = logging.getLogger("asynccfn.runtime")


def unvisited(executor: Executor) -> list[tuple[str, StepItem]]:
    """The journal's finished entries (as the executor would replay them) at positions the
    handler never took, in program order."""
    progress, op_attempt = executor.progress, executor.x.op_attempt
    return sorted(
        (
            (position, step)
            for position, step in progress.journal.items()
            if position not in progress.visited and finished(step, op_attempt)
        ),
        key=lambda item: item[0],  # positions are zero-padded: text order is program order
    )


def note_unvisited(executor: Executor, op: OperationItem) -> None:
    """Warn, and add an event to the operation's next write, when the handler finished
    without asking for journaled steps."""
    skipped = [f"{step.name!r} at position {position}" for position, step in unvisited(executor)]
    if not skipped:
        return
    log.warning(
        "the handler finished without asking for %d journaled step%s an earlier run took "
        "(%s): steps must be called in the same order on every run",
        len(skipped),
        "" if len(skipped) == 1 else "s",
        ", ".join(skipped),
        extra={"unvisited_steps": skipped},
    )
    op.events = [*(op.events or []), unvisited_event(skipped, op.invocations)]
