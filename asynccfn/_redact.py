"""The one redaction point for error text: secret values masked in whatever asynccfn records,
logs or sends about a failure.

A :class:`Redactor` holds secret values (the ``sensitive`` members of a ``ctx.call``'s request,
a NoEcho response's Data) and masks every form in which text can carry them: the value as
given, its ``str`` and ``repr``, its JSON, and each value nested in it. ``error`` gives an
exception whose message, arguments and attributes no longer hold them; botocore's
ParamValidationError, whose report repeats the values it refuses, is rebuilt naming the
parameters only.
"""

from __future__ import annotations

import base64
import contextvars
import copy
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._errors import StepFailed
from ._response import MASK

__all__ = [
    "Redactor",
    "invocation_secrets",
    "keep_secret",
    "masked",
    "masked_json",
    "masked_value",
    "masking",
    "message_of",
]

# The shortest text :meth:`Redactor.keep` masks: shorter strings are words of every message.
_SHORTEST_KEPT = 4

# The lines of botocore's ParamValidationError report, up to the parameter they name (what
# follows is the refused value, then its type). Compiled on first use (by re's cache): only
# an error needs it, and compiling it is a third of a millisecond of every cold start.
_PARAM_PROBLEM = (
    r"^(?P<what>Invalid (?:type for (?:document )?parameter|value for parameter|length for "
    r"parameter|parameter)) (?P<name>[^\s,:]+)"
    r"|^(?P<where>Missing required parameter|Unknown parameter) in (?P<parent>[^\s:]+): "
    r'"(?P<member>[^"\s]+)"'
    r"|^(?P<union>Invalid number of parameters set for tagged union structure|Must set one of "
    r"the following keys for tagged union ?structure) (?P<structure>[^\s:.]+)"
)


class Redactor:
    """Masks a set of secret values in text and exceptions. Empty, it changes nothing.

    Values given at construction are masked everywhere, JSON values included; values added by
    :meth:`keep` (a sensitive step's result) only in text: error messages, log lines, a
    Reason, never in the values a handler journals or answers on purpose.
    """

    __slots__ = ("_everywhere", "_forms")

    def __init__(self, values: Iterable[object] = ()) -> None:
        forms: set[str] = set()
        for value in values:
            _collect_forms(value, forms)
        self._everywhere = _longest_first(forms)
        self._forms = self._everywhere

    def __bool__(self) -> bool:
        return bool(self._forms)

    def keep(self, value: object) -> None:
        """Mask ``value``'s strings and numbers (of four characters or more, at any depth) in
        text too."""
        found: set[str] = set()
        _collect_strings(value, found)
        found.difference_update(self._forms)
        if found:  # sorted again only when something is new (state is kept on every write)
            self._forms = _longest_first({*self._forms, *found})

    def text(self, text: str) -> str:
        """``text`` with every form of every secret value replaced by the mask."""
        return _replaced(text, self._forms)

    def leaks(self, text: str) -> bool:
        """Whether ``text`` holds any form of a secret value."""
        return any(form in text for form in self._forms)

    def leaks_in_values(self, text: str) -> bool:
        """Whether ``text`` holds a form of a value masked everywhere (see the class)."""
        return any(form in text for form in self._everywhere)

    def json_value(self, value: Any) -> Any:
        """A JSON value (dicts, lists, strings, numbers, ...) with the values masked
        everywhere masked in every string, keys included: the same objects where there is
        nothing to mask."""
        if isinstance(value, str):
            return _replaced(value, self._everywhere)
        if isinstance(value, dict):
            return {_replaced(k, self._everywhere): self.json_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.json_value(item) for item in value]
        return value

    def error(self, exc: Exception) -> Exception:
        """``exc`` as it may be recorded, logged and sent: the same object when it carries no
        secret, else a copy of the same type with the secrets masked (a ClientError keeps its
        response, masked, so its code and status still decide retries). ParamValidationError
        always becomes one naming the parameters only. An exception that cannot be copied
        without a secret becomes :class:`StepFailed` with the masked message.

        The result carries no ``__cause__``, ``__context__`` or traceback of ``exc``: raise it
        ``from None`` and outside the ``except`` block that caught ``exc``.
        """
        from botocore.exceptions import ClientError, ParamValidationError

        if isinstance(exc, ParamValidationError):
            report = str(exc.kwargs.get("report", ""))
            return ParamValidationError(report=self.text(_parameters_only(report)))
        if not self._forms or not self.carries(exc):
            return exc
        masked: Exception
        try:
            if isinstance(exc, ClientError):
                masked = type(exc)(self._scrub(copy.deepcopy(exc.response)), exc.operation_name)
            else:
                masked = copy.copy(exc)
                masked.args = self._scrub(exc.args)
                for name, value in vars(exc).items():
                    setattr(masked, name, self._scrub(value))
        except Exception:  # a type that does not copy: its name and the masked message
            masked = StepFailed(_type_name(exc), self.text(message_of(exc)))
        if self.carries(masked):
            masked = StepFailed(_type_name(exc), self.text(message_of(exc)))
        masked.__traceback__ = None
        masked.__cause__ = masked.__context__ = None
        return masked

    def carries(self, exc: BaseException) -> bool:
        """Whether the message, arguments or attributes of ``exc``, or of an exception it
        chains to (its cause, its context, a group's members: a traceback prints them all),
        hold a secret value."""
        for link in _chain(exc):
            texts = [message_of(link), _safe(repr, link) or "", _safe(repr, link.args) or ""]
            texts += [_safe(repr, v) or "" for v in getattr(link, "__dict__", {}).values()]
            if any(self.leaks(text) for text in texts):
                return True
        return False

    def _scrub(self, value: Any) -> Any:
        """``value`` with the secrets masked in every string it holds."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self._scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._scrub(item) for item in value)
        return value


# The secrets of the invocation running in this context (its ResponseURL): whatever it logs,
# journals or answers is masked with them, text its own code may not know it holds (a user's
# error or log line that repeats the URL).
invocation_secrets: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "asynccfn_invocation_secrets", default=None
)


@contextmanager
def masking(secrets: Redactor) -> Iterator[None]:
    """Make ``secrets`` the invocation's secrets inside the block (see :func:`masked`)."""
    token = invocation_secrets.set(secrets)
    try:
        yield
    finally:
        invocation_secrets.reset(token)


