"""Journal items between DynamoDB's wire form and the runtime's plain records
(:class:`~asynccfn.journal.models.StepEntry`, :class:`~asynccfn.journal.models.OperationEntry`),
without pynamodb's general machinery.

A step is built and written once per durable action and decoded once per replayed action, and
the operation item is decoded at every claim, so the runtime reads and writes items here,
exactly as the pynamodb models would (numbers as ``NumberAttribute`` writes and reads them),
several times quicker. Attribute names and types come from the models; a codec refuses a
record whose fields differ from its model's attributes, so the schema stays defined once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from pynamodb.attributes import (
    Attribute,
    AttributeContainer,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
)

from .._errors import JournalError
from .size import number_size, value_size

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
_SCALARS: dict[type[Any], _Scalar] = {
    UnicodeAttribute: ("S", None, str, _string_size),
    NumberAttribute: ("N", _number, _number_text, number_size),
}


class EntryCodec(Generic[E]):
    """Encodes and decodes the items (or maps) of one pynamodb model as ``entry`` records.

    Attributes may be strings, numbers, lists of strings, or lists of maps whose model is a
    key of ``nested`` (mapped to its record type).

    Raises:
        TypeError: an attribute of another kind or with a default, or the attributes and the
            record's fields differ.
    """

    __slots__ = ("_decoders", "_lists", "_required", "_scalars", "entry", "model")

    def __init__(
        self,
        model: type[AttributeContainer],
        entry: type[E],
        nested: Mapping[type[AttributeContainer], type[Any]] | None = None,
    ) -> None:
        self.model = model
        self.entry = entry
        attributes = model.get_attributes()
        fields = {f.name: f for f in dataclasses.fields(entry)}  # type: ignore[arg-type]
        if attributes.keys() != fields.keys():
            raise TypeError(
                f"{entry.__name__}'s fields and {model.__name__}'s attributes differ: "
                f"{sorted(attributes.keys() ^ fields.keys())}"
            )
        self._scalars: list[tuple[str, str, str, Callable[[Any], str], Callable[[str], int]]]
        self._scalars = []
        self._lists: list[tuple[str, str, EntryCodec[Any] | None]] = []
        self._decoders: dict[str, tuple[str, str, Callable[[Any], Any] | None]] = {}
        required = []
        for name, attr in attributes.items():
            if attr.default is not None or attr.default_for_new is not None:
                raise TypeError(f"{model.__name__}.{name} has a default")
            key = attr.attr_name
            scalar = _SCALARS.get(type(attr))
            if scalar is not None:
                code, decode, encode, measure = scalar
                self._scalars.append((name, key, code, encode, measure))
                self._decoders[key] = (name, code, decode)
            elif isinstance(attr, ListAttribute):
                element = _element_codec(model, name, attr, nested or {})
                self._lists.append((name, key, element))
                self._decoders[key] = (name, "L", _list_decoder(element))
            else:
                raise TypeError(f"{model.__name__}.{name} is not a string, number or list")
            if not attr.null:
                required.append(name)
            if (fields[name].default is None) != attr.null:
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
            where = raw.get("sk", {}).get("S") or self.model.__name__
            raise JournalError(f"journal item {where} lacks {missing}") from None

    @staticmethod
    def number(value: Any) -> dict[str, str]:
        """A number attribute value in wire form (for expression values)."""
        return {"N": _number_text(value)}


def _element_codec(
    model: type[AttributeContainer],
    name: str,
    attr: Attribute[Any],
    nested: Mapping[type[AttributeContainer], type[Any]],
) -> EntryCodec[Any] | None:
    """The codec of a list's elements: None for strings, a nested codec for known maps."""
    element: Any = getattr(attr, "element_type", None)
    if element is UnicodeAttribute:
        return None
    if element in nested:
        return EntryCodec(element, nested[element])
    raise TypeError(f"{model.__name__}.{name} is a list of {element!r}, not strings or maps")


def _list_decoder(element: EntryCodec[Any] | None) -> Callable[[list[Any]], list[Any]]:
    if element is None:
        return lambda items: [item["S"] for item in items]
    return lambda items: [element.decode(item["M"]) for item in items]
