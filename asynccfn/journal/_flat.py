"""Flat journal items (every attribute a plain string or number) without pynamodb's general
machinery: built, encoded and decoded straight from the model's attribute definitions.

A step is built and written once per durable action and decoded once per replayed action,
so the step item takes this path; it reads and writes exactly what the pynamodb model would
(numbers as pynamodb's ``NumberAttribute`` writes and reads them), several times quicker.
Models with lists, maps or defaults (the operation item) keep pynamodb's own path.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from .size import number_size

M = TypeVar("M", bound=Model)


def _number(text: str) -> int | float:
    """A DynamoDB number as ``NumberAttribute`` reads it (JSON: an int, else a float)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _number_text(value: Any) -> str:
    """A number as ``NumberAttribute`` writes it (JSON)."""
    return str(value) if type(value) is int else json.dumps(value)


def _string_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


# type code, decode, encode, size of the encoded value
_Kind = tuple[str, Callable[[str], Any], Callable[[Any], str], Callable[[str], int]]
_KINDS: dict[type[Any], _Kind] = {
    UnicodeAttribute: ("S", str, str, _string_size),
    NumberAttribute: ("N", _number, _number_text, number_size),
}


class FlatCodec(Generic[M]):
    """Builds, encodes and decodes items of one flat model class.

    Raises:
        TypeError: the model has an attribute that is not a plain string or number, or that
            has a default.
    """

    __slots__ = ("_by_key", "_by_name", "_required", "model")

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self._by_name: dict[str, tuple[str, _Kind]] = {}
        self._by_key: dict[str, tuple[str, _Kind]] = {}
        required: list[str] = []
        for name, attr in model.get_attributes().items():
            kind = _KINDS.get(type(attr))
            if kind is None or attr.default is not None or attr.default_for_new is not None:
                raise TypeError(f"{model.__name__}.{name} is not a plain string or number")
            self._by_name[name] = (attr.attr_name, kind)
            self._by_key[attr.attr_name] = (name, kind)
            if not attr.null:
                required.append(name)
        self._required = tuple(required)

    def build(self, **values: Any) -> M:
        """An item with ``values`` (None leaves an attribute unset), as ``model(**values)``.

        Raises:
            ValueError: a name is not an attribute of the model.
        """
        unknown = values.keys() - self._by_name.keys()
        if unknown:
            raise ValueError(f"{self.model.__name__} has no attribute {sorted(unknown)[0]!r}")
        item = self.model.__new__(self.model)
        item.attribute_values = {k: v for k, v in values.items() if v is not None}
        return item

    def encode(self, item: M) -> tuple[dict[str, dict[str, str]], int]:
        """The item in DynamoDB's wire form, and its size as DynamoDB counts it.

        Raises:
            ValueError: a required attribute is unset.
        """
        values = item.attribute_values
        for name in self._required:
            if values.get(name) is None:
                raise ValueError(f"{self.model.__name__}.{name} cannot be None")
        raw: dict[str, dict[str, str]] = {}
        size = 0
        for name, value in values.items():
            if value is None:
                continue
            key, (code, _, encode, measure) = self._by_name[name]
            text = encode(value)
            raw[key] = {code: text}
            size += len(key) + measure(text)
        return raw, size

    def decode(self, raw: dict[str, Any]) -> M:
        """An item from DynamoDB's wire form, as ``model.from_raw_data(raw)``."""
        values: dict[str, Any] = {}
        for key, typed in raw.items():
            field = self._by_key.get(key)
            if field is not None:
                name, (code, decode, _, _) = field
                text = typed.get(code)
                if text is not None:
                    values[name] = decode(text)
        item = self.model.__new__(self.model)
        item.attribute_values = values
        return item

    def number(self, value: Any) -> dict[str, str]:
        """A number attribute value in wire form (for expression values)."""
        return {"N": _number_text(value)}


@functools.cache
def flat_codec(model: type[M]) -> FlatCodec[M]:
    """The codec of ``model`` (one per model class)."""
    return FlatCodec(model)
