"""``asynccfn journal list|show|tail``: what happened to an operation, in which invocation, and
why. Reads the journal through :mod:`asynccfn.journal.query`; times are shown in UTC, the
time zone of Lambda's and CloudFormation's logs."""

from __future__ import annotations

import argparse
import datetime
import heapq
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cli import (
    EXIT_OK,
    EXIT_UNSUCCESSFUL,
    CliError,
    Console,
    Tone,
    aws_options,
    group_help,
    human_duration,
    open_journal,
    printable_fields,
    printable_json,
)
from .journal._schema import EventKind, OperationStatus, StepKind, StepStatus

if TYPE_CHECKING:
    from .journal.query import (
        EventRecord,
        OperationDetail,
        OperationRecord,
        ResponseRecord,
        StepRecord,
    )

_CLAIM_EXPECTED_WITHIN = 30.0  # seconds after a hand-over: Lambda starts async events fast
_SINCE_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}

_OP_TONES = {
    OperationStatus.RUNNING: Tone.BUSY,
    OperationStatus.SUCCEEDED: Tone.GOOD,
    OperationStatus.FAILED: Tone.BAD,
    OperationStatus.TIMED_OUT: Tone.BAD,
    OperationStatus.UNDELIVERABLE: Tone.WARN,
}
_STEP_TONES = {
    StepStatus.SUCCEEDED: Tone.GOOD,
    StepStatus.FAILED: Tone.BAD,
    StepStatus.RETRYING: Tone.WARN,
    StepStatus.WAITING: Tone.BUSY,
    StepStatus.STARTED: Tone.WARN,
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``journal`` and its ``list``, ``show`` and ``tail`` subcommands."""
    aws = aws_options()
    journal = subparsers.add_parser(
        "journal",
        help="inspect operations recorded in the journal table",
        description="Inspect operations recorded in the journal table.",
    )
    journal.set_defaults(run=group_help(journal))
    commands = journal.add_subparsers(title="commands", metavar="COMMAND")

    listing = commands.add_parser(
        "list",
        parents=[aws],
        help="list operations, newest first",
        description="List operations, newest first.",
    )
    listing.add_argument("--stack", metavar="NAME|ARN", help="only this stack's operations")
    listing.add_argument(
        "--status",
        type=_status,
        metavar="STATUS",
        help="only operations in this status: "
        + ", ".join(s.value.lower() for s in OperationStatus),
    )
    listing.add_argument(
        "--type",
        dest="resource_type",
        metavar="RESOURCE_TYPE",
        help="only operations of this resource type (Custom::Bucket), for a function serving "
        "several",
    )
    listing.add_argument(
        "--since",
        type=_since,
        metavar="WHEN",
        help="only operations started within a duration (90s, 15m, 2h, 3d, 1h30m) "
        "or since a UTC time (2026-11-22T12:00)",
    )
    listing.add_argument(
        "--limit", type=_positive, default=50, metavar="N", help="at most N (default 50)"
    )
    listing.add_argument("--next", metavar="CURSOR", help="the page after a previous listing")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=run_list)

    show = commands.add_parser(
        "show",
        parents=[aws],
        help="the timeline of one operation",
        description="The timeline of one operation: invocations, steps, hand-overs, the "
        "response. OP_ID is the id or a unique prefix of it, as `journal list` shows.",
    )
    show.add_argument("op_id", metavar="OP_ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=run_show)

    tail = commands.add_parser(
        "tail",
        parents=[aws],
        help="follow an operation until it ends",
        description="Follow an operation until it ends. Exits 0 when it succeeded, 3 when it "
        "ended otherwise.",
    )
    tail.add_argument("op_id", metavar="OP_ID")
    tail.add_argument(
        "--interval", type=_positive_float, default=2.0, metavar="SECONDS", help="poll interval"
    )
    tail.add_argument(
        "--timeout", type=_positive_float, metavar="SECONDS", help="give up after this long"
    )
    tail.set_defaults(run=run_tail)


# -- list -------------------------------------------------------------------------------------


def run_list(args: argparse.Namespace, console: Console) -> int:
    journal = open_journal(args)
    page = journal.list_operations(
        stack=args.stack,
        status=args.status,
        since=args.since,
        limit=args.limit,
        cursor=args.next,
        resource_type=args.resource_type,
    )
    if args.json:
        document = {"operations": [op.to_json() for op in page.operations], "next": page.cursor}
        console.print(_dumps(document))
        return EXIT_OK
    if not page.operations:
        console.note(f"no operations match in {journal.where}")
        return EXIT_OK
    page = printable_fields(page)
    now = _now()
    rows = [
        [
            op.short_id,
            op.stack_name,
            op.logical_id,
            op.request_type.value,
            (op.status.value, _OP_TONES[op.status]),
            str(op.invocations),
            human_duration(op.elapsed(now)),
            op.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        ]
        for op in page.operations
    ]
    headers = [
        "OPERATION",
        "STACK",
        "LOGICAL ID",
        "TYPE",
        "STATUS",
        "INVOCATIONS",
        "DURATION",
        "STARTED (UTC)",
    ]
    console.table(headers, rows)
    if page.cursor:
        console.note(f"more operations: add --next {page.cursor}")
    return EXIT_OK


# -- show -------------------------------------------------------------------------------------


def run_show(args: argparse.Namespace, console: Console) -> int:
    journal = open_journal(args)
    detail = journal.get_operation(args.op_id)
    if args.json:
        console.print(_dumps(detail.to_json()))
        return EXIT_OK
    detail = printable_fields(detail)
    now = _now()
    for line in header_lines(detail.operation, console, now):
        console.print(line)
    console.print()
    console.print(console.paint("Timeline (UTC)", Tone.BOLD))
    for entry in timeline(detail):
        for line in entry.render(console):
            console.print(line)
    response = detail.operation.response
    if response is not None:
        console.print()
        for line in response_lines(response, console):
            console.print(line)
    return EXIT_OK


def header_lines(op: OperationRecord, console: Console, now: datetime.datetime) -> list[str]:
    """The operation's identity and where it stands now."""
    status = console.paint(op.status.value, _OP_TONES[op.status])
    if op.status is OperationStatus.RUNNING:
        standing = f"{status} for {human_duration(op.elapsed(now))}"
    else:
        standing = f"{status} after {human_duration(op.elapsed(now))}"
    plural = "s" if op.invocations != 1 else ""
    lines = [
        console.paint(f"Operation {op.op_id}", Tone.BOLD),
        f"  Resource   {op.logical_id} ({op.resource_type}), {op.request_type.value}",
        f"  Stack      {op.stack_name}  {console.paint(op.stack_id, Tone.DIM)}",
        f"  Request    {op.request_id}, attempt {op.attempt}",
        f"  Status     {standing}, {op.invocations} invocation{plural}",
        f"  Started    {_stamp(op.created_at)}",
    ]
    if op.status is OperationStatus.RUNNING:
        lines.append(f"  Deadline   {_stamp(op.deadline)} ({_relative(op.deadline, now)})")
        diagnosis = diagnose(op, now)
        if diagnosis:
            lines.append(f"  Now        {diagnosis}")
        if op.stalled:
            lines.append(
                "  Stalled    "
                + console.paint(f"{op.stalled} invocation(s) in a row made no progress", Tone.WARN)
            )
    if op.physical_id:
        lines.append(f"  Physical   {op.physical_id}")
    return lines


def diagnose(op: OperationRecord, now: datetime.datetime) -> str | None:
    """Who, if anyone, is working on a RUNNING operation, and what happens next."""
    if op.status is not OperationStatus.RUNNING:
        return None
    held = op.lease_until is not None and op.lease_until > now
    if op.handover_pending:
        handed = [e.at for e in op.events if e.kind is EventKind.HANDED_OVER]
        at = f" at {_clock(handed[-1])}" if handed else ""
        if not handed or (now - handed[-1]).total_seconds() < _CLAIM_EXPECTED_WITHIN:
            return (
                f"handed over by invocation {op.invocations}{at}; the next invocation "
                "should claim it within seconds"
            )
        return (
            f"handed over by invocation {op.invocations}{at} ({_relative(handed[-1], now)}) "
            "and not claimed since: Lambda has not run the continuation. Check the "
            "function's AsyncEventsDropped metric and on-failure destination, and that its "
            "RecursiveLoop is Allow"
        )
    waking = ""
    if op.wake_at is not None and op.wake_at > now:
        waking = f", waiting until {_clock(op.wake_at)} ({_relative(op.wake_at, now)})"
    if held and op.lease_until is not None:
        return (
            f"invocation {op.invocations} holds it (Lambda request {op.owner}), lease until "
            f"{_clock(op.lease_until)} ({_relative(op.lease_until, now)}){waking}"
        )
    since = f" since {_clock(op.lease_until)}" if op.lease_until is not None else ""
    return (
        f"no invocation holds it{since}: it goes on when Lambda retries the event or "
        "delivers it again; Lambda's on-failure record answers FAILED if retries run out"
    )


def response_lines(response: ResponseRecord, console: Console) -> list[str]:
    tone = Tone.GOOD if response.status.value == "SUCCESS" else Tone.BAD
    posted = (
        f"posted {_stamp(response.posted_at)}" if response.posted_at else "recorded, not posted"
    )
    lines = [
        console.paint("Response", Tone.BOLD),
        f"  Status       {console.paint(response.status.value, tone)} ({posted})",
        f"  Physical id  {response.physical_id}",
    ]
    if response.reason:
        lines.append(f"  Reason       {response.reason}")
    if response.data:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in response.data.items())
        lines.append(f"  Data         {shown}" + ("  (NoEcho)" if response.no_echo else ""))
    elif response.encrypted:
        lines.append("  Data         ****  (encrypted in the journal)")
    if response.digest:
        lines.append(console.paint(f"  SHA-256      {response.digest}", Tone.DIM))
    return lines


