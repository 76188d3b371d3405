"""Step items between DynamoDB's wire form and :class:`~asynccfn.journal.models.StepEntry`,
without pynamodb's general machinery.

A step is built and written once per durable action and decoded once per replayed action, so
the hot path reads and writes step items here, exactly as the pynamodb model would (numbers as
``NumberAttribute`` writes and reads them), several times quicker. The attribute names and
types come from the model; the codec refuses a record whose fields differ from them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from .._errors import JournalError
from .models import StepEntry
from .size import number_size


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
_Kind = tuple[str, Callable[[str], Any] | None, Callable[[Any], str], Callable[[str], int]]
_KINDS: dict[type[Any], _Kind] = {
    UnicodeAttribute: ("S", None, str, _string_size),
    NumberAttribute: ("N", _number, _number_text, number_size),
}


class StepCodec:
    """Encodes and decodes the step items of one table's step model.

    Raises:
        TypeError: the model has an attribute that is not a plain string or number, or the
            attributes and :class:`StepEntry`'s fields differ.
    """

    __slots__ = ("_decoders", "_encoders", "_required", "model")

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        attributes = model.get_attributes()
        fields = {f.name: f for f in dataclasses.fields(StepEntry)}
        if attributes.keys() != fields.keys():
            raise TypeError(
                f"StepEntry's fields and {model.__name__}'s attributes differ: "
                f"{sorted(attributes.keys() ^ fields.keys())}"
            )
        self._encoders: list[tuple[str, str, str, Callable[[Any], str], Callable[[str], int]]]
        self._encoders = []
        self._decoders: dict[str, tuple[str, str, Callable[[str], Any] | None]] = {}
        required = []
        for name, attr in attributes.items():
            kind = _KINDS.get(type(attr))
            if kind is None or attr.default is not None or attr.default_for_new is not None:
                raise TypeError(f"{model.__name__}.{name} is not a plain string or number")
            code, decode, encode, measure = kind
            self._encoders.append((name, attr.attr_name, code, encode, measure))
            self._decoders[attr.attr_name] = (name, code, decode)
            if not attr.null:
                required.append(name)
            if (fields[name].default is None) != attr.null:
                raise TypeError(f"StepEntry.{name} must be optional exactly when it may be null")
        self._required = frozenset(required)

    def encode(self, step: StepEntry) -> tuple[dict[str, dict[str, str]], int]:
        """The item in DynamoDB's wire form, and its size as DynamoDB counts it."""
        raw: dict[str, dict[str, str]] = {}
        size = 0
        for name, key, code, encode, measure in self._encoders:
            value = getattr(step, name)
            if value is not None:
                text = encode(value)
                raw[key] = {code: text}
                size += len(key) + measure(text)
        return raw, size

    def decode(self, raw: dict[str, Any]) -> StepEntry:
        """A step from DynamoDB's wire form (attributes outside the schema are ignored).

        Raises:
            JournalError: the item lacks a required attribute.
        """
        values: dict[str, Any] = {}
        decoders = self._decoders
        for key, typed in raw.items():
            field = decoders.get(key)
            if field is not None:
                name, code, decode = field
                text = typed.get(code)
                if text is not None:
                    values[name] = text if decode is None else decode(text)
        try:
            return StepEntry(**values)
        except TypeError:
            missing = sorted(self._required - values.keys())
            where = raw.get("sk", {}).get("S")
            raise JournalError(f"journal step item {where} lacks {missing}") from None

    @staticmethod
    def number(value: Any) -> dict[str, str]:
        """A number attribute value in wire form (for expression values)."""
        return {"N": _number_text(value)}
