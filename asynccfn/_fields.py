"""How a typed resource's fields say they force replacement (light: imported with asynccfn).

``asynccfn.field(replaces=True)`` on a dataclass field, or ``Annotated[T, asynccfn.Replaces]``
on a field of any supported type (dataclass, msgspec.Struct, pydantic model): an Update that
changes such a field needs a new physical id, and ``request.replacing`` says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final

__all__ = ["REPLACES_METADATA", "Replaces", "field"]

REPLACES_METADATA: Final = "asynccfn.replaces"
"""The key ``field(replaces=True)`` sets in a dataclass field's metadata."""


class _ReplacesMarker:
    """The marker ``Annotated[T, asynccfn.Replaces]`` carries."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "asynccfn.Replaces"


Replaces: Final = _ReplacesMarker()
"""``Annotated[str, asynccfn.Replaces]``: changing this field replaces the resource."""


def field(
    *,
    replaces: bool = False,
    default: Any = dataclasses.MISSING,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field of a resource's properties: ``dataclasses.field`` that records
    ``replaces`` (an Update changing it needs a new physical id). For a msgspec.Struct or a
    pydantic model, annotate the field ``Annotated[T, asynccfn.Replaces]`` instead.

    Raises:
        ValueError: both ``default`` and ``default_factory`` are given (as dataclasses does).
    """
    metadata = {REPLACES_METADATA: True} if replaces else {}
    made: Any = dataclasses.field(
        default=default, default_factory=default_factory, metadata=metadata
    )
    return made
