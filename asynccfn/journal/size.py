"""Item sizes as DynamoDB counts them, so oversize results fail with a clear error first."""

from __future__ import annotations

from typing import Any

# DynamoDB stops at 409,600 bytes an item (moto's server at 405,000); keep clear of both.
ITEM_CAP = 400_000
STATE_CAP = 350_000


def json_size(value: str | None) -> int:
    return 0 if value is None else len(value.encode())


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """The size of a low-level item (``{"name": {"S": "..."}}``) by DynamoDB's rules."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def number_size(text: str) -> int:
    """The size of a number attribute: its significant digits, two a byte, plus one."""
    digits = text.lstrip("-").replace(".", "").lstrip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        return number_size(str(raw))
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + value_size(v) for k, v in raw.items())
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in raw)
    raise ValueError(f"unknown DynamoDB type {kind!r}")
