"""One invocation, end to end: parse, claim, replay and run, then answer or hand over.

::

    event ─> parse ─> claim ──────────────────┬─ live duplicate / stale attempt: return
                        │                     └─ finished: re-post the recorded response
                        v
             load journal ─> run handler under the deadlines (heartbeat renews the lease)
                        │
        ┌───────────────┼─────────────────────────────┐
     result         soft deadline                operation deadline
        │               │                              │
     outbox ─> PUT   hand-over token ─> invoke self   outbox (FAILED) ─> PUT
     ─> posted          (invoke fails: FAILED)

A hand-over's successor sends its journal Query first and its claim alongside (it has a
journal to replay); any other invocation loads the journal after its claim, and a fresh
operation loads none.

``invoke`` returns normally when the stack is answered, handed on, or held by another live
invocation, or when the outcome is terminal; it raises only when Lambda's retry is the way to
recover (DESIGN.md invariant 1).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from ._clients import ClientPool
from ._completeness import note_unvisited
from ._context import Context
from ._continuation import split_handover
from ._deadline import Deadlines, operation_deadline
from ._errors import (
    Continued,
    Failed,
    FenceLost,
    HandOver,
    JournalError,
    JournalTampered,
    OperationBusy,
    RequestError,
)
from ._execution import Execution, Progress, finished
from ._follow import follow, not_claimed
from ._handoff import HandOff
from ._lease import Lease
from ._logging import current_fields, log_fields
from ._outbox import Outbox
from ._outcomes import (
    InvocationResult,
    failure_reason,
    gave_up_reason,
    lambda_failure_record,
    op_id_for,
    success_response,
)
from ._probe import NO_PROBE, Probe
from ._protocol import Request
from ._provider import Provider, route
from ._redact import Redactor, masking
from ._resource import Handler, Resource
from ._responder import DeliveryPolicy
from ._steps import Executor
from ._tasks import discard
from ._threads import busy_threads
from ._urls import url_secrets
from ._watchdog import LoopWatchdog
from .journal import _payload
from .journal._events import loop_blocked_event, replayed_event
from .journal._schema import (
    OperationItem,
    OperationStatus,
    StepItem,
    op_id_of,
)
from .journal.claims import (
    LEASE_SKEW,
    Claim,
    Claimant,
    ClaimOutcome,
    ClaimRequest,
    owner_id,
)

if TYPE_CHECKING:
    from ._refusal import Refusal
    from .journal.protocol import RuntimeJournal, StepJournal

log = logging.getLogger("asynccfn.runtime")


class RuntimeConfig(NamedTuple):
    resource: Resource | Provider
    journal: str | None
    reserve: float | None
    timeout: float
    lease: float
    retention: float
    delivery: DeliveryPolicy | None = None
    max_stalled: int = 5
    max_invocations: int = 100
    lease_skew: float = LEASE_SKEW
    response_hosts: frozenset[str] = frozenset()
    secrets: _payload.Secrets = _payload.Secrets()
    probe: Probe = NO_PROBE  # tests replace it (crash points, forced hand-over)
    refusal: Refusal | None = None  # inside Lambda, a resource without every answer: refuse all


class Runtime:
    """Runs invocations of one Resource; one per container, reused by warm invocations.

    ``journal`` replaces the one ``config.journal`` names (tests run on a
    :class:`~asynccfn.journal.memory.MemoryJournal`).
    """

    def __init__(self, config: RuntimeConfig, *, journal: RuntimeJournal | None = None) -> None:
        self.config = config
        self.clients = ClientPool()
        self._allowed_hosts = config.response_hosts
        self._stray: asyncio.Task[Any] | None = None
        self._probe = config.probe
        self.journal: RuntimeJournal = journal or self._journal_for(config)
        self.outbox = Outbox(
            journal=self.journal,
            allowed_hosts=self._allowed_hosts,
            delivery=config.delivery,
            probe=config.probe,
        )
        self.handoff = HandOff(
            journal=self.journal,
            clients=self.clients,
            outbox=self.outbox,
            max_stalled=config.max_stalled,
            probe=config.probe,
        )

    def _journal_for(self, config: RuntimeConfig) -> RuntimeJournal:
        if config.journal:
            from .journal.store import JournalStore

            return JournalStore(
                config.journal,
                lambda: self.clients.own("dynamodb"),
                retention=config.retention,
                lease_skew=config.lease_skew,
            )
        from .journal.ephemeral import EphemeralJournal  # journal=None only

        return EphemeralJournal()

    async def prepare(self) -> None:
        """Create the journal's and the payload codec's clients ahead of the first invocation
        (the hand-over's is made once an operation runs long enough to need it:
        :meth:`HandOff.warm_later`).

        Raises:
            whatever creating an aiobotocore client raises (e.g. no region).
        """
        if self.journal.durable:
            ready = [self.clients.own("dynamodb")]
            # A codec may prepare its own (KmsCodec: the KMS client); user codecs need not.
            prepare = getattr(self.config.secrets.codec, "prepare", None)
            if prepare is not None:
                ready.append(prepare(self.clients))
            await asyncio.gather(*ready)

    def work_outlives_invocation(self) -> bool:
        """Whether a step's worker thread, or a handler that ignored cancellation, is still
        running although the durable invocation is over (DESIGN.md invariant 6)."""
        stray = self._stray is not None and not self._stray.done()
        return self.journal.durable and (busy_threads() > 0 or stray)

    async def close(self) -> None:
        await self.handoff.close()
        await self.outbox.close()
        await self.clients.close()

    # -- the invocation --------------------------------------------------------------------

    async def invoke(self, event: object, lambda_context: Any) -> InvocationResult:
        """Handle one Lambda invocation.

        Raises:
            JournalError: DynamoDB is unreachable (Lambda's retry runs the operation again).
            DeliveryError: the response PUT failed after its retries (likewise).
        """
        started = asyncio.get_running_loop().time()
        deadlines = Deadlines.for_invocation(
            remaining_ms=lambda_context.get_remaining_time_in_millis(),
            reserve=self.config.reserve,
        )
        event, token = split_handover(event)
        lambda_request = str(getattr(lambda_context, "aws_request_id", "") or "")
        failure_record = lambda_failure_record(event)
        if failure_record is not None:
            # Lambda gave up on that invocation: claim as it, which succeeds only once its
            # lease has run out, or with the hand-over token it carried; a record never
            # supersedes another attempt (a forged record naming a live holder gets nothing).
            event, token = split_handover(failure_record["requestPayload"])
            lambda_request = str(failure_record["requestContext"].get("requestId") or "")
        claimant = Claimant(
            owner=owner_id(lambda_request or secrets.token_hex(8), secrets.token_hex(8)),
            token=token,
            gave_up=failure_record is not None,
        )
        try:
            request = _parse(event, self._allowed_hosts)
        except RequestError as exc:
            return await self.outbox.answer_malformed(exc, deadlines)
        fields = {
            "requestType": request.request_type.value,
            "logicalResourceId": request.logical_id,
            "cfnRequestId": request.request_id,
            "stackId": request.stack_id,
        }
        # The ResponseURL is masked in whatever is logged, journaled or answered meanwhile, a
        # user's error that repeats it included.
        with log_fields(**fields), masking(Redactor(url_secrets(request.response_url))):
            preload = token is not None and failure_record is None
            claim, steps = await self._claim(request, claimant, preload=preload)
            if claim.outcome is ClaimOutcome.BUSY:
                # An on-failure record only answers once it holds the operation, so it may
                # wait longer than an invocation that still has work to do.
                wait_until = deadlines.soft
                if failure_record is not None:
                    wait_until = max(wait_until, deadlines.hard - _FAILED_ANSWER_TIME)
                claim = await self._claim_after_lease(
                    claim, request, claimant, deadlines, wait_until
                )
            if claim.outcome is not ClaimOutcome.CLAIMED:
                return await not_claimed(
                    claim,
                    request,
                    journal=self.journal,
                    outbox=self.outbox,
                    payloads=self._payloads(op_id_of(claim.operation)),
                    deadlines=deadlines,
                )
            op = claim.operation
            self._probe.point("after-claim")
            with log_fields(invocation=op.invocations, operation=op_id_of(op)):
                if failure_record is not None:
                    reason = gave_up_reason(failure_record)
                    return await self.outbox.fail(
                        request, op, reason, deadlines, physical_id=op.physical_id
                    )
                if op.invocations > self.config.max_invocations:
                    reason = (
                        f"the operation did not finish in {self.config.max_invocations} "
                        "invocations (lambda_entry(max_invocations=...)); it is failed so that "
                        "no chain of hand-overs runs without end"
                    )
                    return await self.outbox.fail(
                        request, op, reason, deadlines, physical_id=op.physical_id
                    )
                result = await self._run(
                    request, claim, steps, event, lambda_context, started, deadlines
                )
                if result.outcome == "fence-lost":  # a new attempt may have taken over
                    return await follow(
                        request,
                        op_id_of(op),
                        journal=self.journal,
                        outbox=self.outbox,
                        payloads=self._payloads(op_id_of(op)),
                        deadlines=deadlines,
                    )
                return result

    async def _claim(
        self, request: Request, claimant: Claimant, *, preload: bool
    ) -> tuple[Claim, asyncio.Future[dict[str, StepItem]] | None]:
        """Claim the operation; with ``preload``, Query its journal alongside the claim.

        A hand-over's successor has a journal to replay, so its Query need not wait for the
        claim. A step written between that Query and the claim (by a holder that lost the
        operation) is met by the executor's conditional write, as a late write always is.
        """
        steps = None
        if preload:  # the Query is the longer request: sent first, the claim prepared meanwhile
            steps = asyncio.ensure_future(self.journal.load_steps(op_id_for(request)))
            await asyncio.sleep(0)
        try:
            claim = await self.journal.claim(self._claim_request(request, claimant))
        except BaseException:
            if steps is not None:
                discard(steps)
            raise
        if steps is not None and (claim.outcome is not ClaimOutcome.CLAIMED or claim.fresh):
            discard(steps)
            steps = None
        return claim, steps

    async def _claim_after_lease(
        self,
        busy: Claim,
        request: Request,
        claimant: Claimant,
        deadlines: Deadlines,
        wait_until: float,
    ) -> Claim:
        """The operation is held under a lease this invocation may take over only once it has
        run out. Wait for that when it comes before ``wait_until`` (loop time) and claim again;
        a holder that renewed meanwhile is alive, and answers itself.

        Raises:
            OperationBusy: the lease outlasts this invocation, a new attempt still waits, or
                the last attempt's answer is still to be delivered (Lambda's retry claims
                later).
            JournalError: DynamoDB failed.
        """
        op = busy.operation
        if op.status != OperationStatus.RUNNING.value:  # claims.answer_owed
            raise OperationBusy(
                "the operation's last attempt has a recorded answer still to deliver (Lambda's "
                "retry of that attempt re-posts it); Lambda's retry of this one claims after"
            )
        new_attempt = op.attempt != request.attempt_digest
        ends = (op.lease_until or 0.0) + self.config.lease_skew + 0.05
        wake = deadlines.epoch_to_loop(ends)
        if wake < wait_until:
            log.info(
                "the operation's lease is live: waiting %.1f s for it to run out",
                max(0.0, ends - time.time()),
            )
            await asyncio.sleep(max(0.0, wake - asyncio.get_running_loop().time()))
            claim, _ = await self._claim(request, claimant, preload=False)
            if claim.outcome is not ClaimOutcome.BUSY:
                return claim
            if not new_attempt and (claim.operation.lease_until or 0) > (op.lease_until or 0):
                return Claim(outcome=ClaimOutcome.LIVE_DUPLICATE, operation=claim.operation)
        raise OperationBusy(
            "another invocation holds the operation under a live lease"
            + (" and this new attempt cannot prove it is newer" if new_attempt else "")
            + "; Lambda's retry will claim it once the lease has run out"
        )

    def _claim_request(self, request: Request, claimant: Claimant) -> ClaimRequest:
        now = time.time()
        issued = _clamped_issue_time(request, now, self.config.lease_skew)
        # Counted from the first claim as well: an event's own dates never stretch it.
        deadline = min(
            operation_deadline(
                issued=issued,
                timeout=self.config.timeout,
                service_timeout=request.service_timeout,
                url_expires_at=request.url_expires_at,
            ),
            now + self.config.timeout,
        )
        return ClaimRequest.for_request(
            request,
            owner=claimant.owner,
            token=claimant.token,
            lease=self.config.lease,
            issued_at=issued,
            deadline=deadline,
            gave_up=claimant.gave_up,
        )

    async def _run(
        self,
        request: Request,
        claim: Claim,
        steps: asyncio.Future[dict[str, StepItem]] | None,
        event: object,
        lambda_context: Any,
        started: float,
        base: Deadlines,
    ) -> InvocationResult:
        op = claim.operation
        op_id = op_id_of(op)
        loop = asyncio.get_running_loop()
        deadlines = base.bounded_by(op.deadline)
        if time.time() >= op.deadline:
            if steps is not None:
                discard(steps)
            return await self.outbox.timed_out(request, op, deadlines, physical_id=op.physical_id)
        if steps is not None:
            journal = await steps
        else:
            journal = {} if claim.fresh else await self.journal.load_steps(op_id)
        if journal:
            log.info("replaying %d journaled steps", len(journal))
            # Written with the operation item's next write (hand-over or response), not alone.
            op.events = [*(op.events or []), replayed_event(len(journal), op.invocations)]
        self._probe.point("after-replay-load")
        store: StepJournal = self.journal
        refusal = self.config.refusal
        if refusal is not None:
            routed = refusal.route(request)
        else:
            routed = route(self.config.resource, request)  # typed properties converted here
        payloads = self._payloads(op_id)
        if payloads is not None:  # the executor sees the journal in the clear
            try:
                await payloads.open_steps(journal)
                await _payload.open_operation(op, payloads)
            except JournalTampered as exc:  # no retry can change it
                return await self.outbox.fail(
                    request, op, str(exc), deadlines, physical_id=op.physical_id
                )
            _payload.current.set(payloads)  # for the outbox and the hand-over
            store = _payload.SealedSteps(self.journal, payloads)
        lease: Lease | None = None
        if self.journal.durable:
            lease = Lease(
                self.journal,
                op_id=op_id,
                fence=op.fence,
                length=self.config.lease,
                skew=self.config.lease_skew,
                started=started,
            )
        execution = Execution(
            store=store,
            op_id=op_id,
            op_attempt=op.attempt_no,
            fence=op.fence,
            invocation=op.invocations,
            deadlines=deadlines,
            # When the invocation began, not now: what claiming and loading the journal took
            # (a cold client) must not make a satisfiable ``needs`` look impossible.
            started=started,
            handover_at=frozenset(filter(None, (op.handover_at or "").split(","))),
            lease=lease,
            errors=routed.error_types,
            keeps_secrets=payloads is not None or not self.journal.durable,
            secret_state=self.config.secrets.state_keys,
            probe=self._probe,
        )
        progress = Progress(
            journal=journal,
            handover_state=op.handover_state,
            physical_id=op.physical_id or request.physical_id,
            recorded_physical_id=op.physical_id or request.physical_id,
            replaying=bool(journal),
            to_replay=sum(1 for step in journal.values() if finished(step, op.attempt_no)),
        )
        executor = Executor(execution, progress)
        ctx = Context(
            request=routed.request,
            executor=executor,
            clients=self.clients,
            invocation=op.invocations,
            lambda_context=lambda_context,
        )
        watchdog = LoopWatchdog(extra=current_fields())  # says when sync work blocks the loop
        watchdog.start()
        warming = self.handoff.warm_later(deadlines.soft)
        try:
            outcome = await self._supervise(
                routed.handler, routed.request, ctx, executor, op, deadlines
            )
        finally:
            watchdog.stop()
            if warming is not None:
                warming.cancel()
        if watchdog.blocked is not None:  # in the timeline too, written with the next write
            op.events = [*(op.events or []), loop_blocked_event(*watchdog.blocked, op.invocations)]
        if isinstance(outcome, FenceLost):
            log.info("stopping quietly: %s", outcome)
            return InvocationResult(outcome="fence-lost")
        if isinstance(outcome, JournalError) and not isinstance(outcome, JournalTampered):
            # The journal, not the handler, failed (invariant 1): no FAILED answer; Lambda's
            # retry continues the operation from what was recorded.
            log.error("the journal failed, Lambda's retry will continue: %s", outcome)
            await self._release(op, deadlines)
            raise outcome
        if isinstance(outcome, Continued):
            # The handler invoked the function again itself, its state in the payload (the
            # journal-less cfn-lambda-handler layer): that invocation answers.
            log.info("continued in a new invocation by the handler")
            return InvocationResult(outcome="continued", exit_process=busy_threads() > 0)
        if isinstance(outcome, HandOver | asyncio.CancelledError):
            if deadlines.operation_bound and loop.time() >= deadlines.operation:
                return await self.outbox.timed_out(
                    request, op, deadlines, physical_id=ctx.physical_id
                )
            return await self.handoff.hand_over(
                request,
                op,
                event,
                executor,
                deadlines,
                lambda_context,
                physical_id=ctx.physical_id,
                wake_at=outcome.wake_at if isinstance(outcome, HandOver) else None,
            )
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Failed):  # an expected failure needs no traceback
                log.error("the handler raised %s", type(outcome).__name__, exc_info=outcome)
            reason = failure_reason(outcome, lambda_context)
            return await self.outbox.fail(
                request, op, reason, deadlines, physical_id=ctx.physical_id
            )
        note_unvisited(executor, op)  # a step taken before and not now: said with the answer
        return await self.outbox.answer(
            request,
            op,
            success_response(request, ctx, outcome, handler=routed.handler),
            deadlines,
            OperationStatus.SUCCEEDED,
        )

    async def _release(self, op: OperationItem, deadlines: Deadlines) -> None:
        """Best effort: give the lease up before failing, so that Lambda's retry (which carries
        this invocation's request id) need not wait for it to run out."""
        try:
            async with asyncio.timeout_at(deadlines.hard):
                await self.journal.release_lease(op_id_of(op), op.fence)
        except (JournalError, TimeoutError) as exc:
            log.info("the lease stays until it runs out: %s", exc)

    def _payloads(self, op_id: str) -> _payload.Payloads | None:
        """This invocation's payload encryption for ``op_id`` (None: no codec, or nothing
        is journaled)."""
        secrets = self.config.secrets
        if secrets.codec is None or not self.journal.durable:
            return None
        session = secrets.codec.session(self.clients, context=op_id)
        return _payload.Payloads(session, seal_state=bool(secrets.state_keys))

    async def _supervise(
        self,
        handler: Handler,
        request: Request,
        ctx: Context,
        executor: Executor,
        op: OperationItem,
        deadlines: Deadlines,
    ) -> Any:
        """Run the handler until it ends or the soft deadline; return its result or the
        exception that ended it (HandOver/CancelledError when the deadline did)."""
        task = asyncio.create_task(executor.run(handler(request, ctx)))
        lease = executor.x.lease
        heartbeat = asyncio.create_task(lease.heartbeat(task)) if lease is not None else None
        try:
            timeout = max(0.0, deadlines.soft - asyncio.get_running_loop().time())
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                executor.progress.stopping = True
                task.cancel()
                await asyncio.wait({task}, timeout=deadlines.remaining_hard())
        finally:
            lost = await _stopped(heartbeat)
        if not task.done():
            log.error("the handler ignored cancellation; answering without it")
            self._stray = task
            return lost or asyncio.CancelledError()
        if task.cancelled():
            return lost or asyncio.CancelledError()
        error = task.exception()
        if lost is not None and isinstance(error, asyncio.CancelledError | HandOver):
            return lost
        # The handler's own outcome stands, even beside a heartbeat that failed meanwhile: the
        # fenced outbox write decides whether this invocation may still answer.
        return error if error is not None else task.result()


