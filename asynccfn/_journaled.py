"""How live values and errors become journal text, and journaled errors become exceptions."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import _errors
from ._aws import error_code as _error_code
from ._errors import Failed, StepFailed
from ._redact import masked_json, message_of

if TYPE_CHECKING:
    from .journal.models import StepItem

# asynccfn's own errors, by the name a journal item gives them (built once, never imported
# from journal text).
_OWN_ERRORS: dict[str, type[Exception]] = {
    f"{obj.__module__}:{obj.__qualname__}": obj
    for obj in vars(_errors).values()
    if isinstance(obj, type) and issubclass(obj, Exception) and obj is not StepFailed
}


def to_json(value: Any, *, what: str) -> str:
    """``value`` as the JSON text a journal item keeps (a step's result, a wait's value,
    ``ctx.state``), the running invocation's secrets (its ResponseURL) masked: the live run
    then goes on with the value as journaled, as a replay would.

    Raises:
        Failed: ``value`` is not JSON-serialisable.
    """
    try:
        text = _dump(value)
    except (TypeError, ValueError) as exc:
        raise Failed(f"{what} is not JSON-serialisable: {exc}") from None
    return masked_json(value, text, _dump)


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)


def type_name(exc: BaseException) -> str:
    """The ``module:QualName`` a journal item names ``exc``'s type by (a StepFailed keeps
    the name of the type it stands for, so that it replays as itself)."""
    if isinstance(exc, StepFailed):
        return exc.type_name
    cls = type(exc)
    return f"{cls.__module__}:{cls.__qualname__}"


def error_text(exc: BaseException) -> str:
    """The message a journal item records for ``exc`` (a StepFailed's own message)."""
    return exc.message if isinstance(exc, StepFailed) else message_of(exc)


def rebuild_error(
    step: StepItem, registered: Mapping[str, type[Exception]] | None = None
) -> Exception:
    """The journaled failure as the same type and message, where the type may be rebuilt:
    a built-in exception, botocore's ClientError (by its error code), asynccfn's own errors
    and the types in ``registered`` (by ``module:QualName``, from ``Resource(errors=...)``).
    Anything else, and a type whose constructor refuses the message, comes back as
    :class:`StepFailed`. No module is imported: the journal's text chooses nothing to run."""
    return rebuild(
        step.error_type or "builtins:Exception",
        step.error_message or "",
        code=step.error_code,
        action=step.name,
        registered=registered,
    )


def withheld(
    exc: BaseException, step: str, registered: Mapping[str, type[Exception]] | None = None
) -> Exception:
    """What a sensitive step's failure ``exc`` becomes before it is journaled or raised: the
    same type (rebuilt as replay would rebuild it) and error code, with a message that says
    it was withheld. Nobody knows which words of a message repeat the step's secret, so none
    of them are kept; the exception carries no traceback, cause or context of ``exc``."""
    return rebuild(
        type_name(exc),
        f"the message is withheld: step {step!r} is sensitive",
        code=_error_code(exc),
        action=step,
        registered=registered,
    )


def rebuild(
    name: str,
    message: str,
    *,
    code: str | None,
    action: str,
    registered: Mapping[str, type[Exception]] | None = None,
) -> Exception:
    """An exception of the type ``name`` (``module:QualName``) with ``message``, as
    :func:`rebuild_error` rebuilds a journaled one; ``code`` makes it a ClientError of
    ``action``'s operation."""
    if code is not None:
        from botocore.exceptions import ClientError

        return ClientError({"Error": {"Code": code, "Message": message}}, action.split(":")[-1])
    cls = _rebuildable(name, registered or {})
    if cls is not None:
        try:
            return cls(message)
        except Exception:  # a constructor that wants more than a message
            pass
    return StepFailed(name, message)


def _rebuildable(name: str, registered: Mapping[str, type[Exception]]) -> type[Exception] | None:
    module, _, qualname = name.partition(":")
    if module == "builtins":
        found = vars(builtins).get(qualname)
        if isinstance(found, type) and issubclass(found, Exception):
            return found
        return None
    return _OWN_ERRORS.get(name) or registered.get(name)
