"""The operation item's recent events: what each journal appends with its writes.

Each event has a kind (:class:`EventKind`) and its details as typed fields; a helper below
builds each kind. Its text (``what``) is what ``_schema.describe`` says of the kind and
details, unless the writer has more to say (a claim with a hand-over token). Items written
before events had a kind hold only the text: :func:`kind_of` reads those.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._schema import MAX_EVENTS, EventItem, EventKind, OperationItem

if TYPE_CHECKING:
    from ._codec import ItemCodec


def event(
    now: float,
    what: str | None,
    invocation: int | None = None,
    *,
    kind: EventKind | None = None,
    steps: int | None = None,
    status: str | None = None,
    reason: str | None = None,
) -> EventItem:
    """One event, its time rounded to the millisecond (no ``kind``: free text, OTHER; no
    ``what``: as the kind and details say it)."""
    return EventItem(
        at=round(now, 3),
        what=what,
        invocation=invocation,
        kind=kind.value if kind is not None else None,
        steps=steps,
        status=status,
        reason=reason,
    )


def claimed_event(now: float, note: str) -> EventItem:
    """An invocation's claim; ``note`` says how ("claimed with hand-over token")."""
    return event(now, note, kind=EventKind.CLAIMED)


def new_attempt_event(now: float) -> EventItem:
    """A new attempt of the request (a new ResponseURL) took the operation over."""
    return event(now, None, kind=EventKind.NEW_ATTEMPT)


def replayed_event(steps: int, invocation: int) -> EventItem:
    """The event an invocation records (with its next write) after replaying ``steps``."""
    return event(time.time(), None, invocation, kind=EventKind.REPLAYED, steps=steps)


def handed_over_event(now: float, note: str, invocation: int) -> EventItem:
    """The operation handed over to the next invocation (``note``: "handed over")."""
    return event(now, note, invocation, kind=EventKind.HANDED_OVER)


def response_event(now: float, status: str, invocation: int) -> EventItem:
    """The response (its Status ``status``) recorded in the outbox."""
    return event(now, None, invocation, kind=EventKind.RESPONSE, status=status)


def posted_event(now: float) -> EventItem:
    """The recorded response delivered."""
    return event(now, None, kind=EventKind.POSTED)


def undeliverable_event(now: float, reason: str) -> EventItem:
    """The recorded response can never be delivered, and why."""
    return event(now, None, kind=EventKind.UNDELIVERABLE, reason=reason)


def not_delivered_event(now: float, reason: str) -> EventItem:
    """Why the recorded response is not delivered yet (its delivery goes on)."""
    return event(now, None, kind=EventKind.NOT_DELIVERED, reason=reason)


def unvisited_event(steps: list[str], invocation: int) -> EventItem:
    """The event an invocation records (with its response) when its handler finished without
    asking for journaled, finished ``steps`` (described) that an earlier run took."""
    shown = ", ".join(steps[:5]) + (f" and {len(steps) - 5} more" if len(steps) > 5 else "")
    return event(time.time(), None, invocation, kind=EventKind.STEPS_SKIPPED, reason=shown)


def loop_blocked_event(at: float, seconds: float, where: str, invocation: int) -> EventItem:
    """The event an invocation records (with its next write) when the watchdog found its
    event loop blocked for ``seconds`` by ``where`` (a user's function and line)."""
    reason = f"over {seconds:.1f} s by {where}"
    return event(at, None, invocation, kind=EventKind.LOOP_BLOCKED, reason=reason)


def bounded(current: OperationItem, new: EventItem) -> list[EventItem]:
    """The recent events with ``new`` appended, oldest dropped past MAX_EVENTS."""
    return [*(current.events or []), new][-MAX_EVENTS:]


# The texts of events written before they had a kind, by prefix: the first that matches.
_LEGACY = (
    ("new attempt claimed", EventKind.NEW_ATTEMPT),
    ("claimed", EventKind.CLAIMED),
    ("replayed ", EventKind.REPLAYED),
    ("handed over", EventKind.HANDED_OVER),
    ("response ", EventKind.RESPONSE),
    ("posted", EventKind.POSTED),
    ("undeliverable", EventKind.UNDELIVERABLE),
)


def kind_of(kind: str | None, what: str) -> EventKind:
    """An event's kind: as recorded, or for an item written before kinds (or by a newer
    version, with a kind this one does not know), as its text says."""
    if kind is not None:
        try:
            return EventKind(kind)
        except ValueError:
            pass
    for prefix, legacy in _LEGACY:
        if what.startswith(prefix):
            return legacy
    return EventKind.OTHER


def legacy_details(kind: EventKind, what: str) -> tuple[int | None, str | None, str | None]:
    """The details (steps, status, reason) an event of ``kind`` without them says in ``what``
    (an item written before kinds)."""
    if kind is EventKind.REPLAYED:
        count = what.removeprefix("replayed ").split(" ", 1)[0]
        return (int(count) if count.isdigit() else None), None, None
    if kind is EventKind.RESPONSE:
        return None, what.removeprefix("response ").strip() or None, None
    if kind is EventKind.UNDELIVERABLE:
        return None, None, what.removeprefix("undeliverable").lstrip(": ") or None
    return None, None, None


def lean_events(codec: ItemCodec[OperationItem], events: list[EventItem]) -> dict[str, Any]:
    """The operation's ``events`` in wire form, each without its text when its kind and
    details say it (no copy of an event is made: an item holds up to 20 and is rewritten by
    every event)."""
    wire = codec.encode_list("events", events)
    for event, element in zip(events, wire["L"], strict=True):
        if event.stored_what is None:
            element["M"].pop("what", None)
    return wire
