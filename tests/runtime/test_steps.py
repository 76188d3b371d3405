"""The step executor on its own, on the memory journal: replay, retries, races, deadlines.

No server and no handler: each test builds the executor an invocation would, runs durable
actions in the root scope and reads what the journal holds. The contract suite
(tests/journal/test_contract.py) proves the DynamoDB store behaves as this journal does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from asynccfn._deadline import Deadlines
from asynccfn._errors import (
    FenceLost,
    HandOver,
    NonDeterminismError,
    StepInterrupted,
    WaitTimeout,
)
from asynccfn._execution import Execution, Progress
from asynccfn._retry import RetryPolicy
from asynccfn._steps import Executor
from asynccfn.journal.memory import MemoryJournal
from asynccfn.journal.models import StepItem, StepKind, StepStatus

OP = "op-1"


def executor(
    journal: MemoryJournal,
    *,
    fence: int = 1,
    op_attempt: int = 1,
    seconds: float = 10.0,
    reserve: float = 1.0,
    **fields: Any,
) -> Executor:
    """The executor of an invocation under ``fence`` with ``seconds`` left, the journal as
    it loads now."""
    loaded: dict[str, StepItem] = asyncio.run(journal.load_steps(OP))
    return Executor(
        Execution(
            store=journal,
            op_id=OP,
            op_attempt=op_attempt,
            fence=fence,
            invocation=fence,
            deadlines=Deadlines.for_invocation(remaining_ms=int(seconds * 1000), reserve=reserve),
            started=time.monotonic(),
            **fields,
        ),
        Progress(journal=loaded, replaying=bool(loaded), to_replay=len(loaded)),
    )


def in_root(ex: Executor, action: Callable[[], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        ex.root()
        return await action()

    return asyncio.run(run())


def steps_of(journal: MemoryJournal) -> dict[str, StepItem]:
    loaded: dict[str, StepItem] = asyncio.run(journal.load_steps(OP))
    return loaded


def counting(calls: list[str], value: Any = "ok", fail: BaseException | None = None) -> Any:
    async def body() -> Any:
        calls.append("ran")
        if fail is not None:
            raise fail
        return value

    return body


def test_a_step_runs_once_and_replays_its_result_and_state() -> None:
    journal = MemoryJournal()
    calls: list[str] = []
    first = executor(journal)

    async def handler(ex: Executor) -> Any:
        value = await ex.step(StepKind.STEP, "a", counting(calls, {"n": 1}))
        ex.progress.state["seen"] = value["n"]
        await ex.step(StepKind.STEP, "b", counting(calls, [2]))
        return value

    assert in_root(first, lambda: handler(first)) == {"n": 1}
    assert calls == ["ran", "ran"] and first.progress.progressed and not first.progress.replaying
    recorded = steps_of(journal)
    assert [(p, s.name, s.status, s.result) for p, s in recorded.items()] == [
        ("0#00001", "a", "SUCCEEDED", '{"n":1}'),
        ("0#00002", "b", "SUCCEEDED", "[2]"),
    ]
    assert recorded["0#00002"].state == '{"seen":1}'  # recorded with the step it preceded

    second = executor(journal, fence=2)
    assert in_root(second, lambda: handler(second)) == {"n": 1}
    assert calls == ["ran", "ran"]  # nothing ran again
    assert second.progress.state == {"seen": 1} and not second.progress.replaying
    assert not second.progress.progressed


def test_a_failure_replays_as_its_type_and_a_new_attempt_runs_it_again() -> None:
    journal = MemoryJournal()
    calls: list[str] = []
    first = executor(journal)
    with pytest.raises(ValueError, match="bad input"):
        in_root(
            first,
            lambda: first.step(StepKind.STEP, "a", counting(calls, fail=ValueError("bad input"))),
        )
    assert steps_of(journal)["0#00001"].error_type == "builtins:ValueError"

    replay = executor(journal, fence=2)
    with pytest.raises(ValueError, match="bad input"):
        in_root(replay, lambda: replay.step(StepKind.STEP, "a", counting(calls)))
    assert calls == ["ran"]

    retried_deployment = executor(journal, fence=3, op_attempt=2)
    assert (
        in_root(
            retried_deployment, lambda: retried_deployment.step(StepKind.STEP, "a", counting(calls))
        )
        == "ok"
    )
    assert calls == ["ran", "ran"]


def test_retries_are_journaled_until_the_step_succeeds() -> None:
    journal = MemoryJournal()
    failures = [RuntimeError("one"), RuntimeError("two")]

    async def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "third time"

    ex = executor(journal)
    policy = RetryPolicy(max_attempts=3, initial_delay=0, jitter=0)
    assert in_root(ex, lambda: ex.step(StepKind.STEP, "a", flaky, retry=policy)) == "third time"
    slot = steps_of(journal)["0#00001"]
    assert (slot.status, slot.attempt, slot.error_type) == ("SUCCEEDED", 3, None)


def test_a_retry_delay_past_the_soft_deadline_hands_over_with_its_wake_time() -> None:
    journal = MemoryJournal()
    ex = executor(journal, seconds=1.0, reserve=0.5)
    policy = RetryPolicy(max_attempts=2, initial_delay=30, jitter=0)
    calls: list[str] = []
    with pytest.raises(HandOver) as handed:
        in_root(
            ex,
            lambda: ex.step(StepKind.STEP, "a", counting(calls, fail=OSError("x")), retry=policy),
        )
    slot = steps_of(journal)["0#00001"]
    assert slot.status == StepStatus.RETRYING.value and slot.wake_at == handed.value.wake_at
    assert ex.progress.interrupted_at == {"0#00001"}

    successor = executor(journal, fence=2, seconds=1.0, reserve=0.5)
    with pytest.raises(HandOver):  # still before the wake time: it waits again, runs nothing
        in_root(
            successor, lambda: successor.step(StepKind.STEP, "a", counting(calls), retry=policy)
        )
    assert calls == ["ran"]


def test_another_step_at_a_journaled_position_is_non_deterministic() -> None:
    journal = MemoryJournal()
    first = executor(journal)
    in_root(first, lambda: first.step(StepKind.STEP, "a", counting([])))
    second = executor(journal, fence=2)
    with pytest.raises(
        NonDeterminismError, match="holds step 'a' but the handler now asks for 'b'"
    ):
        in_root(second, lambda: second.step(StepKind.STEP, "b", counting([])))


def test_a_writer_that_loses_the_slot_race_returns_the_winners_result() -> None:
    journal = MemoryJournal()
    late = executor(journal, fence=1)  # loaded the journal before the winner wrote
    winner = executor(journal, fence=2)
    in_root(winner, lambda: winner.step(StepKind.STEP, "a", counting([], "winner's")))
    assert in_root(late, lambda: late.step(StepKind.STEP, "a", counting([], "mine"))) == "winner's"
    assert steps_of(journal)["0#00001"].fence == 2


def test_an_at_most_once_step_cut_off_is_not_started_again() -> None:
    journal = MemoryJournal()
    cut = executor(journal, seconds=0.6, reserve=0.3)

    async def endless() -> None:
        await asyncio.sleep(60)

    async def cut_off() -> None:
        cut.root()
        task = asyncio.ensure_future(cut.step(StepKind.STEP, "pay", endless, at_most_once=True))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(cut_off())
    assert steps_of(journal)["0#00001"].status == StepStatus.STARTED.value

    calls: list[str] = []
    later = executor(journal, fence=2)
    with pytest.raises(StepInterrupted, match="was interrupted in invocation 1"):
        in_root(later, lambda: later.step(StepKind.STEP, "pay", counting(calls), at_most_once=True))
    assert calls == [] and steps_of(journal)["0#00001"].status == "FAILED"


def test_a_slot_started_by_a_newer_invocation_means_the_operation_is_lost() -> None:
    journal = MemoryJournal()
    stale = executor(journal, fence=1)
    started = journal.new_step(
        OP,
        "0#00001",
        name="pay",
        kind="step",
        status="STARTED",
        attempt=1,
        op_attempt=1,
        started_at=time.time(),
        invocation=2,
        fence=2,
    )
    asyncio.run(journal.write_step(started, previous=None))
    stale.progress.journal["0#00001"] = started
    with pytest.raises(FenceLost, match="started by a newer invocation"):
        in_root(stale, lambda: stale.step(StepKind.STEP, "pay", counting([]), at_most_once=True))


def test_no_step_starts_after_the_soft_deadline() -> None:
    journal = MemoryJournal()
    ex = executor(journal, seconds=0.0)
    with pytest.raises(HandOver, match="soft deadline reached"):
        in_root(ex, lambda: ex.step(StepKind.STEP, "a", counting([])))
    assert ex.progress.interrupted_at == {"0#00001"} and steps_of(journal) == {}


def test_a_sleep_is_journaled_once_and_hands_over_past_the_deadline() -> None:
    journal = MemoryJournal()
    ex = executor(journal, seconds=0.6, reserve=0.3)
    with pytest.raises(HandOver) as handed:
        in_root(ex, lambda: ex.sleep(60, "nap"))
    slot = steps_of(journal)["0#00001"]
    assert (slot.kind, slot.status) == ("sleep", "WAITING")
    assert handed.value.wake_at == slot.wake_at and ex.progress.progressed

    short = MemoryJournal()
    ex = executor(short)
    in_root(ex, lambda: ex.sleep(0.01, "blink"))
    assert steps_of(short)["0#00001"].status == "WAITING"


def test_a_wait_records_its_polls_once_and_gives_up_as_wait_timeout() -> None:
    journal = MemoryJournal()
    values = iter([0, 0, "ready"])

    async def poll() -> Any:
        return next(values)

    ex = executor(journal)
    got = in_root(ex, lambda: ex.wait_until("w", poll, interval=0, timeout=10, max_attempts=None))
    assert got == "ready"
    slot = steps_of(journal)["0#00001"]
    assert (slot.status, slot.attempt, slot.result) == ("SUCCEEDED", 3, '"ready"')

    never = MemoryJournal()

    async def no() -> bool:
        return False

    ex = executor(never)
    with pytest.raises(WaitTimeout, match="gave up after 2 attempts") as timed_out:
        in_root(ex, lambda: ex.wait_until("w", no, interval=0, timeout=10, max_attempts=2))
    assert isinstance(timed_out.value, TimeoutError)
    assert steps_of(never)["0#00001"].error_type.endswith("WaitTimeout")


def test_a_physical_id_set_by_the_handler_is_journaled_before_live_work() -> None:
    from tests.journal.test_contract import claim_of

    journal = MemoryJournal()
    asyncio.run(journal.claim(claim_of(OP)))
    ex = executor(journal)
    ex.progress.physical_id = "bucket-1"
    in_root(ex, lambda: ex.step(StepKind.STEP, "a", counting([])))
    op = journal.operation(OP)
    assert op is not None and op.physical_id == "bucket-1"
    assert ex.progress.recorded_physical_id == "bucket-1"


def test_invariant_4_a_write_that_meets_anothers_unfinished_start_does_not_overwrite_it() -> None:
    """A newcomer that loaded the journal before an older invocation started the step at most
    once (the step's code no longer says at_most_once, say) does not overwrite that start with
    its own result, nor hand back the start's empty result: it stops interrupted."""
    journal = MemoryJournal()
    newcomer = executor(journal, fence=2)  # loaded: nothing yet
    older = journal.new_step(
        OP,
        "0#00001",
        name="pay",
        kind=StepKind.STEP.value,
        status=StepStatus.STARTED.value,
        attempt=1,
        op_attempt=1,
        started_at=time.time(),
        invocation=1,
        fence=1,
    )
    asyncio.run(journal.write_step(older, previous=None))
    calls: list[str] = []
    with pytest.raises(StepInterrupted, match="started at most once by invocation 1"):
        in_root(newcomer, lambda: newcomer.step(StepKind.STEP, "pay", counting(calls)))
    assert calls == ["ran"]  # at least once: its body ran, its result was not journaled
    assert steps_of(journal)["0#00001"].status == StepStatus.STARTED.value


def test_a_sleep_that_loses_its_slot_checks_the_winners_step_name() -> None:
    journal = MemoryJournal()
    holder = executor(journal, fence=2)  # loaded: nothing at 0#00001 yet
    other = executor(journal, fence=1)
    in_root(other, lambda: other.step(StepKind.STEP, "delete", counting([])))
    with pytest.raises(NonDeterminismError, match=r"'delete'.*'nap'"):
        in_root(holder, lambda: holder.sleep(0, "nap"))


def test_a_parallel_branch_handing_over_lets_its_siblings_finish_their_steps() -> None:
    journal = MemoryJournal()
    ran: list[str] = []

    async def pay() -> str:
        await asyncio.sleep(0.05)
        ran.append("paid")
        return "receipt"

    def branches(ex: Executor, needs: float) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            return await ex.parallel(
                ex.step(StepKind.STEP, "pay", pay, at_most_once=True),
                ex.step(StepKind.STEP, "big", counting([], "big"), needs=needs),
            )

        return run

    first = executor(journal, seconds=30)
    with pytest.raises(HandOver, match="needs"):
        in_root(first, branches(first, needs=first.x.deadlines.soft - first.x.started))
    assert ran == ["paid"] and steps_of(journal)["0.1#00001"].status == "SUCCEEDED"
    successor = executor(journal, fence=2, seconds=30)
    assert in_root(successor, branches(successor, needs=1)) == ["receipt", "big"]


def test_state_replays_once_when_parallel_branches_hand_over() -> None:
    """Each branch counts before and after its steps; a hand-over cuts both off. Replay takes
    the hand-over state at each interrupted position, so nothing counts twice."""
    journal = MemoryJournal()

    def handler(ex: Executor) -> Callable[[], Awaitable[Any]]:
        state = ex.progress.state

        def count(key: str) -> None:
            state[key] = state.get(key, 0) + 1

        async def forever() -> str:
            await asyncio.Event().wait()
            return "never"

        async def later() -> None:
            await asyncio.sleep(0.02)  # branch 2 journals "y" first

        async def branch_1() -> None:
            count("a")
            await ex.step(StepKind.STEP, "x", later)
            count("a")
            await ex.sleep(0.5, "nap")  # past the first invocation's soft deadline
            count("a")

        async def branch_2() -> None:
            count("b")
            await ex.step(StepKind.STEP, "y", counting([]))
            count("b")
            await ex.step(StepKind.STEP, "z", forever if ex.x.fence == 1 else counting([]))
            count("b")

        async def run() -> Any:
            await ex.parallel(branch_1(), branch_2())
            return dict(state)

        return run

    first = executor(journal, seconds=0.6, reserve=0.5)  # soft deadline in 0.1 s
    with pytest.raises(HandOver):
        in_root(first, handler(first))
    assert first.progress.state == {"a": 2, "b": 2}
    successor = executor(journal, fence=2, handover_at=frozenset(first.progress.interrupted_at))
    successor.progress.handover_state = json.dumps(first.progress.state)
    assert in_root(successor, handler(successor)) == {"a": 3, "b": 3}
