"""The step log: one invocation's reading and writing of its operation's step slots.

What the executor (:mod:`asynccfn._steps`) asks of the journal, position by position: the
record a slot holds (and whether the handler still asks for the same step there), its replay
(the result or the error, and the EventState recorded with it), and the conditional write of a
new record, with what a write lost to another invocation means: its finished outcome stands, a
start it recorded at most once is never advanced from here.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._aws import error_code
from ._errors import JournalTampered, NonDeterminismError, PayloadTooLarge, StepInterrupted
from ._execution import Execution, Progress, finished, is_final
from ._journaled import error_text, rebuild_error, to_json, type_name
from ._redact import keep_secret, masked
from .journal._schema import StepKind, StepStatus
from .journal.size import STATE_CAP

if TYPE_CHECKING:
    from .journal.models import StepItem


class StepLog:
    """The step slots of one invocation's operation: ``progress.journal`` as loaded, then as
    written."""

    __slots__ = ("branches", "progress", "x")

    def __init__(self, execution: Execution, progress: Progress) -> None:
        self.x = execution
        self.progress = progress
        self.branches = 0  # ctx.parallel calls in progress

    @contextlib.contextmanager
    def concurrent(self) -> Iterator[None]:
        """While ``ctx.parallel`` branches run, and for the first write after them, every
        write journals the EventState, so that replay sets the state as of each such write.

        A record without state means "unchanged since the previous write", which only a
        single sequential flow replays in the order it was written: branches replay one after
        another, not interleaved as they ran, and re-run each other's mutations.
        """
        self.branches += 1
        try:
            yield
        finally:
            self.branches -= 1
            self.progress.recorded_state = ""  # no EventState is "unchanged" for the next write

    def state_to_journal(self) -> str | None:
        """The EventState the next write records: only when it changed since this
        invocation's last write, except around ``ctx.parallel`` (see :meth:`concurrent`)."""
        state = self.state_json()
        return state if self.branches or state != self.progress.recorded_state else None

    def replayed(self, position: str, name: str, *, sensitive: bool = False) -> StepItem | None:
        previous = self.progress.journal.get(position)
        if previous is not None:
            self.check_name(position, previous, name, sensitive=sensitive)
        return previous

    @staticmethod
    def check_name(
        position: str, recorded: StepItem, name: str, *, sensitive: bool = False
    ) -> None:
        """Every record the handler meets at ``position`` (loaded, or won by another
        invocation's write) must name the step the handler asks for there, and hold a result
        of a step the handler declares ``sensitive`` as one (sealed: the payload codec refuses
        one in the clear). A result without the flag there was written by someone else than
        this function, which always flags and seals it.

        Raises:
            NonDeterminismError: it names another step.
            JournalTampered: it holds a result the handler declares sensitive, unflagged.
        """
        if recorded.name != name:
            raise NonDeterminismError(
                f"non-deterministic handler: at position {position} the journal holds step "
                f"{recorded.name!r} but the handler now asks for {name!r}; steps must be called "
                "in the same order on every run"
            )
        if sensitive and not recorded.sensitive and recorded.result is not None:
            raise JournalTampered(
                f"the journal holds step {name!r} (position {position}) with a result that is "
                "not flagged sensitive, though the step is: this function always flags and "
                "encrypts it, so the record was written by something else (or before the step "
                "was declared sensitive, by an operation in flight then); refusing it"
            )

    def _wrote(self, recorded: StepItem, step: StepItem) -> bool:
        """Whether the record a write was refused for is ``step`` itself: this invocation's
        (fences are unique per claim) at the status and attempt it wrote. The write took
        effect and its reply was lost; the retry met the condition the write itself changed.
        (This invocation writes a slot again only from the record it last saw, so no earlier
        record of its own can refuse it.)"""
        return (
            self.ours(recorded)
            and recorded.status == step.status
            and recorded.attempt == step.attempt
            and recorded.op_attempt == step.op_attempt
        )

    def ours(self, step: StepItem) -> bool:
        """Whether this invocation wrote ``step`` (fences are unique per claim)."""
        return step.fence == self.x.fence

    def finished(self, step: StepItem) -> bool:
        return finished(step, self.x.op_attempt)

    def adopt(self, recorded: StepItem, name: str) -> Any:
        """Another invocation's record of the slot this one just tried to write: its finished
        outcome stands; a start it recorded (at most once) is never advanced from here.

        Raises:
            StepInterrupted: the slot holds another invocation's unfinished start.
        """
        if not self.finished(recorded):
            raise StepInterrupted(
                f"step {name!r} was started at most once by invocation {recorded.invocation} "
                "and is not finished; this invocation does not overwrite it"
            )
        return self.replay(recorded)

    def replay(self, step: StepItem) -> Any:
        self.take_state(step)
        self.progress.to_replay -= 1
        if self.progress.to_replay <= 0:
            self.progress.replaying = False
        if step.status == StepStatus.FAILED.value:
            raise rebuild_error(step, self.x.errors)
        value = json.loads(step.result) if step.result is not None else None
        if step.sensitive:  # a secret from here on in whatever the invocation logs or answers
            keep_secret(value)
        return value

    def take_state(self, step: StepItem) -> None:
        if step.state is not None:
            self.set_state(step.state)

    def set_state(self, encoded: str) -> None:
        self.progress.state.clear()
        self.progress.state.update(json.loads(encoded))
        self.progress.recorded_state = encoded
        self.keep_secret_state()

    def keep_secret_state(self) -> None:
        """Mask the values of the EventState's secret keys in whatever the invocation logs,
        journals or answers from now on (the journal seals them, text must not repeat them).
        Called whenever the state is restored or journaled."""
        if self.x.secret_state:
            state = self.progress.state
            keep_secret([state[key] for key in self.x.secret_state if key in state])

    def go_live(self, position: str) -> None:
        """Replay is over at ``position``. If the last hand-over interrupted the handler here,
        the EventState it recorded (mutations after the last journaled step) takes over: code
        between that step and this position ran to here before the hand-over and has run again
        in replay, so the recorded state is exactly what it left. It takes over at each
        position the hand-over interrupted (one per ``ctx.parallel`` branch that was cut off),
        as each branch replays separately up to its own. Elsewhere replay's own state stands."""
        self.progress.current = position
        self.progress.replaying = False
        if self.progress.handover_state is not None and position in self.x.handover_at:
            self.set_state(self.progress.handover_state)

    def state_json(self) -> str:
        self.keep_secret_state()
        encoded = to_json(self.progress.state, what="ctx.state")
        if len(encoded.encode()) > STATE_CAP:
            raise PayloadTooLarge(
                f"ctx.state is {len(encoded.encode())} bytes as JSON; the journal keeps at most "
                f"{STATE_CAP} bytes of EventState"
            )
        return encoded

    async def record_error(
        self,
        position: str,
        name: str,
        kind: StepKind,
        previous: StepItem | None,
        exc: BaseException,
        attempt: int,
        *,
        retry_at: float | None = None,
        started: float | None = None,
    ) -> StepItem:
        code = error_code(exc)
        self.keep_secret_state()  # before masking: the error may repeat what the state holds
        return await self.write(
            position,
            name,
            kind,
            previous,
            status=StepStatus.RETRYING if retry_at is not None else StepStatus.FAILED,
            attempt=attempt,
            error_type=type_name(exc),
            error_message=masked(error_text(exc))[:4000],  # never the ResponseURL
            error_code=code,
            wake_at=retry_at,
            started_at=started,
        )

    async def write(
        self,
        position: str,
        name: str,
        kind: StepKind,
        previous: StepItem | None,
        *,
        status: StepStatus,
        attempt: int,
        started_at: float | None = None,
        **fields: Any,
    ) -> StepItem:
        for _ in range(3):
            recorded = await self.write_once(
                position,
                name,
                kind,
                previous,
                status=status,
                attempt=attempt,
                started_at=started_at,
                **fields,
            )
            if (
                self.ours(recorded)
                or self.finished(recorded)
                or recorded.status == StepStatus.STARTED.value
            ):
                # A slot another invocation started at most once is never advanced from here:
                # the caller decides (see ``Executor._interrupted``).
                return recorded
            # Another invocation advanced the slot without finishing it: advance from there.
            previous = recorded
        return recorded

    async def write_once(
        self,
        position: str,
        name: str,
        kind: StepKind,
        previous: StepItem | None,
        *,
        status: StepStatus,
        attempt: int,
        started_at: float | None,
        **fields: Any,
    ) -> StepItem:
        now = time.time()
        state = self.state_to_journal()
        step = self.x.store.new_step(
            self.x.op_id,
            position,
            name=name,
            kind=kind.value,
            status=status.value,
            attempt=attempt,
            op_attempt=self.x.op_attempt,
            started_at=started_at or (previous.started_at if previous else now),
            ended_at=now if is_final(status.value) else None,
            invocation=self.x.invocation,
            fence=self.x.fence,
            state=state,
            **fields,
        )
        recorded = await self.x.store.write_step(step, previous=previous)
        if recorded is not step and self._wrote(recorded, step):
            recorded = step  # its own write, whose reply was lost (see _wrote)
        if recorded is not step:  # another invocation's record: the same check as replay's
            self.check_name(position, recorded, name, sensitive=bool(fields.get("sensitive")))
        probe = self.x.probe
        probe.point("after-step-recorded")
        if recorded is step:
            self.progress.progressed = True
            if step.state is not None:
                self.progress.recorded_state = step.state
            if is_final(status.value) and probe.step_recorded():
                self.progress.stopping = True  # the next action hands over
        self.progress.journal[position] = recorded
        return recorded
