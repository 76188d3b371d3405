"""Plain records: the runtime's internal value classes.

Every cold start defines these classes, and a dataclass costs that 0.5-1 ms each (its
methods are compiled from generated source, one ``exec`` each), a NamedTuple 0.1-0.5 ms, a
plain class a few µs. A record declares its fields as ``__slots__`` and takes them as its
``__init__``'s keyword-only parameters (what the journal's codec reads). Unlike a NamedTuple,
a record is no tuple: ``json.dumps`` cannot write one field by field past its ``__repr__``
(which a record holding secrets masks).
"""

from __future__ import annotations

from typing import Any, Self

__all__ = ["Record"]


class Record:
    """A record of named fields (its slots), compared and shown by them; mutable."""

    __slots__: tuple[str, ...] = ()
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({shown})"

    def replaced(self, **changes: Any) -> Self:
        """A copy with ``changes`` (as ``dataclasses.replace``).

        Raises:
            TypeError: a change names no field.
        """
        return type(self)(**({name: getattr(self, name) for name in self.__slots__} | changes))
