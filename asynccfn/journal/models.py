"""The journal's schema, defined once: pynamodb models of the operation and step items.

One table with string keys ``pk``/``sk``, TTL on ``expires_at`` and a GSI listing a stack's
operations. The runtime's hot path sends these items through aiobotocore, serialised by these
models; the query API and the CLI read them with pynamodb (synchronously, off the event loop).

::

    pk = op#<op-id>   sk = op                   the operation: identity, status, fence, lease,
                                                hand-over, deadline, response (outbox), events
    pk = op#<op-id>   sk = step#<scope>#<seq>   one step: name, kind, status, result or error,
                                                attempt, EventState when it changed, whether
                                                its result is sensitive
"""

from __future__ import annotations

import functools
from typing import Any

from pynamodb.attributes import (
    Attribute,
    AttributeContainer,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

# The enums, keys and the runtime's plain records live in the light _schema module (the
# runtime imports it without pynamodb); they are this module's names too.
from ._schema import (
    EVENT_SCHEMA,
    MAX_EVENTS,
    OP_SK,
    OPERATION_SCHEMA,
    STACK_INDEX,
    STEP_PREFIX,
    STEP_SCHEMA,
    Attr,
    EventItem,
    EventKind,
    OperationItem,
    OperationStatus,
    Schema,
    StepItem,
    StepKind,
    StepStatus,
    op_id_of,
    op_pk,
    operation_id,
    schema,
)

__all__ = [
    "EVENT_SCHEMA",
    "MAX_EVENTS",
    "OPERATION_SCHEMA",
    "OP_SK",
    "STACK_INDEX",
    "STEP_PREFIX",
    "STEP_SCHEMA",
    "EventItem",
    "EventKind",
    "EventMap",
    "Models",
    "OperationItem",
    "OperationModel",
    "OperationStatus",
    "StackIndex",
    "StepItem",
    "StepKind",
    "StepModel",
    "StepStatus",
    "bind",
    "declared_schema",
    "op_id_of",
    "op_pk",
    "operation_id",
]


class EventMap(MapAttribute[str, Any]):
    """One line of an operation's recent history (claimed, handed over, posted, ...)."""

    at = NumberAttribute()
    what = UnicodeAttribute(null=True)  # the text, when the kind does not say it all
    invocation = NumberAttribute(null=True)
    kind = UnicodeAttribute(null=True)  # an EventKind value; None in items before kinds
    steps = NumberAttribute(null=True)  # REPLAYED
    status = UnicodeAttribute(null=True)  # RESPONSE: the response's Status
    reason = UnicodeAttribute(null=True)  # UNDELIVERABLE, NOT_DELIVERED


class StackIndex(GlobalSecondaryIndex["OperationModel"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = STACK_INDEX
        projection = AllProjection()

    stack_id = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class _JournalModel(Model):
    class Meta:
        table_name = "asynccfn-journal"  # replaced per table by bind()

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    expires_at = NumberAttribute(null=True)


class OperationModel(_JournalModel):
    """The operation item (``sk = op``)."""

    stack_id = UnicodeAttribute()
    logical_id = UnicodeAttribute()
    request_id = UnicodeAttribute()
    resource_type = UnicodeAttribute()
    request_type = UnicodeAttribute()
    status = UnicodeAttribute()
    attempt = UnicodeAttribute()  # SHA-256 of the current attempt's ResponseURL
    request_digest = UnicodeAttribute(null=True)  # SHA-256 of what the request asks for
    attempt_no = NumberAttribute()
    past_attempts = ListAttribute[str](of=UnicodeAttribute, null=True)  # type: ignore[arg-type]
    # the past attempts superseded before their answer was posted
    unanswered_attempts = ListAttribute[str](of=UnicodeAttribute, null=True)  # type: ignore[arg-type]
    fence = NumberAttribute()
    owner = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)
    handover_token = UnicodeAttribute(null=True)
    handover_state = UnicodeAttribute(null=True)  # EventState JSON after the last step
    handover_at = UnicodeAttribute(null=True)  # the positions in progress at the hand-over
    wake_at = NumberAttribute(null=True)
    stalled = NumberAttribute(null=True)  # invocations in a row that made no progress
    invocations = NumberAttribute()
    issued_at = NumberAttribute()
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    deadline = NumberAttribute()
    # The exact body, recorded before the PUT; once posted, with NoEcho Data masked.
    response = UnicodeAttribute(null=True)
    response_digest = UnicodeAttribute(null=True)  # SHA-256 of the exact body, hex
    response_status = UnicodeAttribute(null=True)
    posted_at = NumberAttribute(null=True)
    physical_id = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    events = ListAttribute[EventMap](of=EventMap, null=True)

    stack_index = StackIndex()


class StepModel(_JournalModel):
    """A step item (``sk = step#<scope>#<seq>``)."""

    name = UnicodeAttribute()
    kind = UnicodeAttribute()
    status = UnicodeAttribute()
    result = UnicodeAttribute(null=True)  # JSON
    error_type = UnicodeAttribute(null=True)
    error_message = UnicodeAttribute(null=True)
    error_code = UnicodeAttribute(null=True)  # an AWS error code, for calls
    attempt = NumberAttribute()
    op_attempt = NumberAttribute()
    started_at = NumberAttribute()
    ended_at = NumberAttribute(null=True)
    wake_at = NumberAttribute(null=True)
    invocation = NumberAttribute()
    fence = NumberAttribute()
    state = UnicodeAttribute(null=True)  # EventState JSON as of this step, when it changed
    # 1: the result is secret (ctx.step(..., sensitive=True)): readers mask it, the payload
    # codec encrypts it. A number, not a BOOL, so the runtime's flat codec reads it as is.
    sensitive = NumberAttribute(null=True)


class Models:
    """The models bound to one table (pynamodb keeps the table name on the class)."""

    __slots__ = ("operation", "step")

    def __init__(self, operation: type[OperationModel], step: type[StepModel]) -> None:
        self.operation = operation
        self.step = step


@functools.cache
def bind(table: str, region: str | None = None, host: str | None = None) -> Models:
    """Model classes for ``table`` (cached: one pair per table)."""

    def meta(base: type[Any]) -> type[Any]:
        attrs: dict[str, Any] = {"table_name": table}
        if region:
            attrs["region"] = region
        if host:
            attrs["host"] = host
        return type("Meta", (base.Meta,), attrs)

    op = type("OperationModel", (OperationModel,), {"Meta": meta(OperationModel)})
    step = type("StepModel", (StepModel,), {"Meta": meta(StepModel)})
    return Models(op, step)


_SCALAR_TYPES: dict[type[Any], Any] = {UnicodeAttribute: "S", NumberAttribute: "N"}


def declared_schema(model: type[AttributeContainer]) -> Schema:
    """The attribute table of a model (or map attribute) as its pynamodb attributes declare
    it: what :mod:`asynccfn.journal._schema` must equal, and what a codec of a model uses.

    Raises:
        TypeError: an attribute of another kind than a string, a number or a list of strings,
            numbers or maps, one with a default, or one stored under another name.
    """
    attrs = []
    for name, attr in model.get_attributes().items():
        if attr.default is not None or attr.default_for_new is not None:
            raise TypeError(f"{model.__name__}.{name} has a default")
        if attr.attr_name != name:
            raise TypeError(f"{model.__name__}.{name} is stored as {attr.attr_name!r}")
        attrs.append(_declared(model, name, attr))
    return schema(model.__name__, attrs)


def _declared(model: type[AttributeContainer], name: str, attr: Attribute[Any]) -> Attr:
    scalar = _SCALAR_TYPES.get(type(attr))
    if scalar is not None:
        return Attr(name, scalar, attr.null)
    if not isinstance(attr, ListAttribute):
        raise TypeError(f"{model.__name__}.{name} is not a string, number or list")
    element: Any = getattr(attr, "element_type", None)
    if element in _SCALAR_TYPES:
        return Attr(name, "L", attr.null, _SCALAR_TYPES[element])
    if isinstance(element, type) and issubclass(element, MapAttribute):
        return Attr(name, "L", attr.null, declared_schema(element))
    raise TypeError(f"{model.__name__}.{name} is a list of {element!r}, not strings or maps")