# -- the timeline -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Entry:
    """One line (and its detail lines) of the timeline; ``key`` tells new from seen, ``order``
    ranks entries of the same time (a claim, then steps, then other events)."""

    key: tuple[Any, ...]
    order: tuple[Any, ...]
    at: datetime.datetime
    text: str
    tone: Tone | None = None
    detail: tuple[str, ...] = ()
    indent: int = 2
    detail_tone: Tone | None = None
    subject: str | None = None  # a step's position: later entries with it are updates
    ended: datetime.datetime | None = None

    def render(self, console: Console, at: datetime.datetime | None = None) -> Iterator[str]:
        """The lines, stamped with ``at`` (default: when the entry happened or started)."""
        pad = " " * self.indent
        when = _clock(at or self.at, millis=True)
        yield f"  {when}  {pad}{console.paint(self.text, self.tone)}"
        for line in self.detail:
            yield f"  {' ' * 12}  {pad}    {console.paint(line, self.detail_tone)}"


def timeline(detail: OperationDetail) -> list[Entry]:
    """What happened, in time order: each invocation's claim, the steps (at the time each
    started, in program order), hand-overs, the response. A step still in progress across
    invocations (a poll, a retry) shows its latest state where it started."""
    op = detail.operation
    events = [_event_entry(e) for e in op.events]
    claims = [(e.at, e.invocation) for e in op.events if e.claim]
    name_width = max((len(s.name) for s in detail.steps), default=0)
    steps = [_step_entry(s, op, name_width, _started_in(s, claims)) for s in detail.steps]
    # Both lists are in order already; a merge keeps them so even if clocks disagree.
    return list(heapq.merge(events, steps, key=lambda e: (e.at, e.order)))


