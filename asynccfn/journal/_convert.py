"""Journal items as records: a pynamodb operation or step item, as the reader shows it.

Times become UTC datetimes, JSON text is decoded, events are numbered by invocation, steps
are put in program order, and secrets are masked: a NoEcho response's Data, a sensitive
step's result, and every value the payload codec encrypted (never shown as data).
"""

from __future__ import annotations

import dataclasses
import datetime
import heapq
import json
from typing import Any

from .._protocol import RequestType, mask_no_echo
from .._protocol import Status as ResponseStatus
from .._response import MASK
from ._events import kind_of, legacy_details
from ._payload import is_encrypted
from ._schema import describe
from .models import (
    STEP_PREFIX,
    EventMap,
    OperationModel,
    OperationStatus,
    StepKind,
    StepModel,
    StepStatus,
    op_id_of,
)
from .records import ErrorRecord, EventRecord, OperationRecord, ResponseRecord, StepRecord


def _time(epoch: Any) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(float(epoch), datetime.UTC)


def _maybe_time(epoch: Any) -> datetime.datetime | None:
    return _time(epoch) if epoch else None


def _stack_name(stack_id: str) -> str:
    """``arn:…:stack/NAME/uuid`` -> ``NAME`` (the id itself when it is not such an ARN)."""
    _, _, resource = stack_id.partition(":stack/")
    return resource.split("/", 1)[0] if resource else stack_id


def _operation(item: OperationModel) -> OperationRecord:
    status = OperationStatus(item.status)
    response = _response(item)
    finished: datetime.datetime | None = None
    if status is not OperationStatus.RUNNING:
        finished = _time(item.posted_at or item.updated_at)
    created = _time(item.created_at)
    return OperationRecord(
        op_id=op_id_of(item),
        stack_id=item.stack_id,
        stack_name=_stack_name(item.stack_id),
        logical_id=item.logical_id,
        request_id=item.request_id,
        resource_type=item.resource_type,
        request_type=RequestType(item.request_type),
        status=status,
        attempt=int(item.attempt_no),
        invocations=int(item.invocations),
        fence=int(item.fence),
        owner=item.owner,
        lease_until=_maybe_time(item.lease_until),
        handover_pending=item.handover_token is not None,
        wake_at=_maybe_time(item.wake_at),
        stalled=int(item.stalled or 0),
        issued_at=_time(item.issued_at),
        created_at=created,
        updated_at=_time(item.updated_at),
        deadline=_time(item.deadline),
        finished_at=finished,
        duration=max(0.0, (finished - created).total_seconds()) if finished else None,
        physical_id=item.physical_id,
        reason=item.reason,
        response=response,
        events=_events(item),
        expires_at=_maybe_time(item.expires_at),
    )


def _response(item: OperationModel) -> ResponseRecord | None:
    """The outbox body, NoEcho Data masked. It never holds the ResponseURL."""
    if item.response is None:
        return None
    if is_encrypted(item.response):  # its Status, physical id and Reason are kept beside it
        return ResponseRecord(
            status=ResponseStatus(item.response_status or ResponseStatus.FAILED.value),
            physical_id=str(item.physical_id or ""),
            reason=item.reason,
            data=None,
            no_echo=False,
            posted_at=_maybe_time(item.posted_at),
            encrypted=True,
        )
    try:
        body = json.loads(item.response)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    no_echo = body.get("NoEcho") is True
    data = body.get("Data")
    if isinstance(data, dict):
        data = mask_no_echo(data) if no_echo else data
    else:
        data = None
    status_text = item.response_status or body.get("Status") or ResponseStatus.FAILED.value
    return ResponseRecord(
        status=ResponseStatus(status_text),
        physical_id=str(body.get("PhysicalResourceId") or item.physical_id or ""),
        reason=body.get("Reason"),
        data=data,
        no_echo=no_echo,
        posted_at=_maybe_time(item.posted_at),
        digest=item.response_digest,
    )


def _events(item: OperationModel) -> tuple[EventRecord, ...]:
    """The events in order. Each claim raised the invocation count by one, so counting the
    claims back from the current count numbers them even after old events were dropped;
    other unnumbered events (posted) belong to the invocation before them."""
    records = [_event(event) for event in item.events or []]
    number = int(item.invocations) - sum(1 for record in records if record.claim)
    current: int | None = None
    numbered: list[EventRecord] = []
    for record, event in zip(records, item.events or [], strict=True):
        if record.claim:
            number += 1
            current = number if number >= 1 else None
        elif event.invocation is not None:
            current = int(event.invocation)
        numbered.append(dataclasses.replace(record, invocation=current))
    return tuple(numbered)


def _event(event: EventMap) -> EventRecord:
    """An event as recorded (its text as its kind says it, unless it was stored); one
    written before events had a kind, as its text says."""
    kind = kind_of(event.kind, event.what or "")
    if event.kind is None:
        steps, status, reason = legacy_details(kind, event.what or "")
    else:
        steps = int(event.steps) if event.steps is not None else None
        status, reason = event.status, event.reason
    what = event.what if event.what is not None else describe(kind, steps, status, reason)
    return EventRecord(
        at=_time(event.at),
        what=what or "",
        invocation=None,
        kind=kind,
        steps=steps,
        status=status,
        reason=reason,
    )


def _scope_key(scope: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in scope.split("."))
    except ValueError:
        return ()


def _step(item: StepModel) -> StepRecord:
    position = item.sk.removeprefix(STEP_PREFIX)
    scope, _, seq = position.rpartition("#")
    error = None
    if item.error_type is not None or item.error_message is not None:
        error = ErrorRecord(
            type=item.error_type or "builtins:Exception",
            message=item.error_message or "",
            code=item.error_code,
        )
    started = _time(item.started_at)
    ended = _maybe_time(item.ended_at)
    return StepRecord(
        position=position,
        scope=scope,
        seq=int(seq) if seq.isdigit() else 0,
        name=item.name,
        kind=StepKind(item.kind),
        status=StepStatus(item.status),
        attempt=int(item.attempt),
        op_attempt=int(item.op_attempt),
        invocation=int(item.invocation),
        started_at=started,
        ended_at=ended,
        wake_at=_maybe_time(item.wake_at),
        duration=max(0.0, (ended - started).total_seconds()) if ended else None,
        result=_masked(item.result, secret=bool(item.sensitive)),
        error=error,
        state=_masked(item.state, secret=False),
        sensitive=bool(item.sensitive),
    )


def _masked(raw: str | None, *, secret: bool) -> Any:
    """A journaled JSON value as a reader may see it: masked when it is secret or encrypted."""
    if raw is None:
        return None
    if secret or is_encrypted(raw):
        return MASK
    return _json_or_text(raw)


def _json_or_text(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _program_order(items: list[StepModel]) -> tuple[StepRecord, ...]:
    """Steps as the handler ran them: each scope in sequence order, scopes interleaved by
    start time (a ``ctx.parallel`` branch's steps between the steps around the call)."""
    by_scope: dict[str, list[StepRecord]] = {}
    for item in items:
        step = _step(item)
        by_scope.setdefault(step.scope, []).append(step)
    lanes = [sorted(lane, key=lambda s: s.seq) for lane in by_scope.values()]
    merged = heapq.merge(*lanes, key=lambda s: (s.started_at, _scope_key(s.scope), s.seq))
    return tuple(merged)
