"""The runtime's static attribute tables are exactly what the pynamodb models declare."""

from __future__ import annotations

import inspect

import pytest

from asynccfn.journal import _schema, models


@pytest.mark.parametrize(
    ("table", "model"),
    [
        (_schema.OPERATION_SCHEMA, models.OperationModel),
        (_schema.STEP_SCHEMA, models.StepModel),
        (_schema.EVENT_SCHEMA, models.EventMap),
    ],
    ids=["operation", "step", "event"],
)
def test_the_static_table_is_what_the_model_declares(
    table: _schema.Schema, model: type[models.MapAttribute]
) -> None:
    assert models.declared_schema(model) == table


@pytest.mark.parametrize(
    ("table", "entry"),
    [
        (_schema.OPERATION_SCHEMA, _schema.OperationItem),
        (_schema.STEP_SCHEMA, _schema.StepItem),
        (_schema.EVENT_SCHEMA, _schema.EventItem),
    ],
    ids=["operation", "step", "event"],
)
def test_each_record_has_the_tables_attributes(table: _schema.Schema, entry: type) -> None:
    fields = inspect.signature(entry).parameters
    assert fields.keys() == {a.name for a in table.attributes}
    assert set(entry.__slots__) == fields.keys()
    for attr in table.attributes:
        assert fields[attr.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert (fields[attr.name].default is None) == attr.null, attr.name


def test_the_models_share_the_runtimes_enums_and_keys() -> None:
    for name in ("OperationStatus", "StepStatus", "StepKind", "OP_SK", "STEP_PREFIX"):
        assert getattr(models, name) is getattr(_schema, name)
    assert models.StepItem is _schema.StepItem