def _started_in(step: StepRecord, claims: list[tuple[datetime.datetime, int | None]]) -> int | None:
    """The invocation whose claim last preceded the step's start (None if unknown)."""
    found: int | None = None
    for at, invocation in claims:
        if at <= step.started_at:
            found = invocation
    return found


def _event_entry(event: EventRecord) -> Entry:
    invocation = event.invocation or 0
    claim = event.claim
    tone: Tone | None
    if claim:
        text, tone, indent = f"invocation {invocation}: {event.what}", Tone.BOLD, 0
    else:
        tone = _event_tone(event)
        text, indent = event.what, 2
    return Entry(
        key=("event", event.at, event.what),
        order=(0 if claim else 2,),
        at=event.at,
        text=text,
        tone=tone,
        indent=indent,
    )


def _event_tone(event: EventRecord) -> Tone | None:
    kind = event.kind
    if kind is EventKind.HANDED_OVER:
        return Tone.BUSY
    if kind is EventKind.UNDELIVERABLE:
        return Tone.BAD
    if kind is EventKind.POSTED:
        return Tone.GOOD
    if kind is EventKind.RESPONSE:
        return {"SUCCESS": Tone.GOOD, "FAILED": Tone.BAD}.get(event.status or "")
    return None


def _step_entry(
    step: StepRecord, op: OperationRecord, name_width: int, started_in: int | None
) -> Entry:
    status = step.status.value
    if step.kind is StepKind.SLEEP and step.wake_at is not None and step.wake_at <= _now():
        status = "SLEPT"  # a sleep is journaled once, with its wake time; past it, it is over
    what = f"{step.kind.value:<5}  {step.name:<{name_width}}  {status:<9}  {_progress(step)}"
    if started_in is not None and step.invocation != started_in:
        what += f"  (invocations {started_in}-{step.invocation})"
    if step.op_attempt != op.attempt:
        what += f"  (from attempt {step.op_attempt})"
    detail: tuple[str, ...] = ()
    if step.error is not None:
        code = f" [{step.error.code}]" if step.error.code else ""
        detail = (f"{step.error.short_type}{code}: {_first_line(step.error.message)}",)
    tone = None if status == "SLEPT" else _STEP_TONES[step.status]
    return Entry(
        key=("step", step.position, step.status, step.attempt, step.invocation),
        order=(1,),
        at=step.started_at,
        text=what.rstrip(),
        tone=tone if step.status is not StepStatus.SUCCEEDED else None,
        detail=detail,
        detail_tone=Tone.BAD if step.status is StepStatus.FAILED else Tone.WARN,
        subject=step.position,
        ended=step.ended_at,
    )


