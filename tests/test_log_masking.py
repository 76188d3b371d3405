"""The invocation's secrets are masked in asynccfn's log records, at the record (whichever
handler or formatter prints it), and nothing else about a record changes."""

from __future__ import annotations

import json
import logging
import sys

from asynccfn._logging import JsonLinesFormatter, _ContextFilter
from asynccfn._redact import Redactor, masking
from asynccfn._response import Response, Status

URL = "https://bucket.s3.amazonaws.com/key?X-Amz-Signature=c0ffee"


def _record(message: str, *args: object, error: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(error), error, error.__traceback__) if error is not None else None
    return logging.LogRecord(
        "asynccfn.handler", logging.ERROR, __file__, 1, message, args, exc_info
    )


def _raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:
        return caught


def test_a_message_and_an_error_that_carry_the_url_are_masked() -> None:
    record = _record("posting to %s", URL, error=_raised(RuntimeError(f"refused {URL}")))
    with masking(Redactor([URL, "c0ffee"])):
        assert _ContextFilter().filter(record)
    line = JsonLinesFormatter().format(record)
    assert URL not in line and "c0ffee" not in line
    assert record.getMessage() == "posting to ****"
    assert "RuntimeError: refused ****" in line


def test_an_error_without_a_secret_keeps_its_traceback_and_nothing_is_masked_outside() -> None:
    from botocore.exceptions import ParamValidationError

    # (one the redactor would rebuild, were it asked to mask it)
    error = _raised(ParamValidationError(report='Missing required parameter in input: "Name"'))
    record = _record("the handler raised %s", "ParamValidationError", error=error)
    with masking(Redactor([URL])):
        _ContextFilter().filter(record)
    assert record.exc_info is not None and record.exc_info[1] is error
    assert "test_log_masking.py" in JsonLinesFormatter().format(record)  # the raising frame
    outside = _record("posting to %s", URL)
    _ContextFilter().filter(outside)  # no invocation running: nothing to mask with
    assert outside.getMessage() == f"posting to {URL}"
    assert sys.exc_info() == (None, None, None)


def test_arguments_that_do_not_fit_the_message_are_left_out_not_raised_nor_printed() -> None:
    """A logging call's mistake (``log.info("%s %s", x)``) never raises in the handler, and
    logging's own report of it (which prints the arguments) never happens."""
    record = _record("rejected %s with %s", URL)
    with masking(Redactor([URL])):
        assert _ContextFilter().filter(record)
    line = JsonLinesFormatter().format(record)
    assert URL not in line
    assert record.getMessage() == (
        "rejected %s with %s [the log call's message could not be made: arguments left out]"
    )


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")

    __repr__ = __str__


def test_a_message_whose_text_cannot_be_read_is_named_not_raised() -> None:
    """``log.info(obj)`` where ``str(obj)`` raises: the record names the message's type."""
    record = _record("%s", "unused")
    record.msg = _Unprintable()
    with masking(Redactor([URL])):
        assert _ContextFilter().filter(record)
    assert record.getMessage() == (
        "<a _Unprintable whose text could not be read> [the log call's message could not be "
        "made: arguments left out]"
    )


def test_a_no_echo_response_given_as_a_json_log_field_shows_no_data() -> None:
    """A NoEcho response's Data is for Fn::GetAtt alone; Response's own repr masks it so that
    a Response can be logged. Given to a log call as an extra field, it reaches the JSON log
    line through ``json.dumps(..., default=str)``, i.e. as that repr: were Response a tuple
    (a NamedTuple), json.dumps would write its fields out one by one, Data in the clear."""
    response = Response(
        status=Status.SUCCESS,
        physical_id="db",
        data={"Password": "hunter2-secret"},
        no_echo=True,
    )
    assert "hunter2-secret" not in repr(response)  # the repr masks it ...
    record = logging.LogRecord("asynccfn", logging.INFO, __file__, 1, "answered", None, None)
    record.response = response  # as log.info("answered", extra={"response": response})
    line = JsonLinesFormatter().format(record)
    json.loads(line)
    assert "hunter2-secret" not in line  # ... the JSON log line must too
