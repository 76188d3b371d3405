"""JSON values as the protocol handles them: read-only copies of an event's properties, and
the type names, sizes and short renderings that reasons quote.

Everything here is pure (no I/O) and private to ``_protocol``, ``_urls`` and ``_response``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

_MAX_PROPERTIES_DEPTH = 100


# --- read-only properties ------------------------------------------------------------------


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError("request properties are read-only; copy.deepcopy() gives a mutable copy")


class _ReadOnlyDict(dict[str, Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, object]) -> dict[str, Any]:
        return {key: _thaw(item) for key, item in self.items()}

    def __reduce__(self) -> tuple[type[_ReadOnlyDict], tuple[dict[str, Any]]]:
        return (_ReadOnlyDict, (dict(self),))


class _ReadOnlyList(list[Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, object]) -> list[Any]:
        return [_thaw(item) for item in self]

    def __reduce__(self) -> tuple[type[_ReadOnlyList], tuple[list[Any]]]:
        return (_ReadOnlyList, (list(self),))


class _NotJSON(Exception):
    """A properties value that JSON cannot hold; ``args[0]`` says why."""


def _freeze(value: object, depth: int = 0) -> object:
    """Return a read-only deep copy of a JSON value.

    Raises:
        _NotJSON: a value JSON cannot hold, a non-string key, or nesting too deep.
    """
    if depth > _MAX_PROPERTIES_DEPTH:
        raise _NotJSON(f"is nested more than {_MAX_PROPERTIES_DEPTH} levels deep")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        frozen = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJSON(f"has a key that is not a string ({_json_type(key)})")
            frozen[key] = _freeze(item, depth + 1)
        return _ReadOnlyDict(frozen)
    if isinstance(value, list | tuple):
        return _ReadOnlyList(_freeze(item, depth + 1) for item in value)
    raise _NotJSON(f"holds a value JSON cannot represent ({type(value).__name__})")


def _thaw(value: object) -> object:
    if isinstance(value, dict):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_thaw(item) for item in value]
    return value


# --- naming and measuring values in reasons ------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _shown(value: object) -> str:
    """A short, safe rendering of a scalar field's value for a reason."""
    if isinstance(value, str):
        return repr(_short_text(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = repr(value)
        return text if len(text) <= 40 else f"a {len(text)}-digit number"
    return _json_type(value)


def _short_text(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _json_size(value: object) -> int | None:
    """Bytes of ``value`` as compact UTF-8 JSON, or None if it is not valid Unicode text."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return len(text.encode("utf-8"))
    except (UnicodeEncodeError, TypeError, ValueError):
        return None
