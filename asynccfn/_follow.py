"""What an invocation that does not hold its operation answers: a duplicate of a finished
attempt re-posts its recorded answer when it was never posted, and an invocation superseded
by a new attempt of its request still answers its own URL.

A new attempt (the same RequestId, another ResponseURL) takes over from a live holder when its
URL is a CloudFormation response-bucket URL naming the operation and issued later (DESIGN.md
invariant 9). Only CloudFormation can sign such a URL, but anyone who may invoke the function
can make one that looks so: the newer attempt then runs the operation and its PUT is refused,
while CloudFormation waits on the URL of the attempt it superseded, which nothing stores (it
is a credential). The superseded invocation still has that URL: it follows the operation
until an answer is recorded and PUTs that answer to its own URL as well. So does a later
delivery of the superseded attempt (Lambda's retry of a holder that crashed) when the newer
attempt asks for what it asked (the item's ``request_digest``). The body names the same
request, so either URL takes it; a genuine newer attempt loses nothing (CloudFormation no
longer reads the older URL).

::

    fence lost ─> the operation's attempt is still ours ─> stop quietly (a newer invocation
             │                                              of this attempt answers this URL)
             └─> another attempt holds it ─> poll until it is answered ─> PUT its answer here
                                                     └─ this invocation's deadline first:
                                                        raise OperationBusy (Lambda's retry
                                                        of this delivery follows on)

A new attempt never shortens the operation's deadline while a URL it superseded waits for its
answer (``journal.claims.new_attempt_deadline``), so what is copied is the work's own outcome.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ._errors import OperationBusy
from ._outcomes import InvocationResult
from ._response import masked_body
from .journal._schema import OperationStatus, op_id_of
from .journal.claims import Claim, ClaimOutcome

if TYPE_CHECKING:
    from ._deadline import Deadlines
    from ._outbox import Outbox
    from ._protocol import Request
    from .journal._payload import Payloads
    from .journal.models import OperationItem
    from .journal.protocol import RuntimeJournal

log = logging.getLogger("asynccfn.runtime")

POLL = 1.0  # seconds between two reads of the operation
_PUT_TIME = 1.0  # seconds kept, before the invocation's hard deadline, for the PUT


async def follow(
    request: Request,
    op_id: str,
    *,
    journal: RuntimeJournal,
    outbox: Outbox,
    payloads: Payloads | None,
    deadlines: Deadlines,
    otherwise: str = "fence-lost",
) -> InvocationResult:
    """Answer ``request``'s URL with the operation's answer once another attempt records it,
    if another attempt took the operation over; else stop quietly (the outcome ``otherwise``).

    Raises:
        OperationBusy: this invocation's time runs out before the other attempt answers: a
            normal return would leave the URL unanswered for good, while Lambda's retry of
            this delivery (a stale attempt still unanswered) follows on.
        JournalError: reading the operation failed.
        DeliveryError: the PUT failed after its retries.
    """
    loop = asyncio.get_running_loop()
    while True:
        op = await journal.load_operation(op_id)
        if op is None or op.attempt == request.attempt_digest:
            return InvocationResult(outcome=otherwise)
        if op.request_digest not in (None, request.request_digest):
            log.warning(
                "a new attempt of this request took the operation over asking for something "
                "else (other properties): its answer is not this attempt's, nor copied here"
            )
            return InvocationResult(outcome=otherwise)
        if op.status != OperationStatus.RUNNING.value and op.response:
            return await _copy_answer(request, op, outbox, payloads, deadlines, otherwise)
        if loop.time() + POLL > deadlines.hard - _PUT_TIME:
            raise OperationBusy(
                "a new attempt of this request took the operation over and has not answered "
                "before this invocation's deadline; Lambda's retry of this one follows on"
            )
        await asyncio.sleep(POLL)


async def not_claimed(
    claim: Claim,
    request: Request,
    *,
    journal: RuntimeJournal,
    outbox: Outbox,
    payloads: Payloads | None,
    deadlines: Deadlines,
) -> InvocationResult:
    """What ``request``'s invocation does when its claim was refused (``claim``).

    Raises:
        JournalError, DeliveryError: as :func:`follow`.
    """
    op = claim.operation
    if claim.outcome is ClaimOutcome.FINISHED and op.response and op.posted_at is None:
        log.info("duplicate of a finished attempt: re-posting its recorded response")
        await outbox.deliver(request, await _recorded(op, payloads), deadlines)
        return InvocationResult(outcome="re-posted")
    stale = claim.outcome is ClaimOutcome.STALE_ATTEMPT
    if stale and request.attempt_digest in (op.unanswered_attempts or []):
        # Its holder may have crashed unanswered before a look-alike newer attempt took over,
        # leaving this URL the only one CloudFormation reads: answer it as a superseded holder
        # does (an attempt answered before it was superseded is not answered again).
        log.info("a newer attempt of this request superseded it: following the operation")
        return await follow(
            request,
            op_id_of(op),
            journal=journal,
            outbox=outbox,
            payloads=payloads,
            deadlines=deadlines,
            otherwise=claim.outcome.value,
        )
    what = {
        ClaimOutcome.LIVE_DUPLICATE: "another invocation holds the operation",
        ClaimOutcome.FINISHED: "the attempt is already answered",
        ClaimOutcome.STALE_ATTEMPT: "a newer attempt of this request superseded it",
    }[claim.outcome]
    log.info("duplicate delivery ignored: %s", what)
    return InvocationResult(outcome=claim.outcome.value)


async def _recorded(op: OperationItem, payloads: Payloads | None) -> bytes:
    """The answer recorded in ``op``, opened when the payload codec sealed it."""
    if payloads is not None:
        from .journal._payload import open_operation

        await open_operation(op, payloads)
    return (op.response or "").encode()


async def _copy_answer(
    request: Request,
    op: OperationItem,
    outbox: Outbox,
    payloads: Payloads | None,
    deadlines: Deadlines,
    otherwise: str,
) -> InvocationResult:
    body = await _recorded(op, payloads)
    if _masked(body.decode()):
        log.warning(
            "a new attempt of this request answered it with NoEcho Data, which the journal "
            "keeps masked once posted: its answer is not copied to this attempt's URL"
        )
        return InvocationResult(outcome=otherwise)
    log.info("a new attempt of this request answered it: copying its answer to this URL too")
    # The posted mark names the other attempt: ``deliver``'s own mark is refused, as it should.
    await outbox.deliver(request, body, deadlines)
    return InvocationResult(outcome="followed")


def _masked(body: str) -> bool:
    """Whether ``body`` is a NoEcho answer as the journal keeps it once posted: masking it
    again changes nothing."""
    return masked_body(body) == body