async def _stopped(heartbeat: asyncio.Task[None] | None) -> JournalError | None:
    """Stop the heartbeat; the error it ended with, when it found the lease lost."""
    if heartbeat is None:
        return None
    heartbeat.cancel()
    try:
        await heartbeat
    except JournalError as exc:
        return exc
    except asyncio.CancelledError:
        pass
    return None


_FAILED_ANSWER_TIME = 1.0  # seconds kept for recording and PUTting a FAILED answer after a wait
_URL_LIFETIME = 7200.0  # what CloudFormation signs its ResponseURLs for, when a URL says nothing


def _clamped_issue_time(request: Request, now: float, skew: float) -> float:
    """When CloudFormation issued the request, as the URL's X-Amz-Date says, but never before
    the URL's own lifetime ago nor after now (with the clock ``skew`` the function tolerates,
    ``lambda_entry(lease_skew=...)``): a crafted date can neither
    stretch the operation's deadline nor make an attempt look newer than it can be."""
    if request.issued_at is None:
        return now
    lifetime = _URL_LIFETIME
    if request.url_expires_at is not None:
        lifetime = min(_URL_LIFETIME, max(0.0, request.url_expires_at - request.issued_at))
    return min(max(request.issued_at, now - lifetime), now + skew)


def _parse(event: object, allowed_hosts: frozenset[str]) -> Request:
    from ._protocol import parse_request

    return parse_request(event, allowed_hosts=allowed_hosts)
