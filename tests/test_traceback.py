"""A handler's failure points at the user's file and line: in FAILED's Reason (within its
budget) and in a traceback whose asynccfn frames are folded."""

from __future__ import annotations

import inspect
import json
import traceback

from asynccfn._outcomes import failure_reason
from asynccfn._protocol import Response, Status
from asynccfn._response import MAX_BODY_BYTES, build_body
from asynccfn._traceback import fold_traceback, raising_location
from tests.support import FakeLambdaContext
from tests.test_protocol import ECHO


def _lookup(properties: dict[str, str]) -> str:
    return properties["BucketNmae"]  # the typo the Reason must point at


def _caught(fn: object, *args: object) -> BaseException:
    try:
        fn(*args)  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("it did not raise")


def _line_of(text: str) -> int:
    lines, first = inspect.getsourcelines(_lookup)
    return first + next(i for i, line in enumerate(lines) if text in line)


def test_the_reason_names_the_users_file_and_line_and_keeps_the_log_stream() -> None:
    exc = _caught(_lookup, {"BucketName": "b"})
    reason = failure_reason(exc, FakeLambdaContext())
    line = _line_of('properties["BucketNmae"]')
    assert reason == (
        f"KeyError: 'BucketNmae' (at tests/test_traceback.py:{line} in _lookup) "
        "(see CloudWatch log stream 2026/11/22/[$LATEST]inprocess)"
    )


def test_a_huge_message_still_leaves_room_for_where_it_was_raised() -> None:
    exc = _caught(_lookup, {"X" * 10_000: "v"})
    exc.args = ("y" * 10_000,)
    reason = failure_reason(exc, FakeLambdaContext())
    body = build_body(Response(status=Status.FAILED, physical_id="p", reason=reason), ECHO)
    assert len(body) <= MAX_BODY_BYTES
    sent = json.loads(body)["Reason"]
    assert f"(at tests/test_traceback.py:{_line_of('BucketNmae')} in _lookup)" in sent


def test_an_error_raised_inside_a_library_names_the_users_call_into_it() -> None:
    exc = _caught(json.loads, "{not json")
    line = inspect.getsourcelines(_caught)[1] + 2  # fn(*args)
    assert raising_location(exc) == f"at tests/test_traceback.py:{line} in _caught"
    exc.__traceback__ = None  # an error built by asynccfn itself (a replayed step's, say)
    assert raising_location(exc) is None


def test_asynccfns_and_the_standard_librarys_frames_are_folded() -> None:
    exc = _caught(json.loads, "{not json")
    # the caller's frame (this file), then json's own frames, folded into one line
    lines = "".join(traceback.format_exception(exc)).splitlines()
    folded = fold_traceback(lines)
    assert folded[0] == "Traceback (most recent call last):"
    assert any("test_traceback.py" in line for line in folded)
    assert not any("json/decoder.py" in line for line in folded)
    assert any(line.startswith("  … ") and "frames of asynccfn" in line for line in folded)
    assert folded[-1].startswith("json.decoder.JSONDecodeError")
