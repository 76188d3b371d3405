"""The operation item's recent events: what each journal appends with its writes."""

from __future__ import annotations

import time

from .models import MAX_EVENTS, EventEntry, OperationEntry


def event(now: float, what: str, invocation: int | None = None) -> EventEntry:
    """One event, its time rounded to the millisecond."""
    return EventEntry(at=round(now, 3), what=what, invocation=invocation)


def replayed_event(steps: int, invocation: int) -> EventEntry:
    """The event an invocation records (with its next write) after replaying ``steps``."""
    return event(time.time(), f"replayed {steps} step{'' if steps == 1 else 's'}", invocation)


UNVISITED = "finished without asking for journaled steps"


def unvisited_event(steps: list[str], invocation: int) -> EventEntry:
    """The event an invocation records (with its response) when its handler finished without
    asking for journaled, finished ``steps`` (described) that an earlier run took."""
    shown = ", ".join(steps[:5]) + (f" and {len(steps) - 5} more" if len(steps) > 5 else "")
    return event(time.time(), f"{UNVISITED}: {shown}", invocation)


def loop_blocked_event(at: float, seconds: float, where: str, invocation: int) -> EventEntry:
    """The event an invocation records (with its next write) when the watchdog found its
    event loop blocked for ``seconds`` by ``where`` (a user's function and line)."""
    return event(at, f"event loop blocked over {seconds:.1f} s by {where}", invocation)


def bounded(current: OperationEntry, new: EventEntry) -> list[EventEntry]:
    """The recent events with ``new`` appended, oldest dropped past MAX_EVENTS."""
    return [*(current.events or []), new][-MAX_EVENTS:]
