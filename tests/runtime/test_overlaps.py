"""Steps, state and leases under overlapping invocations and faults (DESIGN.md invariants 2,
3, 4, 9 and 11): a write that loses its slot race adopts the winner's record after the same
checks replay makes, a new attempt's wait polls afresh, ctx.parallel neither cuts a body off
for a sibling's hand-over nor replays one branch's state change twice, and a renewal that
never answers ends the work when the lease does. Each test drives a deterministic
interleaving on the memory journal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from asynccfn._steps import Executor
from asynccfn.journal.memory import MemoryJournal
from asynccfn.journal.models import StepKind
from tests.runtime.test_steps import OP, in_root
from tests.runtime.test_steps import executor as steps_executor


def executor(
    journal: MemoryJournal, *, fence: int, seconds: float = 30.0, **fields: Any
) -> Executor:
    """test_steps' executor, with half a minute left by default."""
    return steps_executor(journal, fence=fence, seconds=seconds, **fields)


def test_invariant_11_state_mutated_in_one_parallel_branch_is_not_counted_twice_on_replay() -> None:
    """Branch 2 counts ``n += 1`` before its step; branch 1's step finishes meanwhile and
    journals the EventState, which already holds branch 2's count. Replay feeds branch 1
    first (its steps return at once), then branch 2's ``+= 1`` runs again: branch 2's own
    step must carry the state as of its write, so that replay ends where the run did."""
    journal = MemoryJournal()

    def handler(ex: Executor) -> Callable[[], Awaitable[Any]]:
        counted = asyncio.Event()
        x_recorded = asyncio.Event()

        async def x_body() -> str:
            await counted.wait()  # branch 2 has counted
            return "x"

        async def y_body() -> str:
            counted.set()
            await x_recorded.wait()  # branch 1's step is journaled, with n == 1
            return "y"

        async def branch_1() -> None:
            await ex.step(StepKind.STEP, "x", x_body)
            x_recorded.set()

        async def branch_2() -> None:
            ex.progress.state["n"] = ex.progress.state.get("n", 0) + 1
            await ex.step(StepKind.STEP, "y", y_body)

        async def run() -> Any:
            await ex.parallel(branch_1(), branch_2())
            return dict(ex.progress.state)

        return run

    first = executor(journal, fence=1)
    assert in_root(first, handler(first)) == {"n": 1}  # the live run counts once

    # A crash before the answer (or a hand-over after the branches): Lambda's retry replays.
    second = executor(journal, fence=2)
    assert in_root(second, handler(second)) == {"n": 1}, (
        "replay counted branch 2's `n += 1` twice: " + repr(dict(second.progress.state))
    )


def _poll(value: Any = None, fail: BaseException | None = None) -> Callable[[], Awaitable[Any]]:
    async def poll() -> Any:
        if fail is not None:
            raise fail
        return value

    return poll


def test_invariant_3_a_wait_that_loses_its_slot_adopts_the_recorded_value() -> None:
    """The holder (fence 2) loaded the journal before an older invocation (fence 1, paused
    past its lease with its poll in flight) resumed and journaled the wait's value. The
    holder's own poll then succeeds with another value and its write loses the slot race: it
    goes on with the recorded value, the one every replay gives back, as ctx.step does."""
    journal = MemoryJournal()
    holder = executor(journal, fence=2)  # claimed, journal loaded: nothing for "w" yet
    stale = executor(journal, fence=1)
    assert (
        in_root(
            stale,
            lambda: stale.wait_until(
                "w", _poll("arn:old"), interval=0, timeout=10, max_attempts=None
            ),
        )
        == "arn:old"
    )
    got = in_root(
        holder,
        lambda: holder.wait_until("w", _poll("arn:new"), interval=0, timeout=10, max_attempts=None),
    )
    recorded = asyncio.run(journal.load_steps(OP))["0#00001"]
    assert recorded.result == '"arn:old"' and recorded.fence == 1  # what every replay returns
    assert got == "arn:old", f"the live run returned {got!r}, the journal holds 'arn:old'"


