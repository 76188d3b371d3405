"""Structured logs: every record of the ``asynccfn`` logger carries the operation it is about.

In Lambda with ``AWS_LAMBDA_LOG_FORMAT=JSON`` the runtime's own JSON formatter prints these
fields beside ``requestId``; elsewhere asynccfn prints JSON lines of the same shape itself.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._redact import invocation_secrets

if TYPE_CHECKING:
    from ._redact import Redactor

LOGGER_NAME = "asynccfn"
logger = logging.getLogger(LOGGER_NAME)

_fields: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "asynccfn_log_fields", default=None
)

_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_fields.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        secrets = invocation_secrets.get()  # the running invocation's ResponseURL
        if secrets:
            _mask(record, secrets)
        return True


def _mask(record: logging.LogRecord, secrets: Redactor) -> None:
    """Mask ``secrets`` in ``record``'s message, extra fields and exception, whichever
    formatter prints it (asynccfn's JSON lines, or Lambda's own JSON format: both print every
    extra field)."""
    message = _message(record)
    if secrets.leaks(message):
        record.msg, record.args = secrets.text(message), None
    for key, value in list(vars(record).items()):
        if key not in _STANDARD_ATTRS:
            text = _printed(value)
            if secrets.leaks(text):  # its masked text, a string: the line stays valid JSON
                setattr(record, key, secrets.text(text))
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, Exception) and secrets.carries(exc):  # its traceback goes with it
        masked = secrets.error(exc)
        record.exc_info = (type(masked), masked, masked.__traceback__)
        record.exc_text = None


def _message(record: logging.LogRecord) -> str:
    """``record``'s message. When it cannot be made (arguments that do not fit it, as in
    ``log.info("%s %s", x)``, or a message whose ``str()`` raises), its bare text saying so,
    the arguments left out: a filter runs outside logging's own error handling, so the
    mistake would raise in the handler, and logging's report of it would print the arguments
    unmasked."""
    try:
        return record.getMessage()
    except Exception:
        try:
            text = str(record.msg)
        except Exception:
            text = f"<a {type(record.msg).__name__} whose text could not be read>"
        record.msg = f"{text} [the log call's message could not be made: arguments left out]"
        record.args = None
        return record.msg


def _printed(value: object) -> str:
    """``value`` as a JSON log line prints it (a string as it is)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except Exception:  # nor can the log line print it: a logging call must not fail here
        return ""


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line, with the keys Lambda's JSON log format uses."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        out.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        )
        if record.exc_info:
            out["errorType"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            out["stackTrace"] = self.formatException(record.exc_info).splitlines()
        return json.dumps(out, default=str)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


_MODULE_LOGGERS = ("asynccfn.responder", "asynccfn.handler", "asynccfn.runtime")
_configured = False


def configure() -> None:
    """Install the context filter, and a JSON-lines handler unless Lambda already prints JSON.

    Idempotent; called by ``lambda_entry``.
    """
    global _configured
    if _configured:
        return
    _configured = True
    context_filter = _ContextFilter()
    if logger.level == logging.NOTSET:
        logger.setLevel(os.environ.get("ASYNCCFN_LOG_LEVEL", "INFO").upper())
    # Tag (and mask) our records at the source, whichever handler prints them: Lambda's JSON
    # formatter prints extra fields already, and a handler a user adds gets them masked too
    # (a logger's filter sees only its own records, hence each module's logger).
    for name in [LOGGER_NAME, *_MODULE_LOGGERS]:
        logging.getLogger(name).addFilter(context_filter)
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        return
    handler = _StdoutHandler()
    handler.addFilter(context_filter)
    handler.setFormatter(JsonLinesFormatter())
    logger.addHandler(handler)
    logger.propagate = False


@contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Attach ``fields`` to every ``asynccfn`` record logged inside the block."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def current_fields() -> dict[str, Any]:
    """The fields ``log_fields`` attached here, for a record logged from another thread."""
    return dict(_fields.get() or {})
