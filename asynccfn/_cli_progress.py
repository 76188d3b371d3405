"""What ``asynccfn local``, ``asynccfn demo`` and ``asynccfn.testing`` print while a stack runs:
live progress in time order (requests, journal lines, invocation ends, the handler's output
with its traceback folded, answers) and the closing summary of each operation."""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._cli_journal import Entry, header_lines, timeline
from ._protocol import mask_no_echo
from ._traceback import fold_traceback
from .cli import Console, Tone, human_duration, printable, printable_fields, printable_json

if TYPE_CHECKING:
    from .journal.query import OperationDetail
    from .local._records import InvocationRecord
    from .local.stack import OperationRun

__all__ = ["LOG_STREAM", "ProgressPrinter", "print_summary"]

LOG_STREAM = re.compile(r" \(see CloudWatch log stream [^)]*\)")
"""The pointer to a CloudWatch log stream a Reason carries: nothing a laptop has."""
_QUIET_OUTCOMES = ("handed-over", "SUCCESS", "FAILED")
_LOUD_LEVELS = ("WARNING", "ERROR", "CRITICAL")
_GLYPHS = {"sent": ("▶", ">"), "answered": ("◀", "<"), "output": ("│", "|"), "rule": ("═", "=")}


class ProgressPrinter:
    """A :class:`~asynccfn.local.stack.Watcher` that prints progress to a console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._seen: set[tuple[Any, ...]] = set()
        self._steps_shown: set[tuple[str, str]] = set()

    def request_sent(self, label: str, event: Mapping[str, Any]) -> None:
        c = self.console
        c.print()
        c.print(
            c.paint(f"{_glyph(c, 'sent')} {label}", Tone.BOLD)
            + c.paint(f"  request {event['RequestId']}  {_clock_now()}", Tone.DIM)
        )
        props = {k: v for k, v in event["ResourceProperties"].items() if k != "ServiceToken"}
        c.print(f"  properties   {_short(props)}")
        if "PhysicalResourceId" in event:
            c.print(f"  physical id  {event['PhysicalResourceId']}")

    def journal(self, detail: OperationDetail) -> None:
        """Print the timeline's new entries in time order: a step shown before that changed
        is stamped when it changed (as ``journal tail`` does), not again when it started."""
        detail = printable_fields(detail)
        op_id = detail.operation.op_id
        now = datetime.datetime.now(datetime.UTC)
        new: list[tuple[datetime.datetime, Entry]] = []
        for entry in timeline(detail):
            key = (op_id, *entry.key)
            if key in self._seen:
                continue
            self._seen.add(key)
            stamp = entry.at
            if entry.subject is not None:
                if (op_id, entry.subject) in self._steps_shown:
                    stamp = entry.ended or now
                self._steps_shown.add((op_id, entry.subject))
            new.append((stamp, entry))
        for stamp, entry in sorted(new, key=lambda item: item[0]):  # stable: ties keep order
            for line in entry.render(self.console, at=stamp):
                self.console.print(line)

    def invocation_ended(self, record: InvocationRecord) -> None:
        c = self.console
        when = _clock(record.ended)
        took = human_duration(record.ended - record.started)
        if record.error is not None:
            kind = record.error.get("errorType", record.outcome.value)
            message = " ".join(str(record.error.get("errorMessage", "")).split())
            c.print(
                f"  {when}  "
                + c.paint(
                    f"Lambda: attempt {record.attempt} ended {record.outcome.value} after "
                    f"{took}: {kind}: {message}",
                    Tone.BAD,
                )
            )
            return
        outcome = record.result.get("outcome") if isinstance(record.result, dict) else None
        if outcome not in _QUIET_OUTCOMES:
            c.print(f"  {when}  " + c.paint(f"Lambda: invocation ended: {outcome}", Tone.DIM))

    def output(self, line: str) -> None:
        c = self.console
        pad = " " * 14
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "logger" not in record:
            c.print(f"{pad}  " + c.paint(f"{_glyph(c, 'output')} {line}", Tone.DIM))
            return
        message = str(record.get("message", ""))
        if record["logger"] == "asynccfn.handler":
            c.print(f"{pad}  " + c.paint(f"{_glyph(c, 'output')} {message}", Tone.DIM))
        elif record.get("level") in _LOUD_LEVELS:
            tone = Tone.WARN if record.get("level") == "WARNING" else Tone.BAD
            # No CloudWatch here: the traceback the stream would hold follows instead.
            c.print(f"{pad}  " + c.paint(f"! {LOG_STREAM.sub('', message)}", tone))
            trace = record.get("stackTrace")
            if isinstance(trace, list):
                for trace_line in fold_traceback([str(t) for t in trace]):
                    c.print(f"{pad}    " + c.paint(printable(trace_line), tone))

    def answered(self, run: OperationRun) -> None:
        c = self.console
        tone = Tone.GOOD if run.ok else Tone.BAD
        op = run.journal.operation
        parts = [
            f"physical id {run.physical_id}",
            f"{human_duration(run.elapsed)}",
            f"{op.invocations} invocation{'s' if op.invocations != 1 else ''}",
            f"{run.handovers} hand-over{'s' if run.handovers != 1 else ''}",
        ]
        c.print(
            f"{_glyph(c, 'answered')} {run.label}: "
            + c.paint(run.status, tone)
            + "  "
            + ", ".join(parts)
        )
        if run.reason and not run.ok:
            c.print("  " + c.paint(printable(LOG_STREAM.sub("", run.reason)), Tone.BAD))


def print_summary(runs: Sequence[OperationRun], console: Console) -> None:
    """Each response as CloudFormation received it, and its operation's journal timeline."""
    now = datetime.datetime.now(datetime.UTC)
    for run in runs:
        tone = Tone.GOOD if run.ok else Tone.BAD
        console.print()
        console.print(
            console.paint(_glyph(console, "rule") * 3 + f" {run.label}: ", Tone.BOLD)
            + console.paint(run.status, tone)
            + console.paint(" " + _glyph(console, "rule") * 40, Tone.BOLD)
        )
        console.print(console.paint("Response", Tone.BOLD))
        for line in _dumps(_shown_response(run.response)).splitlines():
            console.print(f"  {line}")
        shown = printable_fields(run.journal)
        for line in header_lines(shown.operation, console, now):
            console.print(line)
        console.print(console.paint("Timeline (UTC)", Tone.BOLD))
        for entry in timeline(shown):
            for line in entry.render(console):
                console.print(line)
        replay = run.replay
        if replay is not None:
            if replay.problems:
                console.print(console.paint("Replay differed", Tone.BAD))
                for problem in replay.problems:
                    console.print("  " + console.paint(problem, Tone.BAD))
            else:
                console.print(
                    console.paint("Replay", Tone.BOLD)
                    + "   every step came from the journal; the same response"
                )


def _shown_response(body: Mapping[str, Any]) -> dict[str, Any]:
    shown = dict(body)
    data = shown.get("Data")
    if shown.get("NoEcho") is True and isinstance(data, Mapping):
        shown["Data"] = mask_no_echo(data)
    return shown


# -- signals ----------------------------------------------------------------------------------


def _glyph(console: Console, name: str) -> str:
    """The glyph, or its ASCII stand-in when the output cannot encode it."""
    fancy, plain = _GLYPHS[name]
    try:
        fancy.encode(getattr(console.out, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return plain
    return fancy


def _clock(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%H:%M:%S.%f")[:-3]


def _clock_now() -> str:
    return _clock(time.time())


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dumps(value: Any) -> str:
    return printable_json(value)
