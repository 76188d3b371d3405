"""How an invocation ends: the answer (outbox, PUT, posted mark), a FAILED answer, the
operation's timeout, the hand-over to a new invocation, and the answer to a malformed event.

A mixin of :class:`asynccfn._runtime.Runtime`, which owns the state used here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _faults
from ._continuation import invoke_self
from ._errors import (
    ContinuationError,
    DeliveryError,
    FenceLost,
    JournalError,
    OperationTimeout,
    RequestError,
    ResponseUnreachable,
    ResponseURLRefused,
    UndeliverableResponse,
)
from ._outcomes import failed_response
from ._protocol import (
    Request,
    Response,
    Status,
    build_body,
    failed_create_physical_id,
    failure_physical_id,
    masked_body,
)
from ._responder import DeliveryPolicy
from .journal._payload import sealed_handover_state, sealed_response
from .journal.models import OperationEntry, OperationStatus, operation_id
from .journal.store import JournalStore

if TYPE_CHECKING:
    from ._clients import ClientPool
    from ._context import Context
    from ._deadline import Deadlines
    from ._runtime import RuntimeConfig
    from ._steps import Executor
    from .journal.ephemeral import EphemeralJournal

log = logging.getLogger("asynccfn.runtime")

_ANSWER_TIME = 0.3  # seconds kept for recording and PUTting a FAILED answer


@dataclass(frozen=True, kw_only=True, slots=True)
class InvocationResult:
    """What one invocation did, for the entry point (and tests)."""

    outcome: str
    exit_process: bool = False


def op_id_for(request: Request) -> str:
    """The journal's operation id of ``request``."""
    return operation_id(request.stack_id, request.logical_id, request.request_id)


