"""The hand-over to a new invocation (DESIGN.md invariants 5 and 7).

::

    soft deadline ─> no progress max_stalled times in a row? ─> FAILED (through the outbox)
                 ─> record the token, EventState, positions, wake time (lease still held)
                 ─> invoke self with the token ─> handed over
                                       └─ refused after retries ─> FAILED (lease still held)

A journal that is not durable has nothing for a successor to replay: its handler ran out of
time, and it answers FAILED saying so.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._continuation import invoke_self
from ._errors import ContinuationError, FenceLost, JournalError, PayloadTooLarge
from ._outcomes import InvocationResult
from .journal._payload import sealed_handover_state

if TYPE_CHECKING:
    from ._clients import ClientPool
    from ._deadline import Deadlines
    from ._outbox import Outbox
    from ._probe import Probe
    from ._protocol import Request
    from ._steps import Executor
    from .journal.models import OperationItem
    from .journal.protocol import RuntimeJournal

log = logging.getLogger("asynccfn.runtime")

_ANSWER_TIME = 0.3  # seconds kept for recording and PUTting a FAILED answer
# The Lambda client is made once an operation has run this long, or this long before its soft
# deadline if that comes sooner: an operation that ends quickly never hands over, and its
# cold start does not load Lambda's service model; one that may hand over has its client
# before its reserve begins.
_WARM_AFTER = 1.0
_WARM_LEAD = 1.0


class HandOff:
    """Hands the operations of one runtime over to new invocations of its function."""

    __slots__ = ("_clients", "_journal", "_max_stalled", "_outbox", "_probe", "_warming")

    def __init__(
        self,
        *,
        journal: RuntimeJournal,
        clients: ClientPool,
        outbox: Outbox,
        max_stalled: int,
        probe: Probe,
    ) -> None:
        self._journal = journal
        self._clients = clients
        self._outbox = outbox
        self._max_stalled = max_stalled
        self._probe = probe
        self._warming: asyncio.Future[None] | None = None

    def warm_later(self, soft: float) -> asyncio.TimerHandle | None:
        """Schedule :meth:`warm` for an operation whose handler runs until the loop time
        ``soft`` at the latest; cancel the handle when the handler is done."""
        if not self._journal.durable or self._warming is not None:
            return None
        loop = asyncio.get_running_loop()
        delay = max(0.0, min(_WARM_AFTER, soft - _WARM_LEAD - loop.time()))
        return loop.call_later(delay, self.warm)

    def warm(self) -> None:
        """Start creating the Lambda client, once: a hand-over happens inside the reserve,
        where there is little time to create one."""
        if self._journal.durable and self._warming is None:
            self._warming = asyncio.ensure_future(self._warm_lambda_client())

    async def _warm_lambda_client(self) -> None:
        try:
            await self._clients.get("lambda")
        except Exception as exc:  # the hand-over will meet (and report) the same problem
            log.warning("could not prepare the Lambda client: %s", exc)

    async def close(self) -> None:
        if self._warming is not None:
            await self._warming

    async def hand_over(
        self,
        request: Request,
        op: OperationItem,
        event: object,
        executor: Executor,
        deadlines: Deadlines,
        lambda_context: Any,
        *,
        physical_id: str | None,
        wake_at: float | None,
    ) -> InvocationResult:
        """Continue the operation in a new invocation, or answer FAILED when it cannot.

        ``wake_at`` is the durable wake time that ended this invocation, if one did.

        Raises:
            JournalError: recording the hand-over failed or outlasted the invocation.
            DeliveryError: a FAILED answer's PUT failed after its retries.
        """
        if not self._journal.durable:
            reason = (
                "the handler ran out of time: the Lambda deadline came before it finished "
                "(set lambda_entry(journal=...) to continue in a new invocation)"
            )
            return await self._outbox.fail(request, op, reason, deadlines, physical_id=physical_id)
        try:
            # Changed since the last step write (which checks it), it may not fit the journal.
            ctx_state = executor.state_json()
        except PayloadTooLarge as exc:
            reason = f"cannot hand over: {exc}"
            return await self._outbox.fail(request, op, reason, deadlines, physical_id=physical_id)
        progress = executor.progress
        stalled = 0 if progress.progressed else (op.stalled or 0) + 1
        if stalled >= self._max_stalled:
            reason = (
                f"no progress in {stalled} invocations in a row: the work at step position "
                f"{progress.current} is cut off by the deadline each time; give the function "
                "a longer timeout or split the step"
            )
            return await self._outbox.fail(request, op, reason, deadlines, physical_id=physical_id)
        token = secrets.token_hex(16)
        assert isinstance(event, Mapping)  # parse_request accepted it
        try:
            async with asyncio.timeout_at(deadlines.hard):
                await self._journal.record_handover(
                    op,
                    token=token,
                    state=await sealed_handover_state(ctx_state),
                    positions=sorted(progress.interrupted_at),
                    physical_id=physical_id,
                    wake_at=wake_at,
                    stalled=stalled,
                    note="handed over",
                )
            self._probe.point("after-handover-recorded")
            # The invoke and its retries may use what is left, less the time a FAILED answer
            # needs should Lambda refuse (a journal write and a PUT).
            invoke_by = deadlines.hard - min(_ANSWER_TIME, deadlines.remaining_hard() / 2)
            loop = asyncio.get_running_loop()
            log.debug(
                "hand-over recorded %.3f s after the soft deadline", loop.time() - deadlines.soft
            )
            began = loop.time()
            try:
                async with asyncio.timeout_at(invoke_by):
                    if self._warming is not None:  # shielded: the client is shared
                        await asyncio.shield(self._warming)
                    log.debug(
                        "Lambda client ready %.3f s after the soft deadline",
                        loop.time() - deadlines.soft,
                    )
                    client = await self._clients.get("lambda")
                    await invoke_self(
                        client, lambda_context.invoked_function_arn, event, token=token
                    )
            except TimeoutError:
                raise ContinuationError(
                    f"Lambda did not accept the invocation within {invoke_by - began:.2f} s"
                ) from None
            took = loop.time() - began
        except FenceLost as exc:
            log.info("stopping quietly: %s", exc)
            return InvocationResult(outcome="fence-lost")
        except TimeoutError:
            raise JournalError("recording the hand-over outlasted the invocation") from None
        except ContinuationError as exc:
            reason = f"could not continue in a new invocation: {exc}"
            return await self._outbox.fail(request, op, reason, deadlines, physical_id=physical_id)
        self._probe.point("after-handover-invoked")
        log.info("handed over to a new invocation (invoke took %.3f s)", took)
        return InvocationResult(outcome="handed-over")
