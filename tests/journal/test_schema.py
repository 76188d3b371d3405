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


def test_records_compare_show_and_copy_by_their_fields() -> None:
    step = _schema.StepItem(
        pk="op#a",
        sk="step#0",
        name="s",
        kind="step",
        status="SUCCEEDED",
        attempt=1,
        op_attempt=1,
        started_at=1.0,
        invocation=1,
        fence=1,
        result="1",
    )
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


def test_the_models_share_the_runtimes_enums_and_keys() -> None:
    for name in ("OperationStatus", "StepStatus", "StepKind", "OP_SK", "STEP_PREFIX"):
        assert getattr(models, name) is getattr(_schema, name)
    assert models.StepItem is _schema.StepItem
