"""What the runtime needs of a journal, as one protocol three journals implement:

::

    JournalStore    DynamoDB (aiobotocore): the durable journal of a deployed function
    MemoryJournal   the same conditional-write rules on a dict: durable for the life of the
                    object, for fast tests of the executor and the lease
    NoJournal       ``lambda_entry(journal=None)``: nothing is kept, nothing hands over

The runtime asks :attr:`RuntimeJournal.durable` whether anything outlives the invocation
(hand-over, lease, payload codec); it never asks which class it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .claims import Claim, ClaimRequest
    from .models import OperationItem, OperationStatus, StepItem


class StepJournal(Protocol):
    """What the step executor needs: step slots and the operation's physical id."""

    def new_step(self, op_id: str, position: str, **attrs: Any) -> StepItem:
        """A step item for ``position`` (``<scope>#<seq>``)."""
        ...

    async def write_step(self, step: StepItem, *, previous: StepItem | None) -> StepItem:
        """Create the slot (``previous`` None), or advance it from ``previous``; return what
        the journal holds: ``step`` itself when this write won, else the winner's item.

        Raises:
            PayloadTooLarge: the item would exceed what a journal item may hold.
            JournalError: the journal failed.
        """
        ...

    async def record_physical_id(self, op_id: str, fence: int, physical_id: str) -> None:
        """Journal the physical id the handler set.

        Raises:
            FenceLost: a newer invocation holds the operation.
            JournalError: the journal failed.
        """
        ...


class LeaseJournal(Protocol):
    """What a lease needs: renewal under the holder's fence."""

    async def renew_lease(self, op_id: str, fence: int, lease_until: float) -> None:
        """Extend the lease to ``lease_until`` (epoch seconds).

        Raises:
            FenceLost: a newer invocation holds the operation.
            JournalError: the journal failed.
        """
        ...


class RuntimeJournal(StepJournal, LeaseJournal, Protocol):
    """Everything one invocation reads and writes (see the module docstring).

    Every write to the operation item but :meth:`mark_posted` is conditional on the writer's
    fence and raises ``FenceLost`` when a newer invocation holds the operation.
    """

    @property
    def durable(self) -> bool:
        """Whether what is written outlives the invocation (False: nothing to hand over to)."""
        ...

    async def claim(self, req: ClaimRequest) -> Claim:
        """Take the operation for this invocation (fence + 1, short lease), or say why not.

        Raises:
            JournalError: the journal failed.
        """
        ...

    async def load_steps(self, op_id: str) -> dict[str, StepItem]:
        """Every step of the operation, by position, in the journal's key order.

        Raises:
            JournalError: the journal failed.
        """
        ...

    async def load_operation(self, op_id: str) -> OperationItem | None:
        """The operation item as it is now (a consistent read), or None.

        Raises:
            JournalError: the journal failed.
        """
        ...

    async def release_lease(self, op_id: str, fence: int) -> None:
        """Give the lease up early.

        Raises:
            FenceLost, JournalError: as :meth:`renew_lease`.
        """
        ...

    async def record_handover(
        self,
        current: OperationItem,
        *,
        token: str,
        state: str | None,
        positions: list[str],
        physical_id: str | None,
        wake_at: float | None,
        stalled: int,
        note: str,
    ) -> None:
        """Record the hand-over token (the lease stays held) before invoking the successor.

        Raises:
            FenceLost, JournalError: as :meth:`renew_lease`.
        """
        ...

    async def record_response(
        self,
        current: OperationItem,
        *,
        body: str,
        response_status: str,
        status: OperationStatus,
        physical_id: str,
        reason: str | None,
    ) -> None:
        """The outbox: record the response (and release the lease) before it is PUT.

        Raises:
            FenceLost, JournalError: as :meth:`renew_lease`.
        """
        ...

    async def mark_posted(
        self,
        op_id: str,
        attempt: str,
        *,
        undeliverable: str | None = None,
        kept: str | None = None,
    ) -> None:
        """Mark the recorded response of ``attempt`` delivered (or undeliverable, with why);
        nothing when a newer attempt took over.

        Raises:
            JournalError: the journal failed.
        """
        ...

    async def note_delivery(self, op_id: str, attempt: str, what: str) -> None:
        """Add ``what`` (why the response is not delivered yet) to the operation's events;
        nothing when a newer attempt took over.

        Raises:
            JournalError: the journal failed.
        """
        ...