def keep_secret(value: object) -> None:
    """Mask ``value`` in the running invocation's text from now on (see :meth:`Redactor.keep`;
    nothing outside one)."""
    secrets = invocation_secrets.get()
    if secrets is not None:
        secrets.keep(value)


def message_of(exc: BaseException) -> str:
    """``str(exc)``, or when that raises (a user's ``__str__`` that fails), a text naming the
    exception's type: an error must never keep the error from being answered."""
    text = _safe(str, exc)
    return text if text is not None else f"<{_type_name(exc)}: its message could not be read>"


def masked(text: str) -> str:
    """``text`` with the running invocation's secrets masked (as it is, outside one)."""
    secrets = invocation_secrets.get()
    return secrets.text(text) if secrets else text


def masked_value(value: Any) -> Any:
    """A JSON value with the running invocation's secrets masked in its strings (as it is,
    outside one)."""
    secrets = invocation_secrets.get()
    return secrets.json_value(value) if secrets else value


def masked_json(value: Any, text: str, dump: Callable[[Any], str]) -> str:
    """``text``, the JSON of ``value`` made by ``dump``, or when it holds the running
    invocation's secrets, the JSON of ``value`` with them masked (still valid JSON: a secret's
    JSON form includes the quotes around it, which masking the text would remove)."""
    secrets = invocation_secrets.get()
    if secrets is None or not secrets.leaks_in_values(text):
        return text
    return dump(secrets.json_value(value))


def _longest_first(forms: set[str]) -> tuple[str, ...]:
    """The forms to replace, longest first: a value that contains another is masked whole."""
    forms.discard("")
    return tuple(sorted(forms, key=len, reverse=True))


def _replaced(text: str, forms: tuple[str, ...]) -> str:
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception a traceback of it prints: causes, contexts, and the
    members of an exception group, each once."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending += [e for e in (link.__cause__, link.__context__) if e is not None]
        if isinstance(link, BaseExceptionGroup):
            pending += list(link.exceptions)


def _collect_strings(value: object, forms: set[str]) -> None:
    """The text forms of the strings (and bytes) and numbers in ``value``, at any depth, long
    enough to mask in text without masking the words of every message."""
    for item in _nested(value):
        if _long_enough(item):
            _add_forms(item, forms)


def _long_enough(value: object) -> bool:
    """Whether ``value`` is a string, bytes or number (a PIN, an account number; never a bool)
    whose text is long enough to mask (see :data:`_SHORTEST_KEPT`)."""
    if isinstance(value, str | bytes | bytearray):
        return len(value) >= _SHORTEST_KEPT
    if isinstance(value, int | float) and not isinstance(value, bool):
        return len(_safe(str, value) or "") >= _SHORTEST_KEPT
    return False


def _nested(value: object) -> Iterator[object]:
    """``value`` and every value nested in it, each container walked once (a container that
    holds itself ends there), without recursion: any depth is walked."""
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        yield item
        members = _members(item)
        if members and id(item) not in seen:
            seen.add(id(item))
            stack.extend(members)


def _members(value: object) -> Iterable[object]:
    """The values a container holds (a mapping's values); none for anything else."""
    if isinstance(value, Mapping):
        return value.values()
    if isinstance(value, list | tuple | set | frozenset):
        return value
    return ()


def _collect_forms(value: object, forms: set[str]) -> None:
    """Every text form in which ``value``, or a value nested in it, can appear."""
    for item in _nested(value):
        _add_forms(item, forms)


def _add_forms(value: object, forms: set[str]) -> None:
    """The text forms in which ``value`` itself can appear."""
    if value is None or isinstance(value, bool):
        return  # None/True/False are words of every message, and no secret
    if isinstance(value, str):
        forms.add(value)
        forms.add(repr(value)[1:-1])  # as it appears inside a container's repr
        forms.add(json.dumps(value)[1:-1])  # ... and inside JSON
    elif isinstance(value, bytes | bytearray):
        raw = bytes(value)
        forms.add(raw.decode("utf-8", "replace"))
        forms.add(repr(raw)[2:-1])
        forms.add(base64.b64encode(raw).decode())  # how JSON protocols send a blob
    for form in (_safe(str, value), _safe(repr, value), _safe(_json, value)):
        if form:
            forms.add(form)


def _safe(render: Any, value: object) -> str | None:
    try:
        text = render(value)
    except Exception:
        return None
    return text if isinstance(text, str) else None


def _json(value: object) -> str:
    return json.dumps(value, default=str)


def _parameters_only(report: str) -> str:
    """botocore's validation report with each problem cut before the value it repeats."""
    problems = []
    for match in re.finditer(_PARAM_PROBLEM, report, re.MULTILINE):
        if match["what"]:
            problems.append(f"{match['what']} {match['name']} (value not shown)")
        elif match["where"]:
            problems.append(f'{match["where"]} in {match["parent"]}: "{match["member"]}"')
        else:
            problems.append(f"{match['union']} {match['structure']}")
    return "\n".join(problems) or "the request is invalid (the details are not shown)"


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}:{cls.__qualname__}"
