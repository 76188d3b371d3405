"""How live values and errors become journal text, and journaled errors become exceptions."""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING, Any

from ._errors import Failed

if TYPE_CHECKING:
    from .journal.models import StepEntry


def to_json(value: Any, *, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Failed(f"{what} is not JSON-serialisable: {exc}") from None


def type_name(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}:{cls.__qualname__}"


def aws_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def rebuild_error(step: StepEntry) -> BaseException:
    """The journaled failure as the same type and message, where the type can be rebuilt."""
    type_name = step.error_type or "builtins:Exception"
    message = step.error_message or ""
    if step.error_code is not None:
        from botocore.exceptions import ClientError

        return ClientError(
            {"Error": {"Code": step.error_code, "Message": message}},
            step.name.split(":")[-1],
        )
    module_name, _, qualname = type_name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if isinstance(obj, type) and issubclass(obj, Exception):
            return obj(message)
    except Exception:
        pass
    return Failed(f"{qualname or type_name}: {message}")
