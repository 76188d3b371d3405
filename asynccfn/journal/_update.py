"""UpdateItem requests on the operation item, written as DynamoDB expression text.

Every operation takes the same few update shapes (claim, lease, hand-over, outbox, posted), so
they are written once as expression text here rather than assembled from pynamodb's expression
objects on every call, which cost more than the rest of the request's preparation together.
Attribute names are always ``#name`` placeholders (``status``, ``owner`` and more are DynamoDB
reserved words); values are encoded by their Python type, lists come encoded by the item's
codec.
"""

from __future__ import annotations

import re
from typing import Any

_NAME = re.compile(r"#(\w+)")


def wire(value: Any) -> dict[str, Any]:
    """A scalar in DynamoDB's wire form: ``str`` -> S, ``int``/``float`` -> N.

    Raises:
        TypeError: any other type (lists of events go through :meth:`Update.append`).
    """
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"N": str(value) if isinstance(value, int) else repr(value)}
    raise TypeError(f"no DynamoDB scalar for {type(value).__name__}")


class Update:
    """The clauses of one UpdateItem, collected in order, then sent as keyword arguments.

    ``#name`` placeholders in every clause and condition are declared for the request; ``:x``
    placeholders are values given alongside (a value named twice must be the same value).
    """

    __slots__ = ("_adds", "_removes", "_sets", "_values")

    def __init__(self) -> None:
        self._sets: list[str] = []
        self._removes: list[str] = []
        self._adds: list[str] = []
        self._values: dict[str, dict[str, Any]] = {}

    def set(self, **values: Any) -> Update:
        """``SET #name = :name``; a None value removes the attribute instead."""
        for name, value in values.items():
            if value is None:
                self._removes.append(f"#{name}")
            else:
                self._sets.append(f"#{name} = :{name}")
                self._value(f":{name}", wire(value))
        return self

    def set_new(self, **values: Any) -> Update:
        """``SET #name = if_not_exists(#name, :name)``: set by the write that creates the item."""
        for name, value in values.items():
            self._sets.append(f"#{name} = if_not_exists(#{name}, :{name})")
            self._value(f":{name}", wire(value))
        return self

    def set_list(self, name: str, items: dict[str, Any]) -> Update:
        """``SET #name = :name``, ``items`` a list in wire form (``{"L": [...]}``)."""
        self._sets.append(f"#{name} = :{name}")
        self._value(f":{name}", items)
        return self

    def append(self, name: str, items: dict[str, Any]) -> Update:
        """Append ``items`` (a list in wire form) to a list attribute, created when absent."""
        self._sets.append(f"#{name} = list_append(if_not_exists(#{name}, :no_{name}), :{name})")
        self._value(f":no_{name}", {"L": []})
        self._value(f":{name}", items)
        return self

    def remove(self, *names: str) -> Update:
        self._removes.extend(f"#{name}" for name in names)
        return self

    def add(self, **amounts: int) -> Update:
        """``ADD #name :name``: a number counted up (from 0 when absent)."""
        for name, amount in amounts.items():
            self._adds.append(f"#{name} :add_{name}")
            self._value(f":add_{name}", wire(amount))
        return self

    def request(
        self, *, condition: str, values: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """UpdateItem's keyword arguments (less TableName and Key), with ``condition``.

        Raises:
            ValueError: a value placeholder is given two different values.
        """
        for placeholder, value in (values or {}).items():
            self._value(placeholder, wire(value))
        clauses = []
        if self._sets:
            clauses.append("SET " + ", ".join(self._sets))
        if self._removes:
            clauses.append("REMOVE " + ", ".join(self._removes))
        if self._adds:
            clauses.append("ADD " + ", ".join(self._adds))
        expression = " ".join(clauses)
        names = {f"#{n}": n for n in _NAME.findall(expression + " " + condition)}
        return {
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": self._values,
            **extra,
        }

    def _value(self, placeholder: str, value: dict[str, Any]) -> None:
        known = self._values.setdefault(placeholder, value)
        if known != value:
            raise ValueError(f"{placeholder} given two values: {known} and {value}")
