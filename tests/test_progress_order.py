"""``asynccfn local``'s live progress is printed in time order: a step shown before that
changed later is stamped when it changed, and each poll's new lines are sorted by time."""

from __future__ import annotations

import datetime
import io
import re

from asynccfn import cli
from asynccfn._cli_progress import ProgressPrinter
from asynccfn._protocol import RequestType
from asynccfn.journal._events import kind_of
from asynccfn.journal.models import OperationStatus, StepKind, StepStatus
from asynccfn.journal.records import EventRecord, OperationDetail, OperationRecord, StepRecord

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def operation(*events: tuple[float, str, int]) -> OperationRecord:
    return OperationRecord(
        op_id="op-1",
        stack_id="stack",
        stack_name="stack",
        logical_id="Thing",
        request_id="req",
        resource_type="Custom::Thing",
        request_type=RequestType.CREATE,
        status=OperationStatus.RUNNING,
        attempt=1,
        invocations=max(e[2] for e in events),
        fence=1,
        owner=None,
        lease_until=None,
        handover_pending=False,
        wake_at=None,
        stalled=0,
        issued_at=T0,
        created_at=T0,
        updated_at=T0,
        deadline=at(3600),
        finished_at=None,
        duration=None,
        physical_id=None,
        reason=None,
        response=None,
        events=tuple(
            EventRecord(at=at(s), what=w, invocation=i, kind=kind_of(None, w)) for s, w, i in events
        ),
        expires_at=None,
    )


def step(status: StepStatus, invocation: int, ended: float | None) -> StepRecord:
    return StepRecord(
        position="0#00001",
        scope="0",
        seq=1,
        name="make",
        kind=StepKind.STEP,
        status=status,
        attempt=1 if ended is None else 2,
        op_attempt=1,
        invocation=invocation,
        started_at=at(0.1),
        ended_at=None if ended is None else at(ended),
        wake_at=None,
        duration=None if ended is None else ended - 0.1,
        result=None,
        error=None,
        state=None,
    )


def test_a_step_that_changed_later_is_printed_when_it_changed_in_time_order() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(cli.Console(out=out, err=out, color=False))
    claimed = (0.0, "claimed", 1)
    printer.journal(
        OperationDetail(operation=operation(claimed), steps=(step(StepStatus.RETRYING, 1, None),))
    )
    later = operation(claimed, (2.0, "handed over: retry later", 1), (2.5, "claimed", 2))
    printer.journal(OperationDetail(operation=later, steps=(step(StepStatus.SUCCEEDED, 2, 3.0),)))
    lines = out.getvalue().splitlines()
    stamps = [m.group(1) for line in lines if (m := re.match(r"\s*(\d\d:\d\d:\d\d\.\d+)", line))]
    assert stamps == sorted(stamps), lines
    assert [line.split()[1] for line in lines] == [
        "invocation",  # 1: claimed
        "step",  # make RETRYING
        "handed",
        "invocation",  # 2: claimed
        "step",  # make SUCCEEDED, when it ended
    ], lines
    assert "SUCCEEDED" in lines[-1] and "12:00:03.000" in lines[-1], lines