class Endings:
    """The endings of an invocation (see the module docstring)."""

    config: RuntimeConfig
    clients: ClientPool
    journal: JournalStore | EphemeralJournal
    _allowed_hosts: frozenset[str]
    _responder: Any
    _warming: asyncio.Future[None] | None

    @property
    def responder(self) -> Any:
        if self._responder is None:
            from ._responder import Responder  # aiohttp: imported on first use

            policy = self.config.delivery or DeliveryPolicy()
            self._responder = Responder(allowed_hosts=self._allowed_hosts, policy=policy)
        return self._responder

    async def _answer(
        self,
        request: Request,
        op: OperationEntry,
        response: Response,
        deadlines: Deadlines,
        status: OperationStatus,
    ) -> InvocationResult:
        """The outbox: record the response, PUT it, mark it posted."""
        body = build_body(
            response,
            request.echo,
            fallback_physical_id=failure_physical_id(request, op.physical_id),
        )
        # build_body answers an invalid success (oversize Data, ...) honestly as FAILED.
        sent = json.loads(body)
        if sent["Status"] == Status.FAILED.value and status is OperationStatus.SUCCEEDED:
            status = OperationStatus.FAILED
        try:
            async with asyncio.timeout_at(deadlines.hard):
                await self.journal.record_response(
                    op,
                    body=await sealed_response(body.decode(), no_echo=sent.get("NoEcho") is True),
                    response_status=sent["Status"],
                    status=status,
                    physical_id=sent["PhysicalResourceId"],
                    reason=sent.get("Reason"),
                )
        except FenceLost as exc:
            log.info("stopping quietly: %s", exc)
            return InvocationResult(outcome="fence-lost")
        except TimeoutError:
            raise JournalError("recording the response outlasted the invocation") from None
        log.info("answering %s", sent["Status"])
        if _faults.ACTIVE:
            _faults.crash_point("after-response-recorded")
        await self._deliver(request, body, deadlines)
        return InvocationResult(outcome=sent["Status"])

    async def _fail(
        self,
        request: Request,
        op: OperationEntry,
        reason: str,
        deadlines: Deadlines,
        *,
        ctx: Context | None = None,
        status: OperationStatus = OperationStatus.FAILED,
    ) -> InvocationResult:
        """Answer FAILED for ``reason`` (logged once), through the outbox."""
        log.error("failing the operation: %s", reason)
        # What the handler set, in this invocation or (recorded at hand-over) an earlier one.
        physical_id = ctx.physical_id if ctx is not None else op.physical_id
        response = failed_response(request, physical_id, reason)
        return await self._answer(request, op, response, deadlines, status)

    async def _deliver(self, request: Request, body: bytes, deadlines: Deadlines) -> None:
        """PUT the recorded body. Transient failure raises (Lambda retries, and the retry
        re-posts the same recorded response); a refusal for good is recorded."""
        op_id = op_id_for(request)
        try:
            await self.responder.put(request.response_url, body, deadline=deadlines.hard)
        except (UndeliverableResponse, ResponseURLRefused) as exc:
            log.error("response undeliverable: %s", exc)
            await self.journal.mark_posted(
                op_id, request.attempt_digest, undeliverable=str(exc), kept=masked_body(body)
            )
            return
        except DeliveryError as exc:
            log.error("response not delivered yet, Lambda's retry will re-post it: %s", exc)
            if isinstance(exc, ResponseUnreachable):  # say why in `asynccfn journal show`
                await self.journal.note_delivery(op_id, request.attempt_digest, str(exc))
            raise
        if _faults.ACTIVE:
            _faults.crash_point("after-response-put")
        await self.journal.mark_posted(op_id, request.attempt_digest, kept=masked_body(body))
        if _faults.ACTIVE:
            _faults.crash_point("after-response-marked")
        log.info("response posted")

    async def _timed_out(
        self, request: Request, op: OperationEntry, deadlines: Deadlines, ctx: Context | None
    ) -> InvocationResult:
        elapsed = time.time() - op.issued_at
        reason = str(
            OperationTimeout(
                f"the operation did not finish within its deadline: {elapsed:.0f} s since "
                f"CloudFormation issued the request, over {op.invocations} invocation(s)"
            )
        )
        return await self._fail(
            request, op, reason, deadlines, ctx=ctx, status=OperationStatus.TIMED_OUT
        )

    async def _hand_over(
        self,
        request: Request,
        op: OperationEntry,
        event: object,
        executor: Executor,
        ctx: Context,
        deadlines: Deadlines,
        lambda_context: Any,
    ) -> InvocationResult:
        ctx_state = executor.state_json()
        ctx_physical_id = ctx.physical_id
        if not self.journal.durable:
            reason = (
                "the handler ran out of time: the Lambda deadline came before it finished "
                "(set lambda_entry(journal=...) to continue in a new invocation)"
            )
            return await self._fail(request, op, reason, deadlines, ctx=ctx)
        stalled = 0 if executor.x.progressed else (op.stalled or 0) + 1
        if stalled >= self.config.max_stalled:
            reason = (
                f"no progress in {stalled} invocations in a row: the work at step position "
                f"{executor.x.current} is cut off by the deadline each time; give the function "
                "a longer timeout or split the step"
            )
            return await self._fail(request, op, reason, deadlines, ctx=ctx)
        token = secrets.token_hex(16)
        assert isinstance(self.journal, JournalStore)
        assert isinstance(event, Mapping)
        try:
            async with asyncio.timeout_at(deadlines.hard):
                await self.journal.record_handover(
                    op,
                    token=token,
                    state=await sealed_handover_state(ctx_state),
                    positions=sorted(executor.x.interrupted_at),
                    physical_id=ctx_physical_id,
                    wake_at=None,
                    stalled=stalled,
                    note="handed over",
                )
            if _faults.ACTIVE:
                _faults.crash_point("after-handover-recorded")
            # The invoke and its retries may use what is left, less the time a FAILED answer
            # needs should Lambda refuse (a journal write and a PUT).
            invoke_by = deadlines.hard - min(_ANSWER_TIME, deadlines.remaining_hard() / 2)
            loop = asyncio.get_running_loop()
            log.debug(
                "hand-over recorded %.3f s after the soft deadline", loop.time() - deadlines.soft
            )
            if self._warming is not None:
                await self._warming
            began = loop.time()
            log.debug("Lambda client ready %.3f s after the soft deadline", began - deadlines.soft)
            try:
                async with asyncio.timeout_at(invoke_by):
                    client = await self.clients.get("lambda")
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
            return await self._fail(request, op, reason, deadlines, ctx=ctx)
        if _faults.ACTIVE:
            _faults.crash_point("after-handover-invoked")
        log.info("handed over to a new invocation (invoke took %.3f s)", took)
        return InvocationResult(outcome="handed-over")

    async def _answer_malformed(self, exc: RequestError, deadlines: Deadlines) -> InvocationResult:
        if exc.echo is None or exc.response_url is None:
            log.error("malformed request, no response can be sent: %s", exc.reason)
            return InvocationResult(outcome="malformed-unanswerable")
        log.error("malformed request, answering FAILED: %s", exc.reason)
        # The failed-create marker: rollback's Delete of it then succeeds without user code.
        marker = failed_create_physical_id(exc.echo)
        body = build_body(
            Response(status=Status.FAILED, physical_id=marker, reason=exc.reason), exc.echo
        )
        try:
            await self.responder.put(exc.response_url, body, deadline=deadlines.hard)
        except (UndeliverableResponse, ResponseURLRefused) as refused:
            log.error("response undeliverable: %s", refused)
            return InvocationResult(outcome="malformed-undeliverable")
        return InvocationResult(outcome="malformed-answered")
