"""The lease on its own, on the memory journal: renewal, retries inside the lease, loss."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from asynccfn._errors import FenceLost, JournalError, LeaseLost
from asynccfn._lease import Lease
from asynccfn.journal.memory import MemoryJournal
from tests.journal.test_contract import claim_of

OP = "op-lease"


class Flaky:
    """The memory journal, its first ``failures`` renewals failing as DynamoDB can."""

    def __init__(self, journal: MemoryJournal, failures: int) -> None:
        self.journal = journal
        self.failures = failures
        self.tries = 0

    async def renew_lease(self, op_id: str, fence: int, lease_until: float) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise JournalError("DynamoDB ProvisionedThroughputExceededException: slow down")
        await self.journal.renew_lease(op_id, fence, lease_until)


def claimed(lease: float = 30.0) -> MemoryJournal:
    journal = MemoryJournal()
    asyncio.run(journal.claim(claim_of(OP, lease=lease)))
    return journal


def lease_until(journal: MemoryJournal) -> float:
    op = journal.operation(OP)
    assert op is not None and op.lease_until is not None
    return op.lease_until


def test_a_renewal_extends_the_lease_from_when_it_was_sent() -> None:
    journal = claimed(lease=1.0)

    async def renew() -> Lease:
        lease = Lease(journal, op_id=OP, fence=1, length=30, skew=2, started=0.0)
        before = asyncio.get_running_loop().time()
        await lease.renew()
        assert before + 28 <= lease.held_until <= asyncio.get_running_loop().time() + 28
        return lease

    lease = asyncio.run(renew())
    assert lease.renewals == 1 and lease_until(journal) >= time.time() + 29


def test_ensure_held_renews_only_once_the_lease_is_no_longer_surely_held() -> None:
    journal = claimed()

    async def check() -> tuple[int, int]:
        now = asyncio.get_running_loop().time()
        held = Lease(journal, op_id=OP, fence=1, length=30, skew=2, started=now)
        await held.ensure_held()
        late = Lease(journal, op_id=OP, fence=1, length=30, skew=2, started=now - 60)
        await late.ensure_held()
        return held.renewals, late.renewals

    assert asyncio.run(check()) == (0, 1)


def test_failed_renewals_are_retried_while_the_lease_is_held() -> None:
    journal = claimed()
    flaky = Flaky(journal, failures=2)

    async def renew() -> int:
        lease = Lease(flaky, op_id=OP, fence=1, length=3, skew=0, started=0.0)
        lease.held_until = asyncio.get_running_loop().time() + 3
        await lease._renew_while_held()
        return lease.renewals

    assert asyncio.run(renew()) == 1 and flaky.tries == 3


def test_a_late_renewal_that_fails_loses_the_lease() -> None:
    flaky = Flaky(claimed(), failures=1)

    async def late() -> None:
        lease = Lease(flaky, op_id=OP, fence=1, length=30, skew=2, started=-100.0)
        await lease.ensure_held()

    with pytest.raises(LeaseLost, match="ran out before a renewal succeeded"):
        asyncio.run(late())
    assert flaky.tries == 1


def test_the_heartbeat_cancels_the_handler_when_a_newer_fence_holds_the_operation() -> None:
    journal = claimed(lease=-10.0)
    asyncio.run(journal.claim(claim_of(OP, lambda_request="newer")))

    async def beat() -> bool:
        lease = Lease(journal, op_id=OP, fence=1, length=0.03, skew=0, started=0.0)
        handler = asyncio.ensure_future(asyncio.sleep(10))
        with pytest.raises(FenceLost):
            await lease.heartbeat(handler)
        await asyncio.gather(handler, return_exceptions=True)
        return handler.cancelled()

    assert asyncio.run(beat())


class Slow:
    """The memory journal, every renewal answering after ``delay`` seconds (``None``: never)."""

    def __init__(self, journal: MemoryJournal, delay: float | None) -> None:
        self.journal = journal
        self.delay = delay
        self.sent: list[float] = []
        self.three = asyncio.Event()  # three renewals sent

    async def renew_lease(self, op_id: str, fence: int, lease_until: float) -> None:
        self.sent.append(asyncio.get_running_loop().time())
        if len(self.sent) >= 3:
            self.three.set()
        if self.delay is None:
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay)
        await self.journal.renew_lease(op_id, fence, lease_until)


def test_a_renewal_that_never_answers_ends_the_work_before_the_lease_does() -> None:
    slow = Slow(claimed(), delay=None)

    async def beat() -> tuple[float, float, bool]:
        loop = asyncio.get_running_loop()
        lease = Lease(slow, op_id=OP, fence=1, length=0.6, skew=0.1, started=loop.time())
        handler = asyncio.ensure_future(asyncio.sleep(10))
        async with asyncio.timeout(5):  # (without the bound, it waits forever)
            with pytest.raises(LeaseLost, match="no answer in time"):
                await lease.heartbeat(handler)
        ended = loop.time()
        await asyncio.gather(handler, return_exceptions=True)
        return ended, lease.held_until, handler.cancelled()

    ended, held_until, cancelled = asyncio.run(beat())
    assert cancelled and ended < held_until and slow.sent


def test_after_a_slow_renewal_the_next_is_sent_a_third_of_the_held_time_after_it() -> None:
    slow = Slow(claimed(), delay=0.15)

    async def beat() -> list[float]:
        loop = asyncio.get_running_loop()
        lease = Lease(slow, op_id=OP, fence=1, length=0.6, skew=0.1, started=loop.time())
        handler = asyncio.ensure_future(asyncio.sleep(10))
        heartbeat = asyncio.ensure_future(lease.heartbeat(handler))
        await slow.three.wait()
        heartbeat.cancel()
        handler.cancel()
        await asyncio.gather(heartbeat, handler, return_exceptions=True)
        return slow.sent

    sent = asyncio.run(beat())
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert all(0.16 <= gap < 0.25 for gap in gaps), gaps  # a third of 0.5 s, not + 0.15 s
