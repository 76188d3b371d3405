"""The replay check's view of steps a replay never asked for (see asynccfn._completeness)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asynccfn.journal._schema import EventKind

if TYPE_CHECKING:
    from asynccfn.journal.records import OperationDetail


def unvisited_problems(first: OperationDetail, again: OperationDetail) -> list[str]:
    """What the replay's invocations recorded about journaled steps its handler finished
    without asking for (events ``again`` has that ``first`` had not)."""
    before = {(event.at, event.what) for event in first.events}
    return [
        f"the replay {event.what} (the first run took them)"
        for event in again.events
        if event.kind is EventKind.STEPS_SKIPPED and (event.at, event.what) not in before
    ]