def test_invariant_3_a_wait_whose_poll_fails_after_losing_its_slot_adopts_the_success() -> None:
    """As above, but the holder's poll raises: the journal holds the wait's success, which
    stands (the holder does not answer FAILED for a wait that succeeded)."""
    journal = MemoryJournal()
    holder = executor(journal, fence=2)
    stale = executor(journal, fence=1)
    in_root(
        stale,
        lambda: stale.wait_until("w", _poll("ready"), interval=0, timeout=10, max_attempts=None),
    )
    outcome: Any
    try:
        outcome = in_root(
            holder,
            lambda: holder.wait_until(
                "w",
                _poll(fail=RuntimeError("throttled")),
                interval=0,
                timeout=10,
                max_attempts=None,
            ),
        )
    except RuntimeError as exc:
        outcome = exc
    assert asyncio.run(journal.load_steps(OP))["0#00001"].status == "SUCCEEDED"
    assert outcome == "ready", f"the live run ended with {outcome!r}; the journal holds success"


def test_invariant_9_a_retried_deployment_waits_afresh_after_a_wait_timed_out() -> None:
    """A retried deployment (a new attempt of the request) resets failed steps and retry
    counters: a wait that gave up in the first attempt polls afresh, not from the first
    attempt's poll count and start time."""
    journal = MemoryJournal()
    first = executor(journal, fence=1, op_attempt=1)

    async def never() -> bool:
        return False

    try:
        in_root(first, lambda: first.wait_until("w", never, interval=0, timeout=10, max_attempts=3))
    except Exception as exc:  # WaitTimeout: the first attempt's answer is FAILED
        assert type(exc).__name__ == "WaitTimeout"
    polls = iter([False, False, "ready"])

    async def soon() -> Any:
        return next(polls)

    retried = executor(journal, fence=2, op_attempt=2)
    outcome: Any
    try:
        outcome = in_root(
            retried, lambda: retried.wait_until("w", soon, interval=0, timeout=10, max_attempts=3)
        )
    except Exception as exc:
        outcome = exc
    assert outcome == "ready", f"the new attempt's wait ended with {outcome!r} on its first poll"


class _Unanswered:
    """A journal whose lease renewals are sent and never answered (a partition: botocore
    waits out its read timeout on each of its attempts, 5 x 5 s with the client's tuning)."""

    def __init__(self) -> None:
        self.sent = 0

    async def renew_lease(self, op_id: str, fence: int, lease_until: float) -> None:
        self.sent += 1
        await asyncio.Event().wait()


def test_invariant_4_a_renewal_that_never_answers_still_ends_the_work_when_the_lease_does() -> None:
    """The heartbeat's renewal hangs. Once the lease runs out (another invocation may claim
    the operation from then on) the handler is cancelled, not left to run on, unfenced,
    for as long as botocore's retries take."""
    from asynccfn._lease import Lease

    journal = _Unanswered()

    async def run() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        lease = Lease(journal, op_id=OP, fence=1, length=0.3, skew=0.05, started=loop.time())
        handler = asyncio.ensure_future(asyncio.sleep(30))  # a step body in progress
        heartbeat = asyncio.ensure_future(lease.heartbeat(handler))
        # Well past the lease (0.25 s on this clock) and its skew: a successor may hold it.
        await asyncio.wait({handler}, timeout=1.5)
        lapsed = loop.time() - lease.held_until
        cancelled = handler.done()
        heartbeat.cancel()
        handler.cancel()
        await asyncio.gather(heartbeat, handler, return_exceptions=True)
        return cancelled, lapsed

    cancelled, lapsed = asyncio.run(run())
    assert journal.sent >= 1
    assert cancelled, f"the handler still runs {lapsed:.2f} s after its lease ran out"


