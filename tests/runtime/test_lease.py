"""The lease on its own, on the memory journal: renewal, retries inside the lease, loss."""

from __future__ import annotations

import asyncio
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
