"""A handler that finishes without asking for journaled steps an earlier run took is said:
a warning once, and an event with the invocation's answer."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, cast

import pytest

from asynccfn._completeness import note_unvisited, unvisited
from asynccfn.journal.memory import MemoryJournal
from asynccfn.journal.models import OperationItem, StepKind
from tests.runtime.test_steps import counting, executor, in_root


def test_journaled_steps_the_replay_never_asked_for_are_warned_once_and_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = MemoryJournal()
    first = executor(journal)

    async def both() -> None:
        await first.step(StepKind.STEP, "make", counting([], 1))
        await first.step(StepKind.STEP, "announce", counting([], 2))

    in_root(first, both)
    assert unvisited(first) == []  # a first run visits all it journals

    again = executor(journal, fence=2)
    in_root(again, lambda: again.step(StepKind.STEP, "make", counting([], 1)))
    assert [step.name for _, step in unvisited(again)] == ["announce"]

    op: Any = SimpleNamespace(events=None, invocations=2)
    with caplog.at_level(logging.WARNING, logger="asynccfn.runtime"):
        note_unvisited(again, cast(OperationItem, op))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1 journaled step" in warnings[0], warnings
    assert "'announce' at position" in warnings[0] and "'make'" not in warnings[0]
    assert [event.what.split(":")[0] for event in op.events] == [
        "finished without asking for journaled steps"
    ]
    assert op.events[0].invocation == 2


def test_a_complete_replay_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    journal = MemoryJournal()
    first = executor(journal)
    in_root(first, lambda: first.step(StepKind.STEP, "make", counting([], 1)))
    again = executor(journal, fence=2)
    in_root(again, lambda: again.step(StepKind.STEP, "make", counting([], 1)))
    op: Any = SimpleNamespace(events=None, invocations=2)
    with caplog.at_level(logging.WARNING, logger="asynccfn.runtime"):
        note_unvisited(again, cast(OperationItem, op))
    assert op.events is None and not caplog.records
