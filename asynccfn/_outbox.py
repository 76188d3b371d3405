"""The outbox (DESIGN.md invariant 8): record the response, PUT it, mark it posted.

::

    response ─> body ─> record (fenced; the lease released) ─> PUT ─> mark posted
                              │                                 │
                        fence lost: stop quietly     refused for good: mark undeliverable
                                                     transient: raise (Lambda's retry
                                                     re-posts the recorded body)

Also the FAILED answers (a reason, the operation's timeout) and the answer to a malformed
event, which has no operation to record it in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ._errors import (
    DeliveryError,
    FenceLost,
    JournalError,
    OperationTimeout,
    RequestError,
    ResponseUnreachable,
    ResponseURLRefused,
    UndeliverableResponse,
)
from ._outcomes import InvocationResult, failed_response, op_id_for
from ._protocol import (
    Request,
    Response,
    Status,
    failed_create_physical_id,
    failure_physical_id,
    masked_body,
)
from ._response import build_body, built_body
from .journal._payload import sealed_response
from .journal._schema import OperationItem, OperationStatus

if TYPE_CHECKING:
    from ._deadline import Deadlines
    from ._probe import Probe
    from ._responder import DeliveryPolicy, Responder
    from .journal.protocol import RuntimeJournal

log = logging.getLogger("asynccfn.runtime")


class Outbox:
    """Answers the operations of one runtime through ``journal``; PUTs to ``allowed_hosts``
    (besides CloudFormation's response buckets) as ``delivery`` retries."""

    __slots__ = ("_allowed_hosts", "_delivery", "_journal", "_probe", "_responder")

    def __init__(
        self,
        *,
        journal: RuntimeJournal,
        allowed_hosts: frozenset[str],
        delivery: DeliveryPolicy | None,
        probe: Probe,
    ) -> None:
        self._journal = journal
        self._allowed_hosts = allowed_hosts
        self._delivery = delivery
        self._probe = probe
        self._responder: Responder | None = None

    @property
    def responder(self) -> Responder:
        if self._responder is None:
            from ._responder import DeliveryPolicy, Responder  # aiohttp: on first use

            policy = self._delivery or DeliveryPolicy()
            self._responder = Responder(allowed_hosts=self._allowed_hosts, policy=policy)
        return self._responder

    async def close(self) -> None:
        if self._responder is not None:
            await self._responder.close()

    async def answer(
        self,
        request: Request,
        op: OperationItem,
        response: Response,
        deadlines: Deadlines,
        status: OperationStatus,
    ) -> InvocationResult:
        """Record the response, PUT it, mark it posted.

        Raises:
            JournalError: recording failed or outlasted the invocation.
            DeliveryError: the PUT failed after its retries (Lambda's retry re-posts).
        """
        sent = built_body(
            response,
            request.echo,
            fallback_physical_id=failure_physical_id(request, op.physical_id),
        )
        # built_body answers an invalid success (oversize Data, ...) honestly as FAILED.
        if sent.status is Status.FAILED and status is OperationStatus.SUCCEEDED:
            status = OperationStatus.FAILED
        try:
            async with asyncio.timeout_at(deadlines.hard):
                await self._journal.record_response(
                    op,
                    body=await sealed_response(sent.body.decode(), no_echo=sent.no_echo),
                    response_status=sent.status.value,
                    status=status,
                    physical_id=sent.physical_id,
                    reason=sent.reason,
                )
        except FenceLost as exc:
            log.info("stopping quietly: %s", exc)
            return InvocationResult(outcome="fence-lost")
        except TimeoutError:
            raise JournalError("recording the response outlasted the invocation") from None
        log.info("answering %s", sent.status.value)
        self._probe.point("after-response-recorded")
        await self.deliver(request, sent.body, deadlines)
        return InvocationResult(outcome=sent.status.value)

    async def fail(
        self,
        request: Request,
        op: OperationItem,
        reason: str,
        deadlines: Deadlines,
        *,
        physical_id: str | None,
        status: OperationStatus = OperationStatus.FAILED,
    ) -> InvocationResult:
        """Answer FAILED for ``reason`` (logged once), reporting ``physical_id`` as
        invariant 12 asks.

        Raises:
            JournalError, DeliveryError: as :meth:`answer`.
        """
        log.error("failing the operation: %s", reason)
        response = failed_response(request, physical_id, reason)
        return await self.answer(request, op, response, deadlines, status)

    async def timed_out(
        self,
        request: Request,
        op: OperationItem,
        deadlines: Deadlines,
        *,
        physical_id: str | None,
    ) -> InvocationResult:
        """Answer FAILED (TIMED_OUT): the operation's deadline passed.

        Raises:
            JournalError, DeliveryError: as :meth:`answer`.
        """
        elapsed = time.time() - op.issued_at
        reason = str(
            OperationTimeout(
                f"the operation did not finish within its deadline: {elapsed:.0f} s since "
                f"CloudFormation issued the request, over {op.invocations} invocation(s)"
            )
        )
        return await self.fail(
            request,
            op,
            reason,
            deadlines,
            physical_id=physical_id,
            status=OperationStatus.TIMED_OUT,
        )

    async def deliver(self, request: Request, body: bytes, deadlines: Deadlines) -> None:
        """PUT the recorded body and mark it posted; a refusal for good is recorded.

        Raises:
            DeliveryError: a transient failure outlasted the retries (Lambda's retry re-posts
                the same recorded response).
            JournalError: the posted mark could not be written.
        """
        op_id = op_id_for(request)
        try:
            await self.responder.put(request.response_url, body, deadline=deadlines.hard)
        except (UndeliverableResponse, ResponseURLRefused) as exc:
            log.error("response undeliverable: %s", exc)
            await self._mark_posted(
                request, deadlines, undeliverable=str(exc), kept=masked_body(body)
            )
            return
        except DeliveryError as exc:
            log.error("response not delivered yet, Lambda's retry will re-post it: %s", exc)
            if isinstance(exc, ResponseUnreachable):  # say why in `asynccfn journal show`
                await self._journal.note_delivery(op_id, request.attempt_digest, str(exc))
            raise
        self._probe.point("after-response-put")
        await self._mark_posted(request, deadlines, kept=masked_body(body))
        self._probe.point("after-response-marked")
        # The responder said "delivered" at INFO; the journal's timeline shows the mark.
        log.debug("response marked posted in the journal")

    async def _mark_posted(
        self,
        request: Request,
        deadlines: Deadlines,
        *,
        kept: str | None,
        undeliverable: str | None = None,
    ) -> None:
        """Mark the attempt's response posted, within the invocation's time: past it,
        Lambda's retry of the invocation re-posts the same recorded body and marks it.

        Raises:
            JournalError: the mark failed or outlasted the invocation.
        """
        try:
            async with asyncio.timeout_at(deadlines.hard):
                await self._journal.mark_posted(
                    op_id_for(request),
                    request.attempt_digest,
                    undeliverable=undeliverable,
                    kept=kept,
                )
        except TimeoutError:
            raise JournalError("marking the response posted outlasted the invocation") from None

    async def answer_malformed(self, exc: RequestError, deadlines: Deadlines) -> InvocationResult:
        """Answer FAILED to an event that is no valid request, when it can be answered at all
        (nothing is journaled: there is no operation).

        Raises:
            DeliveryError: the PUT failed after its retries.
        """
        if exc.echo is None or exc.response_url is None:
            log.error("malformed request, no response can be sent: %s", exc.reason)
            return InvocationResult(outcome="malformed-unanswerable")
        log.error("malformed request, answering FAILED: %s", exc.reason)
        # An Update or Delete echoes its own valid id (another id would tell CloudFormation
        # the resource was replaced); else the failed-create marker, whose Delete in the
        # rollback then succeeds without user code.
        marker = failed_create_physical_id(exc.echo)
        failed = Response(
            status=Status.FAILED, physical_id=exc.physical_id or marker, reason=exc.reason
        )
        body = build_body(failed, exc.echo, fallback_physical_id=marker)
        try:
            await self.responder.put(exc.response_url, body, deadline=deadlines.hard)
        except (UndeliverableResponse, ResponseURLRefused) as refused:
            log.error("response undeliverable: %s", refused)
            return InvocationResult(outcome="malformed-undeliverable")
        return InvocationResult(outcome="malformed-answered")
