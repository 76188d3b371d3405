"""The flat step codec reads and writes exactly what the pynamodb step model would."""

from __future__ import annotations

import pytest

from asynccfn.journal._flat import FlatCodec, flat_codec
from asynccfn.journal.models import bind
from asynccfn.journal.size import item_size

MODELS = bind("flat-codec-test")
CODEC = flat_codec(MODELS.step)

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
    raw, size = CODEC.encode(CODEC.build(**values))
    assert raw == reference
    assert size == item_size(reference)


@pytest.mark.parametrize("values", STEPS, ids=["finished", "retrying"])
def test_decode_matches_pynamodb(values: dict) -> None:
    raw = MODELS.step(**values).serialize()
    decoded = CODEC.decode(raw)
    reference = MODELS.step.from_raw_data(raw)
    assert isinstance(decoded, MODELS.step)
    assert decoded.attribute_values == reference.attribute_values
    for name in values:
        assert getattr(decoded, name) == getattr(reference, name)
        assert type(getattr(decoded, name)) is type(getattr(reference, name))
    assert decoded.error_code is None


def test_decode_ignores_attributes_outside_the_schema() -> None:
    raw = MODELS.step(**STEPS[0]).serialize()
    raw["added_later"] = {"S": "x"}
    assert CODEC.decode(raw).attribute_values == MODELS.step.from_raw_data(raw).attribute_values


def test_build_refuses_unknown_attributes() -> None:
    with pytest.raises(ValueError, match="no attribute 'colour'"):
        CODEC.build(**STEPS[0], colour="red")


def test_encode_refuses_a_missing_required_attribute() -> None:
    values = {k: v for k, v in STEPS[0].items() if k != "fence"}
    with pytest.raises(ValueError, match="fence cannot be None"):
        CODEC.encode(CODEC.build(**values))


def test_models_with_lists_or_maps_are_not_flat() -> None:
    with pytest.raises(TypeError, match="not a plain string or number"):
        FlatCodec(MODELS.operation)
