"""Operation events: written with a kind and typed details; items written before events had a
kind (free text only) read as their text says."""

from __future__ import annotations

from typing import Any

import pytest

from asynccfn.journal import EventKind
from asynccfn.journal._convert import _events
from asynccfn.journal._events import (
    kind_of,
    legacy_details,
    replayed_event,
    response_event,
    undeliverable_event,
)
from asynccfn.journal.models import EventMap, bind

MODELS = bind("events-test")


@pytest.mark.parametrize(
    ("what", "kind", "details"),
    [
        ("claimed", EventKind.CLAIMED, (None, None, None)),
        ("claimed with hand-over token", EventKind.CLAIMED, (None, None, None)),
        ("new attempt claimed", EventKind.NEW_ATTEMPT, (None, None, None)),
        ("replayed 1 step", EventKind.REPLAYED, (1, None, None)),
        ("replayed 12 steps", EventKind.REPLAYED, (12, None, None)),
        ("handed over", EventKind.HANDED_OVER, (None, None, None)),
        ("response SUCCESS", EventKind.RESPONSE, (None, "SUCCESS", None)),
        ("response FAILED", EventKind.RESPONSE, (None, "FAILED", None)),
        ("posted", EventKind.POSTED, (None, None, None)),
        ("undeliverable: 403 Forbidden", EventKind.UNDELIVERABLE, (None, None, "403 Forbidden")),
        ("the response host did not answer", EventKind.OTHER, (None, None, None)),
    ],
)
def test_an_event_without_a_kind_reads_as_its_text_says(
    what: str, kind: EventKind, details: tuple[object, ...]
) -> None:
    assert kind_of(None, what) is kind
    assert legacy_details(kind, what) == details


def test_a_recorded_kind_wins_and_an_unknown_one_falls_back_to_the_text() -> None:
    assert kind_of("not delivered", "claimed by nobody") is EventKind.NOT_DELIVERED
    assert kind_of("from a newer version", "posted") is EventKind.POSTED


def test_the_helpers_write_the_text_the_readers_always_showed() -> None:
    replayed = replayed_event(3, 2)
    assert (replayed.what, replayed.kind, replayed.steps) == ("replayed 3 steps", "replayed", 3)
    response = response_event(1.0, "FAILED", 2)
    assert (response.what, response.kind) == ("response FAILED", "response")
    assert response.status == "FAILED"
    gone = undeliverable_event(1.0, "410 Gone")
    assert (gone.what, gone.kind) == ("undeliverable: 410 Gone", "undeliverable")
    assert gone.reason == "410 Gone"


def _operation(events: list[EventMap], invocations: int) -> object:
    return MODELS.operation(
        pk="op#x",
        sk="op",
        stack_id="s",
        logical_id="l",
        request_id="r",
        resource_type="Custom::X",
        request_type="Create",
        status="RUNNING",
        attempt="a",
        attempt_no=1,
        fence=invocations,
        invocations=invocations,
        issued_at=1.0,
        created_at=1.0,
        updated_at=1.0,
        deadline=2.0,
        events=events,
    )


def test_old_and_new_events_read_alike() -> None:
    old = [
        EventMap(at=1.0, what="claimed"),
        EventMap(at=2.0, what="replayed 2 steps", invocation=1),
        EventMap(at=3.0, what="handed over", invocation=1),
        EventMap(at=4.0, what="claimed with hand-over token"),
        EventMap(at=5.0, what="response SUCCESS", invocation=2),
        EventMap(at=6.0, what="posted"),
    ]
    new = [
        EventMap(at=1.0, what="claimed", kind="claimed"),
        EventMap(at=2.0, what="replayed 2 steps", invocation=1, kind="replayed", steps=2),
        EventMap(at=3.0, what="handed over", invocation=1, kind="handed over"),
        EventMap(at=4.0, what="claimed with hand-over token", kind="claimed"),
        EventMap(at=5.0, what="response SUCCESS", invocation=2, kind="response", status="SUCCESS"),
        EventMap(at=6.0, what="posted", kind="posted"),
    ]
    read_old, read_new = (_events(_operation(events, 2)) for events in (old, new))  # type: ignore[arg-type]
    assert read_old == read_new
    assert [(e.kind, e.invocation) for e in read_new] == [
        (EventKind.CLAIMED, 1),
        (EventKind.REPLAYED, 1),
        (EventKind.HANDED_OVER, 1),
        (EventKind.CLAIMED, 2),
        (EventKind.RESPONSE, 2),
        (EventKind.POSTED, 2),
    ]
    assert (read_new[1].steps, read_new[4].status) == (2, "SUCCESS")


def test_the_store_keeps_an_events_text_only_when_its_kind_does_not_say_it() -> None:
    from asynccfn.journal._codec import ItemCodec
    from asynccfn.journal._events import (
        claimed_event,
        lean_events,
        not_delivered_event,
        posted_event,
    )
    from asynccfn.journal._schema import EVENT_SCHEMA, OPERATION_SCHEMA, EventItem, OperationItem

    codec = ItemCodec(EVENT_SCHEMA, EventItem)
    operations = ItemCodec(OPERATION_SCHEMA, OperationItem, {EVENT_SCHEMA: EventItem})

    def _stored(event: EventItem) -> dict[str, Any]:
        stored: dict[str, Any] = lean_events(operations, [event])["L"][0]["M"]
        return stored

    said = [
        claimed_event(1.0, "claimed"),
        replayed_event(2, 1),
        response_event(2.0, "SUCCESS", 1),
        posted_event(3.0),
        not_delivered_event(4.0, "the response host did not answer"),
    ]
    for event in said:
        raw = _stored(event)
        assert "what" not in raw, event
        assert codec.decode(raw) == event
    token = claimed_event(1.0, "claimed with hand-over token")
    raw = _stored(token)
    assert raw["what"] == {"S": "claimed with hand-over token"}
    assert codec.decode(raw) == token


def test_an_event_stored_without_its_text_reads_with_it() -> None:
    lean = [
        EventMap(at=1.0, kind="claimed"),
        EventMap(at=2.0, invocation=1, kind="replayed", steps=1),
        EventMap(at=5.0, invocation=1, kind="response", status="FAILED"),
        EventMap(at=6.0, kind="undeliverable", reason="410 Gone"),
    ]
    read = _events(_operation(lean, 1))  # type: ignore[arg-type]
    assert [e.what for e in read] == [
        "claimed",
        "replayed 1 step",
        "response FAILED",
        "undeliverable: 410 Gone",
    ]
