"""ResourceProperties as CloudFormation sends them: every scalar a string.

A template's ``Count: 5`` and ``Flag: true`` reach a custom resource as ``"5"`` and ``"true"``,
at any depth of lists and objects; a handler tested with JSON numbers and booleans would meet
strings only in its first real deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["as_cloudformation_sends"]


def as_cloudformation_sends(value: Any) -> Any:
    """``value`` with every number and boolean a string, as CloudFormation encodes it
    (``true``/``false`` lower case); objects and lists keep their shape, null stays null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): as_cloudformation_sends(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_cloudformation_sends(item) for item in value]
    return value