def _progress(step: StepRecord) -> str:
    """Attempts, and how long it took or what it waits for."""
    if step.kind is StepKind.SLEEP:
        counted = ""
    elif step.kind is StepKind.WAIT:
        counted = f"{step.attempt} poll{'s' if step.attempt != 1 else ''}"
    else:
        counted = f"{step.attempt} attempt{'s' if step.attempt != 1 else ''}"
    if step.duration is not None:
        took = human_duration(step.duration)
    elif step.status is StepStatus.RETRYING and step.wake_at is not None:
        took = f"retry at {_clock(step.wake_at)}"
    elif step.status is StepStatus.WAITING and step.wake_at is not None:
        took = ("until " if step.kind is StepKind.SLEEP else "next poll ") + _clock(step.wake_at)
    elif step.status is StepStatus.STARTED:
        took = "started, not finished"
    else:
        took = ""
    return "  ".join(part for part in (counted, took) if part)


# -- tail -------------------------------------------------------------------------------------


def run_tail(args: argparse.Namespace, console: Console) -> int:
    journal = open_journal(args)
    op_id = journal.resolve(args.op_id)
    give_up = None if args.timeout is None else time.monotonic() + args.timeout
    seen: set[tuple[Any, ...]] = set()
    steps_shown: set[str] = set()
    said: str | None = None
    first = True
    while True:
        detail = printable_fields(journal.get_operation(op_id))
        now = _now()
        if first:
            for line in header_lines(detail.operation, console, now)[:4]:
                console.print(line)
            console.print(console.paint("Timeline (UTC)", Tone.BOLD))
            first = False
        for entry in timeline(detail):
            if entry.key in seen:
                continue
            seen.add(entry.key)
            stamp = None
            if entry.subject is not None:
                if entry.subject in steps_shown:  # a step shown before changed: say when
                    stamp = entry.ended or now
                steps_shown.add(entry.subject)
            for line in entry.render(console, at=stamp):
                console.print(line)
        op = detail.operation
        if detail.finished:
            if op.response is not None:
                console.print()
                for line in response_lines(op.response, console):
                    console.print(line)
            tone = _OP_TONES[op.status]
            plural = "s" if op.invocations != 1 else ""
            console.print(
                f"ended {console.paint(op.status.value, tone)} after "
                f"{human_duration(op.elapsed(now))}, {op.invocations} invocation{plural}"
            )
            return EXIT_OK if op.status is OperationStatus.SUCCEEDED else EXIT_UNSUCCESSFUL
        news = diagnose(op, now)
        stance = _stance(news)
        if news and stance != said:
            console.print(console.paint(f"  … {news}", Tone.DIM))
            said = stance
        if give_up is not None and time.monotonic() >= give_up:
            raise CliError(
                f"operation {op.short_id} is still {op.status.value} after {args.timeout:g} s"
            )
        time.sleep(args.interval)


def _stance(diagnosis: str | None) -> str | None:
    """The diagnosis without its moving parts (times), to print each change once."""
    return None if diagnosis is None else diagnosis.split(" (", 1)[0].split(",", 1)[0]


# -- parsing and formatting -------------------------------------------------------------------


def _status(text: str) -> OperationStatus:
    try:
        return OperationStatus(text.upper())
    except ValueError:
        choices = ", ".join(s.value.lower() for s in OperationStatus)
        raise argparse.ArgumentTypeError(f"unknown status {text!r} (one of {choices})") from None


def _since(text: str) -> datetime.datetime | datetime.timedelta:
    """``2h``, ``1h30m``, ``3d`` (a duration back from now) or an ISO time (UTC if no zone)."""
    compact = text.strip().lower().replace(" ", "")
    parts = _SINCE_PART.findall(compact)
    if parts and "".join(number + unit for number, unit in parts) == compact:
        return datetime.timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (90s, 15m, 2h, 3d, 1h30m) nor an ISO time"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp(when: datetime.datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "-"


def _clock(when: datetime.datetime, *, millis: bool = False) -> str:
    text = when.strftime("%H:%M:%S.%f")
    return text[:-3] if millis else text[:8]


def _relative(when: datetime.datetime, now: datetime.datetime) -> str:
    seconds = (when - now).total_seconds()
    if seconds >= 0:
        return f"in {human_duration(seconds)}"
    return f"{human_duration(-seconds)} ago"


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] + (" …" if len(lines) > 1 else "") if lines else ""


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dumps(document: Any) -> str:
    return printable_json(document)
