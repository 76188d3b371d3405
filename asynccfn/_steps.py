"""The step executor: check the journal, run live, record. It knows nothing of the user API.

Every durable action (step, call, wait, sleep, now, uuid) takes a *position* in its scope at the
moment it starts, in program order. At each position the executor first looks in the journal
loaded for this invocation:

    journaled and finished  -> give back the recorded result or error (replay), and the
                               EventState recorded with it
    journaled, in progress  -> continue from what was recorded (attempt, wake time)
    not journaled           -> run live, then record before returning (results exactly once)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from ._errors import (
    ConfigurationError,
    FenceLost,
    HandlerExited,
    HandOver,
    OperationTimeout,
    StepInterrupted,
    WaitTimeout,
)
from ._execution import Execution, Progress
from ._journaled import to_json, withheld
from ._redact import keep_secret
from ._scope import Scope, current_scope
from ._step_log import StepLog
from .journal._schema import StepKind, StepStatus

if TYPE_CHECKING:
    from ._retry import RetryPolicy
    from .journal.models import StepItem


def _handing_over(tasks: Sequence[asyncio.Future[Any]]) -> bool:
    """Whether the branches that ended so far ended in hand-overs only, none in a failure."""
    ended = [task.exception() for task in tasks if task.done() and not task.cancelled()]
    errors = [exc for exc in ended if exc is not None]
    return bool(errors) and all(isinstance(exc, HandOver) for exc in errors)


def _precedence(exc: BaseException) -> int:
    """Which of the branches' exceptions ``parallel`` raises (the lowest): a failure wins over
    a hand-over, and a hand-over over the cancellations it caused."""
    if isinstance(exc, asyncio.CancelledError):
        return 2
    return 1 if isinstance(exc, HandOver) else 0


class Executor:
    """Runs durable actions for one invocation of an operation."""

    __slots__ = ("log", "progress", "x")

    def __init__(self, execution: Execution, progress: Progress) -> None:
        self.x = execution
        self.progress = progress
        self.log = StepLog(execution, progress)

    def state_json(self) -> str:
        """The EventState as the journal records it (see :meth:`StepLog.state_json`)."""
        return self.log.state_json()

    @contextlib.contextmanager
    def _action(self, name: str) -> Iterator[str]:
        """Take the next position of the current scope for the duration of one action."""
        scope = current_scope.get()
        position = scope.begin(name)
        self.progress.visited.add(position)
        try:
            yield position
        except (HandOver, asyncio.CancelledError):
            self.progress.interrupted_at.add(position)
            raise
        finally:
            scope.end()

    def root(self) -> contextvars.Token[Scope]:
        return current_scope.set(Scope("0"))

    async def run(self, handler: Awaitable[Any]) -> Any:
        """The handler's coroutine, run in the root scope (in the task that runs it): a
        SystemExit it raises becomes HandlerExited, and however it ends, the values its
        EventState holds under secret keys are masked in the answer's text."""
        self.root()
        try:
            return await without_exit(handler)
        finally:
            self.log.keep_secret_state()

    def next_position(self) -> str:
        """The position the next durable action of the current scope will take."""
        return current_scope.get().peek()

    # -- the shapes of durable action --------------------------------------------------------

    async def step(
        self,
        kind: StepKind,
        name: str,
        body: Callable[[], Awaitable[Any]],
        *,
        retry: RetryPolicy | None = None,
        at_most_once: bool = False,
        needs: float | None = None,
        encode: Callable[[Any], Any] | None = None,
        live: Callable[[Any], Any] | None = None,
        sensitive: bool = False,
    ) -> Any:
        """Run ``body`` once for this operation attempt; journal and return its JSON result.

        ``encode`` turns the live value into what is journaled (e.g. secrets removed). The live
        run returns the journaled value decoded, so first run and replay see the same types,
        unless ``live`` gives the live run its own view of the value. A ``sensitive`` result
        is flagged so in the journal (and encrypted there by the payload codec).

        Raises:
            HandOver: the invocation must suspend before (or while waiting to retry) the step.
            the step's own exception, live or replayed; NonDeterminismError;
            ConcurrentStepError; StepInterrupted; PayloadTooLarge; ConfigurationError.
        """
        self._check_needs(needs)
        if sensitive and not self.x.keeps_secrets:
            raise ConfigurationError(
                f"step {name!r} is sensitive, but this function's journal has no payload codec "
                "to encrypt its result: pass lambda_entry(codec=asynccfn.KmsCodec(KEY_ARN))"
            )
        with self._action(name) as position:
            previous = self.log.replayed(position, name, sensitive=sensitive)
            if previous is not None and self.log.finished(previous):
                return self.log.replay(previous)
            self.log.go_live(position)
            attempt = 1
            if (
                previous is not None
                and previous.op_attempt == self.x.op_attempt
                and previous.status == StepStatus.RETRYING.value
            ):
                attempt = previous.attempt + 1
                await self.wait_until_epoch(previous.wake_at or 0)
            while True:
                if at_most_once:
                    previous, attempt = await self._start_attempt(
                        position, name, kind, previous, attempt, retry, needs
                    )
                    if not self.log.ours(previous):
                        return self.log.replay(previous)
                else:
                    self._check_can_start(needs)
                    await self._hold_lease()
                started = time.time()
                wake: float | None = None
                failure: Exception | None = None
                try:
                    value = await body()
                except Exception as exc:
                    if retry is not None and retry.should_retry(exc, attempt):
                        wake = time.time() + retry.delay(attempt)
                    # A sensitive step's message may repeat its secret: none of it is kept.
                    failure = withheld(exc, name, self.x.errors) if sensitive else exc
                if failure is not None:
                    if wake is not None:
                        previous = await self.log.record_error(
                            position, name, kind, previous, failure, attempt, retry_at=wake
                        )
                        if self.log.finished(previous):
                            return self.log.replay(previous)
                        await self.wait_until_epoch(wake)
                        attempt += 1
                        continue
                    recorded = await self.log.record_error(
                        position, name, kind, previous, failure, attempt, started=started
                    )
                    if not self.log.ours(recorded):
                        return self.log.adopt(recorded, name)  # the winner's outcome stands
                    if sensitive:
                        raise failure from None  # no chain or traceback of the original
                    raise failure
                journaled = encode(value) if encode is not None else value
                result = to_json(journaled, what=f"the result of step {name!r}")
                recorded = await self.log.write(
                    position,
                    name,
                    kind,
                    previous,
                    status=StepStatus.SUCCEEDED,
                    attempt=attempt,
                    result=result,
                    started_at=started,
                    sensitive=1 if sensitive else None,
                )
                if not self.log.ours(recorded):
                    return self.log.adopt(recorded, name)
                returned = live(value) if live is not None else json.loads(result)
                if sensitive:  # a secret from here on in whatever the invocation logs or answers
                    keep_secret(returned)
                return returned

    async def _start_attempt(
        self,
        position: str,
        name: str,
        kind: StepKind,
        previous: StepItem | None,
        attempt: int,
        retry: RetryPolicy | None,
        needs: float | None,
    ) -> tuple[StepItem, int]:
        """Journal the start of an at-most-once attempt before its body runs.

        A slot some other invocation started and never finished is never started again at the
        same attempt: an older holder's start counts as a failed attempt (see
        :meth:`_interrupted`), a newer holder's means this invocation has lost the operation.
        Returns this invocation's STARTED record and its attempt number, or a finished record
        another invocation wrote (to replay).

        Raises:
            StepInterrupted: the interrupted attempt was the last one allowed.
            FenceLost: a newer invocation started the step.
            HandOver: the soft deadline came while waiting to start.
        """
        while True:
            if previous is not None and previous.status == StepStatus.STARTED.value:
                if previous.fence > self.x.fence:
                    raise FenceLost(
                        f"step {name!r} was started by a newer invocation (fence "
                        f"{previous.fence}); this invocation had {self.x.fence}"
                    )
                previous = await self._interrupted(position, name, kind, previous, retry)
                if self.log.finished(previous):
                    return previous, attempt
            if (
                previous is not None
                and previous.status == StepStatus.RETRYING.value
                and previous.op_attempt == self.x.op_attempt
            ):
                attempt = max(attempt, previous.attempt + 1)
                await self.wait_until_epoch(previous.wake_at or 0)
            self._check_can_start(needs)
            await self._hold_lease()
            recorded = await self._record_start(position, name, kind, previous, attempt)
            if self.log.ours(recorded) or self.log.finished(recorded):
                return recorded, attempt
            previous = recorded  # another invocation moved the slot first: look again

    async def _record_start(
        self, position: str, name: str, kind: StepKind, previous: StepItem | None, attempt: int
    ) -> StepItem:
        """Journal the start of ``attempt``; what the slot then holds.

        A cancellation (the soft deadline) while the start is being recorded waits for the
        write, for half the reserve at most (the rest is the hand-over's), and withdraws a
        start it recorded before it is raised: the body has not begun, so the slot goes back
        to RETRYING at the attempt before (due at once), and the next invocation runs this
        attempt, not counting it as interrupted (StepInterrupted) nor as used. Should the
        write outlast that time or withdrawing fail, the start stays, counted as interrupted:
        never run twice.
        """
        write = asyncio.ensure_future(
            self.log.write_once(
                position,
                name,
                kind,
                previous,
                status=StepStatus.STARTED,
                attempt=attempt,
                started_at=None,
            )
        )
        try:
            return await asyncio.shield(write)
        except asyncio.CancelledError:
            deadlines = self.x.deadlines
            until = deadlines.soft + max(0.0, deadlines.hard - deadlines.soft) / 2
            with contextlib.suppress(Exception):  # a timeout too: the start then stays
                async with asyncio.timeout_at(until):
                    recorded = await write
                    if self.log.ours(recorded) and recorded.status == StepStatus.STARTED.value:
                        not_begun = StepInterrupted(
                            f"at-most-once step {name!r}: the invocation ended before attempt "
                            f"{attempt} began (its start was being recorded); it did not run"
                        )
                        await self.log.record_error(
                            position,
                            name,
                            kind,
                            recorded,
                            not_begun,
                            attempt - 1,
                            retry_at=time.time(),
                        )
            write.cancel()  # still pending only when the time ran out
            raise

    async def _interrupted(
        self,
        position: str,
        name: str,
        kind: StepKind,
        started: StepItem,
        retry: RetryPolicy | None,
    ) -> StepItem:
        """An at-most-once attempt that ``started`` records was begun by some invocation and
        never finished: count it as a failed attempt. Returns what the journal then holds (the
        attempt recorded as RETRYING when ``retry`` allows another, or whatever a racing writer
        recorded first).

        Raises:
            StepInterrupted: no further attempt is allowed.
        """
        interrupted = StepInterrupted(
            f"at-most-once step {name!r} was interrupted in invocation {started.invocation} "
            f"(attempt {started.attempt}) and will not run again"
        )
        if retry is not None and retry.should_retry(interrupted, started.attempt):
            return await self.log.record_error(
                position,
                name,
                kind,
                started,
                interrupted,
                started.attempt,
                retry_at=time.time() + retry.delay(started.attempt),
            )
        recorded = await self.log.record_error(
            position, name, kind, started, interrupted, started.attempt
        )
        if self.log.ours(recorded) or not self.log.finished(recorded):
            raise interrupted
        return recorded

    async def sleep(self, seconds: float, name: str) -> None:
        """A durable sleep: the wake time is journaled once, then waited for, across
        invocations if need be.

        Raises:
            HandOver: the wake time is past the soft deadline (after waiting up to it).
        """
        if seconds < 0:
            raise ConfigurationError(f"sleep seconds must be >= 0, got {seconds}")
        with self._action(name) as position:
            previous = self.log.replayed(position, name)
            if previous is not None:
                self.log.take_state(previous)
            if previous is None or (previous.wake_at or 0) > time.time():
                self.log.go_live(position)
            if previous is None:
                wake = time.time() + seconds
                previous = await self.log.write(
                    position,
                    name,
                    StepKind.SLEEP,
                    None,
                    status=StepStatus.WAITING,
                    attempt=1,
                    wake_at=wake,
                )
            await self.wait_until_epoch(previous.wake_at or 0)

    async def wait_until(
        self,
        name: str,
        poll: Callable[[], Awaitable[Any]],
        *,
        interval: float,
        timeout: float,  # noqa: ASYNC109 - the poll horizon, not a call timeout
        max_attempts: int | None,
    ) -> Any:
        """Poll until ``poll`` returns a truthy value; one journal record per wait.

        Raises:
            WaitTimeout: attempts or time ran out.
            HandOver: the next poll is past the soft deadline.
            the predicate's own exception.
        """
        if interval < 0 or timeout < 0:
            raise ConfigurationError("wait_until interval and timeout must be >= 0")
        with self._action(name) as position:
            previous = self.log.replayed(position, name)
            if previous is not None and self.log.finished(previous):
                return self.log.replay(previous)
            self.log.go_live(position)
            started, attempt = time.time(), 0
            if self._continues(previous):
                started, attempt = previous.started_at, previous.attempt
                await self.wait_until_epoch(previous.wake_at or 0)
            while True:
                self._check_can_start(None)
                await self._hold_lease()
                attempt += 1
                failure: Exception | None = None
                try:
                    value = await poll()
                except Exception as exc:
                    failure = exc
                if failure is not None:
                    recorded = await self.log.record_error(
                        position, name, StepKind.WAIT, previous, failure, attempt, started=started
                    )
                    if not self.log.ours(recorded):
                        return self.log.adopt(recorded, name)  # the winner's outcome stands
                    raise failure
                if value:
                    result = to_json(value, what=f"the value of wait {name!r}")
                    recorded = await self.log.write(
                        position,
                        name,
                        StepKind.WAIT,
                        previous,
                        status=StepStatus.SUCCEEDED,
                        attempt=attempt,
                        result=result,
                        started_at=started,
                    )
                    if not self.log.ours(recorded):
                        return self.log.adopt(recorded, name)
                    return json.loads(result)
                elapsed = time.time() - started
                if (max_attempts is not None and attempt >= max_attempts) or (
                    elapsed + interval > timeout
                ):
                    timed_out = WaitTimeout(
                        f"wait {name!r} gave up after {attempt} attempts over {elapsed:.1f} s "
                        f"(timeout {timeout:g} s, last value {value!r})"
                    )
                    recorded = await self.log.record_error(
                        position, name, StepKind.WAIT, previous, timed_out, attempt, started=started
                    )
                    if not self.log.ours(recorded):
                        return self.log.adopt(recorded, name)
                    raise timed_out
                wake = time.time() + interval
                if self.x.deadlines.epoch_to_loop(wake) > self.x.deadlines.soft:
                    previous = await self.log.write(
                        position,
                        name,
                        StepKind.WAIT,
                        previous,
                        status=StepStatus.WAITING,
                        attempt=attempt,
                        result=to_json(value, what=f"the value of wait {name!r}"),
                        wake_at=wake,
                        started_at=started,
                    )
                    if not self.log.ours(previous):
                        return self.log.adopt(previous, name)
                await self.wait_until_epoch(wake)

    def _continues(self, previous: StepItem | None) -> TypeGuard[StepItem]:
        """Whether a wait goes on from ``previous`` (its poll count, start and wake time):
        only a wait this operation attempt left WAITING. Any other record (a failure or a
        wait of an earlier attempt) is only the condition the wait's next write is made on:
        a new attempt polls afresh (invariant 9)."""
        return (
            previous is not None
            and previous.op_attempt == self.x.op_attempt
            and previous.status == StepStatus.WAITING.value
        )

    async def parallel(self, *branches: Awaitable[Any]) -> list[Any]:
        """Run each awaitable concurrently in its own child scope; results in order.

        A branch failure cancels the other branches at once and is raised (it wins over a
        hand-over). A branch that hands over stops new steps, and the other branches run on
        to their next step boundary (a step body in progress is not cut off; at the soft
        deadline what still runs is cancelled), then the hand-over is raised. Cancellations
        ``parallel`` itself caused are never what it raises.
        """
        parent = current_scope.get()
        scopes = [parent.child() for _ in branches]

        async def run(branch: Awaitable[Any], scope: Scope) -> Any:
            current_scope.set(scope)
            return await without_exit(branch)

        with self.log.concurrent():
            done = await self._branches(
                [asyncio.ensure_future(run(b, s)) for b, s in zip(branches, scopes, strict=True)]
            )
        raised = [r for r in done if isinstance(r, BaseException)]
        if raised:
            raise min(raised, key=_precedence)
        return list(done)

    async def _branches(self, tasks: Sequence[asyncio.Future[Any]]) -> list[Any]:
        """Await ``parallel``'s branch tasks (see there); each one's result or exception."""
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            if _handing_over(tasks):
                self.progress.stopping = True  # every branch hands over at its next step
                await asyncio.wait(tasks, timeout=self.x.deadlines.remaining())
        finally:
            for task in tasks:
                task.cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
        return done

    # -- time ------------------------------------------------------------------------------

    async def wait_until_epoch(self, wake: float) -> None:
        """Wait for a durable wake time, up to the soft deadline.

        Raises:
            HandOver: the wake time is past the soft deadline (raised once it is reached).
        """
        deadlines = self.x.deadlines
        target = deadlines.epoch_to_loop(wake)
        loop = asyncio.get_running_loop()
        if target <= loop.time():
            return
        self.progress.progressed = True  # time spent towards a durable wake time is progress
        if target > deadlines.soft:
            await asyncio.sleep(max(0.0, deadlines.soft - loop.time()))
            raise HandOver(f"waiting until {wake:.3f}", wake_at=wake)
        await asyncio.sleep(target - loop.time())

    def _check_needs(self, needs: float | None) -> None:
        if needs is None:
            return
        window = self.x.deadlines.soft - self.x.started
        if needs < 0:
            raise ConfigurationError(f"needs must be >= 0 seconds, got {needs}")
        if needs > window and not self.x.deadlines.operation_bound:
            raise ConfigurationError(
                f"a step needs {needs:g} s but an invocation of this function has at most "
                f"{window:.1f} s of work time; raise the function's timeout or lower needs"
            )

    def _check_can_start(self, needs: float | None) -> None:
        """Raises HandOver when the step may not start in this invocation, or
        OperationTimeout when it can start in none: it needs more than is left before the
        operation's own deadline, which every later invocation shares."""
        deadlines = self.x.deadlines
        if self.progress.stopping or deadlines.soft_passed():
            raise HandOver("soft deadline reached")
        if needs is not None and deadlines.remaining() < needs:
            left = deadlines.remaining()
            if deadlines.operation_bound:
                raise OperationTimeout(
                    f"a step needs {needs:g} s but the operation's deadline is {left:.1f} s "
                    "away (the request's ServiceTimeout, its ResponseURL's expiry or "
                    "lambda_entry(timeout=...)): no invocation can give it that time"
                )
            raise HandOver(f"step needs {needs:g} s, {left:.1f} s left")

    async def _hold_lease(self) -> None:
        """Before live work: make sure the lease is still ours (see ``Lease.ensure_held``), and
        journal a physical id the handler set since the last live work, so that whatever this
        work builds can be found by a FAILED answer written elsewhere.

        Raises:
            FenceLost: a newer invocation holds the operation.
            JournalError: DynamoDB failed.
        """
        x, progress = self.x, self.progress
        if x.lease is not None:
            await x.lease.ensure_held()
        physical_id = progress.physical_id
        if physical_id is not None and physical_id != progress.recorded_physical_id:
            await x.store.record_physical_id(x.op_id, x.fence, physical_id)
            progress.recorded_physical_id = physical_id


async def without_exit(work: Awaitable[Any]) -> Any:
    """``work`` awaited, with a SystemExit it raises turned into :class:`HandlerExited`: raised
    in a task, SystemExit stops the event loop, and the invocation would end unanswered."""
    try:
        return await work
    except SystemExit as exc:
        raise HandlerExited(
            f"the handler raised SystemExit({exc.code!r}) (sys.exit() ends the Lambda process "
            "with nothing answered; raise an exception to fail the operation)"
        ) from exc
