"""The runtime's plain records (asynccfn._record.Record): each one's slots are its
``__init__``'s keywords, and they copy, deep-copy and pickle as the dataclasses they replaced
did."""

from __future__ import annotations

import copy
import inspect
import pickle
from typing import Any

import pytest

from asynccfn._execution import Execution
from asynccfn._record import Record
from asynccfn._response import Response
from asynccfn.journal._schema import EventItem, OperationItem, StepItem
from asynccfn.journal.claims import ClaimRequest


def _records() -> list[type[Record]]:
    return [EventItem, OperationItem, StepItem, Execution, ClaimRequest, Response]


@pytest.mark.parametrize("cls", _records(), ids=lambda c: c.__name__)
def test_every_record_has_a_slot_for_each_keyword_of_its_init_and_no_other(
    cls: type[Record],
) -> None:
    """Record's __eq__, __repr__ and replaced() read the slots; the codec and replaced()
    build with __init__'s keywords: the two lists must be the same names."""
    params = inspect.signature(cls).parameters
    assert set(cls.__slots__) == params.keys()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert not hasattr(cls(**_sample(cls)), "__dict__")


def _sample(cls: type[Record]) -> dict[str, Any]:
    params = inspect.signature(cls).parameters
    return {
        name: (f"{name}-value" if p.default is p.empty else p.default) for name, p in params.items()
    }


@pytest.mark.parametrize("cls", [EventItem, OperationItem, StepItem], ids=lambda c: c.__name__)
def test_journal_items_copy_deep_copy_and_pickle_as_the_dataclasses_did(
    cls: type[Record],
) -> None:
    item = cls(**_sample(cls))
    for again in (
        copy.copy(item),
        copy.deepcopy(item),
        pickle.loads(pickle.dumps(item)),
        item.replaced(),
    ):
        assert again == item and again is not item and type(again) is cls


def test_records_compare_show_and_copy_by_their_fields() -> None:
    step = StepItem(**(_sample(StepItem) | {"result": "1"}))
    changed = step.replaced(result="2")
    assert (changed.result, step.result) == ("2", "1")
    assert changed != step
    assert changed.replaced(result="1") == step
    assert "result='1'" in repr(step)
    assert repr(step).startswith("StepItem(")
    with pytest.raises(TypeError):
        step.replaced(colour="red")
    with pytest.raises(TypeError):
        hash(step)
