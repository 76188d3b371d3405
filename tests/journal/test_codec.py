"""The entry codecs read and write exactly what the pynamodb models would."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute

from asynccfn._errors import JournalError
from asynccfn.journal._codec import ItemCodec
from asynccfn.journal.models import (
    EventItem,
    EventMap,
    OperationItem,
    StepItem,
    StepModel,
    bind,
)
from asynccfn.journal.size import item_size

MODELS = bind("flat-codec-test")
CODEC = ItemCodec(MODELS.step, StepItem)
OPERATIONS = ItemCodec(MODELS.operation, OperationItem, {EventMap: EventItem})

STEPS = [
    {
        "pk": "op#abc",
        "sk": "step#0#00001",
        "expires_at": 1_900_000_000,
        "name": "create bucket",
        "kind": "step",
        "status": "SUCCEEDED",
        "result": '{"arn": "arn:aws:s3:::b", "n": 3}',
        "attempt": 1,
        "op_attempt": 2,
        "started_at": 1_764_000_000.123456,
        "ended_at": 1_764_000_001.5,
        "invocation": 3,
        "fence": 7,
        "state": '{"count": 1}',
    },
    {  # non-ASCII text, negative and zero numbers, optional attributes unset
        "pk": "op#é",
        "sk": "step#0.1#00002",
        "name": "日本語 step",
        "kind": "call",
        "status": "RETRYING",
        "error_type": "ThrottlingException",
        "error_message": "slow down ✋",
        "attempt": 2,
        "op_attempt": 1,
        "started_at": 0,
        "wake_at": -1.25,
        "invocation": 1,
        "fence": 1,
    },
]


@pytest.mark.parametrize("values", STEPS, ids=["finished", "retrying"])
def test_encode_matches_pynamodb(values: dict) -> None:
    reference = MODELS.step(**values).serialize()
    raw, size = CODEC.encode(StepItem(**values))
    assert raw == reference
    assert size == item_size(reference)


@pytest.mark.parametrize("values", STEPS, ids=["finished", "retrying"])
def test_decode_matches_pynamodb(values: dict) -> None:
    raw = MODELS.step(**values).serialize()
    decoded = CODEC.decode(raw)
    reference = MODELS.step.from_raw_data(raw)
    for name in MODELS.step.get_attributes():
        assert getattr(decoded, name) == getattr(reference, name), name
        assert type(getattr(decoded, name)) is type(getattr(reference, name)), name


def test_decode_ignores_attributes_outside_the_schema() -> None:
    raw = MODELS.step(**STEPS[0]).serialize()
    raw["added_later"] = {"S": "x"}
    assert CODEC.decode(raw) == StepItem(**STEPS[0])


def test_an_item_lacking_a_required_attribute_is_a_journal_error() -> None:
    raw = MODELS.step(**STEPS[0]).serialize()
    del raw["fence"]
    with pytest.raises(JournalError, match=r"step#0#00001 lacks \['fence'\]"):
        CODEC.decode(raw)


def test_the_entry_must_match_the_model() -> None:
    class Extended(StepModel):
        colour = UnicodeAttribute(null=True)

    with pytest.raises(TypeError, match="differ: \\['colour'\\]"):
        ItemCodec(Extended, StepItem)
    assert set(StepItem.__slots__) == set(StepModel.get_attributes())


def test_a_record_must_default_exactly_the_nullable_attributes() -> None:
    """The codec reads a record's fields from its ``__init__`` (a plain record's or a
    dataclass's): one whose nullable attribute is required is refused."""
    fields: list[Any] = [
        (p.name, object) if p.default is p.empty else (p.name, object, p.default)
        for p in inspect.signature(StepItem).parameters.values()
        if p.name != "result"
    ]
    required = dataclasses.make_dataclass("Required", [*fields, ("result", str)], kw_only=True)
    with pytest.raises(TypeError, match=r"Required\.result must be optional exactly when"):
        ItemCodec(StepModel, required)
    optional = dataclasses.make_dataclass(
        "Optional", [*fields, ("result", str, None)], kw_only=True
    )
    ItemCodec(StepModel, optional)  # the step model as the runtime's StepItem has it


def test_lists_of_other_kinds_are_refused() -> None:
    class Listing(StepModel):
        name = ListAttribute(of=NumberAttribute)  # same names, one of another kind

    with pytest.raises(TypeError, match="is a list of"):
        ItemCodec(Listing, StepItem)


OPERATION = {
    "pk": "op#abc",
    "sk": "op",
    "stack_id": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
    "logical_id": "Bucket",
    "request_id": "r-1",
    "resource_type": "Custom::Bucket",
    "request_type": "Update",
    "status": "RUNNING",
    "attempt": "a" * 64,
    "attempt_no": 2,
    "past_attempts": ["b" * 64, "ü"],
    "fence": 5,
    "owner": "lambda-request-1",
    "lease_until": 1_764_000_030.25,
    "invocations": 5,
    "issued_at": 1_764_000_000.0,
    "created_at": 1_764_000_000.5,
    "updated_at": 1_764_000_010.125,
    "deadline": 1_764_003_600,
    "stalled": 0,
    "expires_at": 1_900_000_000,
}
EVENTS = [(1_764_000_000.5, "claimed", None), (1_764_000_009.75, "handed over ✓", 4)]


def test_operation_items_match_pynamodb() -> None:
    model = MODELS.operation(
        **OPERATION,
        events=[EventMap(at=at, what=what, invocation=inv) for at, what, inv in EVENTS],
    )
    entry = OperationItem(
        **OPERATION,
        events=[EventItem(at=at, what=what, invocation=inv) for at, what, inv in EVENTS],
    )
    reference = model.serialize()
    raw, size = OPERATIONS.encode(entry)
    assert raw == reference
    assert size == item_size(reference)
    assert OPERATIONS.decode(reference) == entry
    assert OPERATIONS.encode_list("events", entry.events or []) == reference["events"]


def test_operation_items_without_lists() -> None:
    entry = OperationItem(**{**OPERATION, "past_attempts": None})
    raw, _ = OPERATIONS.encode(entry)
    assert "past_attempts" not in raw and "events" not in raw
    assert OPERATIONS.decode(raw) == entry