def test_invariant_3_a_branch_handing_over_for_needs_does_not_cut_an_at_most_once_sibling() -> None:
    """ctx.parallel: branch 2's step needs more time than is left, so it hands over before
    starting (28+ s before the soft deadline). Branch 1, in the middle of an at-most-once
    body it journaled as STARTED, runs to its end: cancelled, its successor could only raise
    StepInterrupted and fail the operation."""
    from asynccfn._errors import HandOver, StepInterrupted

    journal = MemoryJournal()
    ran: list[str] = []

    def handler(ex: Executor) -> Callable[[], Awaitable[Any]]:
        async def pay() -> str:
            ran.append("pay")
            await asyncio.sleep(0.05)  # a short call: done long before the soft deadline
            ran.append("paid")
            return "receipt"

        async def big() -> str:
            return "big"

        window = ex.x.deadlines.soft - ex.x.started  # allowed, but more than is left now

        async def run() -> Any:
            return await ex.parallel(
                ex.step(StepKind.STEP, "pay", pay, at_most_once=True),
                ex.step(StepKind.STEP, "big", big, needs=window),
            )

        return run

    first = executor(journal, fence=1)
    try:
        in_root(first, handler(first))
    except HandOver:
        pass
    slot = asyncio.run(journal.load_steps(OP))["0.1#00001"]

    successor = executor(journal, fence=2)
    outcome: Any
    try:
        outcome = in_root(successor, handler(successor))
    except (StepInterrupted, HandOver) as exc:  # "big" needs more than any invocation here
        outcome = exc
    assert ran == ["pay", "paid"] and slot.status == "SUCCEEDED", (
        f"the at-most-once body was cut off ({ran}, slot {slot.status}); the successor: {outcome!r}"
    )


def test_a_branch_hand_over_is_not_turned_into_a_cancellation_by_its_cancelled_siblings() -> None:
    """ctx.parallel: a branch's durable sleep outlasts the invocation and hands over with its
    wake time; the sibling still running at the soft deadline is cancelled, and the hand-over
    (with its wake time) is raised, not the cancellation it caused."""
    from asynccfn._errors import HandOver

    journal = MemoryJournal()
    ex = executor(journal, fence=1, seconds=0.6, reserve=0.5)  # soft deadline in 0.1 s

    async def slow() -> str:
        await asyncio.Event().wait()  # still running at the soft deadline
        return "never"

    async def run() -> Any:
        return await ex.parallel(ex.sleep(60, "nap"), ex.step(StepKind.STEP, "slow", slow))

    raised: BaseException | None = None
    try:
        in_root(ex, run)
    except BaseException as exc:
        raised = exc
    assert isinstance(raised, HandOver) and raised.wake_at is not None, repr(raised)


def test_invariant_2_a_lost_slot_race_checks_the_winners_step_name_as_replay_does() -> None:
    """Replay fails with a non-determinism error when the journal names another step at the
    position; so does a live write that loses the slot race to another invocation's record of
    another step: the handler asking for "read-secret" is never handed the result of
    "delete-bucket"."""
    from asynccfn._errors import NonDeterminismError

    journal = MemoryJournal()
    holder = executor(journal, fence=2)  # loaded: nothing at 0#00001 yet
    other = executor(journal, fence=1)  # took the other branch of a time-dependent `if`

    async def deleted() -> dict[str, str]:
        return {"deleted": "bucket-1"}

    async def secret() -> str:
        return "s3cr3t"

    in_root(other, lambda: other.step(StepKind.STEP, "delete-bucket", deleted))
    outcome: Any
    try:
        outcome = in_root(holder, lambda: holder.step(StepKind.STEP, "read-secret", secret))
    except NonDeterminismError as exc:
        outcome = exc
    assert isinstance(outcome, NonDeterminismError), (
        f"step 'read-secret' returned {outcome!r}, the result journaled for 'delete-bucket'"
    )
