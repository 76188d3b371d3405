"""Journal items between DynamoDB's wire form and the runtime's plain records
(:class:`~asynccfn.journal.models.StepItem`, :class:`~asynccfn.journal.models.OperationItem`),
without pynamodb's general machinery.

A step is built and written once per durable action and decoded once per replayed action, and
the operation item is decoded at every claim, so the runtime reads and writes items here,
exactly as the pynamodb models would (numbers as ``NumberAttribute`` writes and reads them),
several times quicker. Attribute names and types come from the static attribute tables of
:mod:`asynccfn.journal._schema` (which a test holds equal to the models' attributes), so the
runtime never imports pynamodb; a codec refuses a record whose fields differ from its table's
attributes, so the schema stays defined once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._errors import JournalError
from ._schema import Attr, Schema
from .size import number_size, value_size

if TYPE_CHECKING:
    from pynamodb.attributes import AttributeContainer

E = TypeVar("E")


def _number(text: str) -> int | float:
    """A DynamoDB number as ``NumberAttribute`` reads it (JSON: an int, else a float)."""
    if "." in text or "e" in text or "E" in text:
        return float(text)
    return int(text)


def _number_text(value: Any) -> str:
    """A number as ``NumberAttribute`` writes it (JSON; a float's JSON is its repr)."""
    kind = type(value)
    return str(value) if kind is int else repr(value) if kind is float else json.dumps(value)


def _string_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


# type code, decode (None: the wire text itself), encode, size of the encoded value
_Scalar = tuple[str, Callable[[str], Any] | None, Callable[[Any], str], Callable[[str], int]]
_SCALARS: dict[str, _Scalar] = {
    "S": ("S", None, str, _string_size),
    "N": ("N", _number, _number_text, number_size),
}


class ItemCodec(Generic[E]):
    """Encodes and decodes the items (or maps) of one attribute table as ``entry`` records.

    ``schema`` is a static table of :mod:`asynccfn.journal._schema`, or a pynamodb model (or
    map attribute), whose declared table is then used (this imports pynamodb). Attributes
    may be strings, numbers, lists of strings, or lists of maps whose table (or model) is a
    key of ``nested`` (mapped to its record type).

    Raises:
        TypeError: an attribute of another kind or with a default, or the attributes and the
            record's fields differ.
    """

    __slots__ = ("_decoders", "_lists", "_required", "_scalars", "entry", "schema")

    def __init__(
        self,
        schema: Schema | type[AttributeContainer],
        entry: type[E],
        nested: Mapping[Schema | type[AttributeContainer], type[Any]] | None = None,
    ) -> None:
        self.schema = _table(schema)
        self.entry = entry
        nested_tables = {_table(k): v for k, v in (nested or {}).items()}
        title = self.schema.name
        attributes = {attr.name: attr for attr in self.schema.attributes}
        fields = _fields(entry)
        if attributes.keys() != fields.keys():
            raise TypeError(
                f"{entry.__name__}'s fields and {title}'s attributes differ: "
                f"{sorted(attributes.keys() ^ fields.keys())}"
            )
        self._scalars: list[tuple[str, str, str, Callable[[Any], str], Callable[[str], int]]]
        self._scalars = []
        self._lists: list[tuple[str, str, ItemCodec[Any] | None]] = []
        self._decoders: dict[str, tuple[str, str, Callable[[Any], Any] | None]] = {}
        required = []
        for name, attr in attributes.items():
            key = name
            scalar = _SCALARS.get(attr.type)
            if scalar is not None:
                code, decode, encode, measure = scalar
                self._scalars.append((name, key, code, encode, measure))
                self._decoders[key] = (name, code, decode)
            elif attr.type == "L":
                element = _element_codec(title, attr, nested_tables)
                self._lists.append((name, key, element))
                self._decoders[key] = (name, "L", _list_decoder(element))
            else:
                raise TypeError(f"{title}.{name} is not a string, number or list")
            if not attr.null:
                required.append(name)
            if (fields[name] is None) != attr.null:
                raise TypeError(
                    f"{entry.__name__}.{name} must be optional exactly when it may be null"
                )
        self._required = frozenset(required)

    def encode(self, record: E) -> tuple[dict[str, dict[str, Any]], int]:
        """The item in DynamoDB's wire form, and its size as DynamoDB counts it."""
        raw: dict[str, dict[str, Any]] = {}
        size = 0
        for name, key, code, encode, measure in self._scalars:
            value = getattr(record, name)
            if value is not None:
                text = encode(value)
                raw[key] = {code: text}
                size += len(key) + measure(text)
        for name, key, _ in self._lists:
            value = getattr(record, name)
            if value is not None:
                wire = self.encode_list(name, value)
                raw[key] = wire
                size += len(key) + value_size(wire)
        return raw, size

    def encode_list(self, name: str, items: list[Any]) -> dict[str, Any]:
        """A list attribute's value in wire form (``{"L": [...]}``)."""
        element = next(codec for n, _, codec in self._lists if n == name)
        if element is None:
            return {"L": [{"S": str(item)} for item in items]}
        return {"L": [{"M": element.encode(item)[0]} for item in items]}

    def decode(self, raw: Mapping[str, Any]) -> E:
        """A record from DynamoDB's wire form (attributes outside the schema are ignored).

        Raises:
            JournalError: the item lacks a required attribute.
        """
        values: dict[str, Any] = {}
        decoders = self._decoders
        for key, typed in raw.items():
            field = decoders.get(key)
            if field is not None:
                name, code, decode = field
                wire = typed.get(code)
                if wire is not None:
                    values[name] = wire if decode is None else decode(wire)
        try:
            return self.entry(**values)
        except TypeError:
            missing = sorted(self._required - values.keys())
            where = raw.get("sk", {}).get("S") or self.schema.name
            raise JournalError(f"journal item {where} lacks {missing}") from None

    @staticmethod
    def number(value: Any) -> dict[str, str]:
        """A number attribute value in wire form (for expression values)."""
        return {"N": _number_text(value)}


_REQUIRED = object()


def _fields(entry: type[Any]) -> dict[str, object]:
    """A record's fields as its ``__init__`` takes them (a plain record's keyword-only
    parameters, or a dataclass's): name -> default (``_REQUIRED``: none)."""
    init = entry.__init__
    code = init.__code__
    names = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
    positional = code.co_varnames[1 : code.co_argcount]
    defaults = dict(zip(reversed(positional), reversed(init.__defaults__ or ()), strict=False))
    defaults |= init.__kwdefaults__ or {}
    return {name: defaults.get(name, _REQUIRED) for name in names}


def _table(schema: Schema | type[AttributeContainer]) -> Schema:
    """A static table as is; a pynamodb model's as it declares it."""
    if isinstance(schema, Schema):
        return schema
    from .models import declared_schema  # only for a model: imports pynamodb

    return declared_schema(schema)


def _element_codec(
    title: str, attr: Attr, nested: Mapping[Schema, type[Any]]
) -> ItemCodec[Any] | None:
    """The codec of a list's elements: None for strings, a nested codec for known maps."""
    element = attr.element
    if element == "S":
        return None
    if isinstance(element, Schema) and element in nested:
        return ItemCodec(element, nested[element])
    shown = element.name if isinstance(element, Schema) else element
    raise TypeError(f"{title}.{attr.name} is a list of {shown!r}, not strings or maps")


def _list_decoder(element: ItemCodec[Any] | None) -> Callable[[list[Any]], list[Any]]:
    if element is None:
        return lambda items: [item["S"] for item in items]
    return lambda items: [element.decode(item["M"]) for item in items]
