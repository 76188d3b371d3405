"""The operation item's recent events: what each journal appends with its writes."""

from __future__ import annotations

import time

from ._schema import MAX_EVENTS, EventEntry, OperationEntry


def event(now: float, what: str, invocation: int | None = None) -> EventEntry:
    """One event, its time rounded to the millisecond."""
    return EventEntry(at=round(now, 3), what=what, invocation=invocation)


def replayed_event(steps: int, invocation: int) -> EventEntry:
    """The event an invocation records (with its next write) after replaying ``steps``."""
    return event(time.time(), f"replayed {steps} step{'' if steps == 1 else 's'}", invocation)


def bounded(current: OperationEntry, new: EventEntry) -> list[EventEntry]:
    """The recent events with ``new`` appended, oldest dropped past MAX_EVENTS."""
    return [*(current.events or []), new][-MAX_EVENTS:]
