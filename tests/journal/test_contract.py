"""One contract, two journals: the DynamoDB store (on DynamoDB Local) and the memory journal.

Every test runs against both, so the memory journal the executor's and the lease's unit
tests run on behaves as the store does: claims and their outcomes, fenced writes, step slots
created once and advanced conditionally (a loser adopts the winner's item), the outbox's
posted mark and the order steps load in.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from asynccfn._clients import ClientPool
from asynccfn._errors import FenceLost, JournalError, PayloadTooLarge
from asynccfn.journal.claims import OWED_GRACE, Claim, ClaimOutcome, ClaimRequest, owner_id
from asynccfn.journal.memory import MemoryJournal
from asynccfn.journal.models import OperationStatus, StepItem, StepKind, StepStatus
from asynccfn.journal.protocol import RuntimeJournal
from asynccfn.journal.store import JournalStore
from tests.support import create_journal_table, run

RETENTION = 3600.0


@pytest.fixture(scope="module")
def _dynamodb_table(dynamodb_endpoint: str) -> Iterator[tuple[str, ClientPool]]:
    clients = ClientPool()
    yield create_journal_table(dynamodb_endpoint), clients
    run(clients.close())


@pytest.fixture(params=["memory", "dynamodb"])
def journal(request: pytest.FixtureRequest) -> RuntimeJournal:
    """A journal of each kind, with the same lease skew (2 s) and retention."""
    if request.param == "memory":
        return MemoryJournal(retention=RETENTION, lease_skew=2.0)
    endpoint = request.getfixturevalue("dynamodb_endpoint")
    table, clients = request.getfixturevalue("_dynamodb_table")

    async def client() -> Any:
        return await clients.get("dynamodb", endpoint_url=endpoint)

    return JournalStore(table, client, retention=RETENTION, lease_skew=2.0)


def claim_of(
    op_id: str,
    *,
    attempt: str = "attempt-1",
    lambda_request: str = "lambda-1",
    token: str | None = None,
    lease: float = 30.0,
    issued_at: float | None = None,
    from_cloudformation: bool = False,
    request_digest: str = "asked",
    deadline: float | None = None,
    gave_up: bool = False,
) -> ClaimRequest:
    """A claim by a new invocation (its own nonce) of Lambda request ``lambda_request``."""
    return ClaimRequest(
        op_id=op_id,
        stack_id="arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
        logical_id="Thing",
        request_id="request-1",
        resource_type="Custom::Thing",
        request_type="Create",
        attempt=attempt,
        request_digest=request_digest,
        owner=owner_id(lambda_request, uuid.uuid4().hex[:8]),
        token=token,
        from_cloudformation=from_cloudformation,
        lease=lease,
        issued_at=time.time() if issued_at is None else issued_at,
        deadline=time.time() + 3600 if deadline is None else deadline,
        invocation_note="claimed with hand-over token" if token else "claimed",
        gave_up=gave_up,
    )


def new_op() -> str:
    return uuid.uuid4().hex


def claim(journal: RuntimeJournal, req: ClaimRequest) -> Claim:
    result: Claim = run(journal.claim(req))
    return result


def respond(journal: RuntimeJournal, held: Claim, status: str = "SUCCESS") -> None:
    run(
        journal.record_response(
            held.operation,
            body=json.dumps({"Status": status}),
            response_status=status,
            status=OperationStatus.SUCCEEDED,
            physical_id="pid",
            reason=None,
        )
    )


def hand_over(journal: RuntimeJournal, held: Claim, token: str, **overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "token": token,
        "state": '{"n": 1}',
        "positions": ["0#2", "0#1"],
        "physical_id": "pid",
        "wake_at": None,
        "stalled": 0,
        "note": "handed over",
    }
    run(journal.record_handover(held.operation, **{**arguments, **overrides}))


def step(journal: RuntimeJournal, op_id: str, position: str, **fields: Any) -> StepItem:
    attrs: dict[str, Any] = {
        "name": "s",
        "kind": StepKind.STEP.value,
        "status": StepStatus.SUCCEEDED.value,
        "attempt": 1,
        "op_attempt": 1,
        "started_at": time.time(),
        "invocation": 1,
        "fence": 1,
        "result": '"ok"',
    }
    return journal.new_step(op_id, position, **{**attrs, **fields})


# -- claims -----------------------------------------------------------------------------------


def test_a_first_claim_creates_the_operation(journal: RuntimeJournal) -> None:
    op_id = new_op()
    req = claim_of(op_id)
    got = claim(journal, req)
    assert got.outcome is ClaimOutcome.CLAIMED and got.fresh
    op = got.operation
    assert (op.fence, op.invocations, op.attempt_no, op.owner) == (1, 1, 1, req.owner)
    assert op.status == OperationStatus.RUNNING.value and op.stalled == 0
    assert op.lease_until is not None and op.lease_until > time.time() + 20
    assert [e.what for e in op.events or []] == ["claimed"]
    assert journal.durable


def test_the_operation_item_reads_back_as_written_and_a_missing_one_as_none(
    journal: RuntimeJournal,
) -> None:
    op_id = new_op()
    assert run(journal.load_operation(op_id)) is None
    written = claim(journal, claim_of(op_id)).operation
    assert run(journal.load_operation(op_id)) == written


def test_a_claim_that_meets_its_own_effect_is_the_claim(journal: RuntimeJournal) -> None:
    """A retried claim whose first try took effect (its reply lost) finds its own owner."""
    op_id = new_op()
    req = claim_of(op_id)
    first = claim(journal, req)
    again = claim(journal, req)  # the same owner, nonce included: botocore's retry
    assert again.outcome is ClaimOutcome.CLAIMED
    assert again.operation.fence == first.operation.fence  # no second claim was made


def test_a_live_lease_turns_away_another_request_and_makes_its_own_retry_wait(
    journal: RuntimeJournal,
) -> None:
    op_id = new_op()
    held = claim(journal, claim_of(op_id, lambda_request="lambda-1"))
    other = claim(journal, claim_of(op_id, lambda_request="lambda-2"))
    assert other.outcome is ClaimOutcome.LIVE_DUPLICATE
    assert other.operation.fence == held.operation.fence == 1
    retry = claim(journal, claim_of(op_id, lambda_request="lambda-1"))
    assert retry.outcome is ClaimOutcome.BUSY  # the same request id, not the same invocation


def test_a_lease_within_the_skew_is_still_live_and_one_past_it_is_taken(
    journal: RuntimeJournal,
) -> None:
    within = new_op()
    claim(journal, claim_of(within, lease=-1.0))  # ran out 1 s ago; the skew is 2 s
    assert claim(journal, claim_of(within, lambda_request="l2")).outcome is (
        ClaimOutcome.LIVE_DUPLICATE
    )
    past = new_op()
    claim(journal, claim_of(past, lease=-5.0))
    taken = claim(journal, claim_of(past, lambda_request="l2"))
    assert taken.outcome is ClaimOutcome.CLAIMED and not taken.fresh
    assert (taken.operation.fence, taken.operation.invocations) == (2, 2)
    assert [e.what for e in taken.operation.events or []] == ["claimed", "claimed"]


def test_the_hand_over_token_claims_under_a_live_lease_and_only_once(
    journal: RuntimeJournal,
) -> None:
    op_id = new_op()
    held = claim(journal, claim_of(op_id))
    hand_over(journal, held, "tok")
    assert claim(journal, claim_of(op_id, lambda_request="l2", token="wrong")).outcome is (
        ClaimOutcome.LIVE_DUPLICATE
    )
    successor = claim(journal, claim_of(op_id, lambda_request="l2", token="tok"))
    assert successor.outcome is ClaimOutcome.CLAIMED
    op = successor.operation
    assert op.fence == 2 and op.handover_token is None
    assert (op.handover_state, op.handover_at, op.physical_id) == ('{"n": 1}', "0#2,0#1", "pid")
    assert [e.what for e in op.events or []][-2:] == ["handed over", "claimed with hand-over token"]
    again = claim(journal, claim_of(op_id, lambda_request="l3", token="tok"))
    assert again.outcome is ClaimOutcome.LIVE_DUPLICATE


def test_a_hand_over_without_positions_or_physical_id_removes_them(
    journal: RuntimeJournal,
) -> None:
    op_id = new_op()
    held = claim(journal, claim_of(op_id))
    hand_over(journal, held, "t1", positions=[], physical_id=None, wake_at=123.5, stalled=2)
    op = claim(journal, claim_of(op_id, lambda_request="l2", token="t1")).operation
    assert (op.handover_at, op.physical_id, op.wake_at, op.stalled) == (None, None, 123.5, 2)


def test_a_finished_attempt_is_finished(journal: RuntimeJournal) -> None:
    op_id = new_op()
    held = claim(journal, claim_of(op_id))
    respond(journal, held)
    again = claim(journal, claim_of(op_id, lambda_request="l2"))
    assert again.outcome is ClaimOutcome.FINISHED
    op = again.operation
    assert (op.status, op.response_status, op.posted_at) == ("SUCCEEDED", "SUCCESS", None)
    assert op.lease_until is None and op.owner is None  # released: no holder, no lease
    assert op.response == '{"Status": "SUCCESS"}' and op.response_digest is not None
    assert [e.what for e in op.events or []] == ["claimed", "response SUCCESS"]


def test_a_new_attempt_of_a_finished_operation_keeps_steps_and_resets_the_rest(
    journal: RuntimeJournal,
) -> None:
    op_id = new_op()
    first = claim(journal, claim_of(op_id, issued_at=time.time() - 60))
    run(journal.record_physical_id(op_id, 1, "pid"))
    run(journal.write_step(step(journal, op_id, "0#1"), previous=None))
    respond(journal, first, "FAILED")
    run(journal.mark_posted(op_id, "attempt-1"))  # delivered; CloudFormation retries later
    second = claim(journal, claim_of(op_id, attempt="attempt-2", lambda_request="l2"))
    assert second.outcome is ClaimOutcome.CLAIMED
    op = second.operation
    assert (op.attempt, op.attempt_no, op.fence, op.invocations) == ("attempt-2", 2, 2, 2)
    assert op.past_attempts == ["attempt-1"] and op.status == "RUNNING"
    assert (op.response, op.response_status, op.physical_id, op.reason) == (None,) * 4
    assert [e.what for e in op.events or []][-1] == "new attempt claimed"
    assert list(run(journal.load_steps(op_id))) == ["0#1"]
    # The superseded attempt's late delivery never takes over again.
    late = claim(journal, claim_of(op_id, lambda_request="l3"))
    assert late.outcome is ClaimOutcome.STALE_ATTEMPT


def test_a_new_attempt_waits_for_a_live_holder_unless_cloudformation_issued_it_later(
    journal: RuntimeJournal,
) -> None:
    op_id = new_op()
    claim(journal, claim_of(op_id, issued_at=time.time() - 60))
    unproven = claim(journal, claim_of(op_id, attempt="a2", lambda_request="l2"))
    assert unproven.outcome is ClaimOutcome.BUSY and unproven.operation.fence == 1
    older = claim(
        journal,
        claim_of(op_id, attempt="a0", issued_at=time.time() - 120, from_cloudformation=True),
    )
    assert older.outcome is ClaimOutcome.STALE_ATTEMPT
    proven = claim(
        journal, claim_of(op_id, attempt="a2", lambda_request="l2", from_cloudformation=True)
    )
    assert proven.outcome is ClaimOutcome.CLAIMED
    assert (proven.operation.fence, proven.operation.attempt) == (2, "a2")


def test_a_new_attempt_asking_for_something_else_never_supersedes_a_live_holder(
    journal: RuntimeJournal,
) -> None:
    """Invariant 9: the superseded holder PUTs the new attempt's answer to its own URL, so a
    new attempt may supersede it only when it asks for what the holder's request asked."""
    op_id = new_op()
    first = claim(journal, claim_of(op_id, issued_at=time.time() - 60))
    assert first.operation.request_digest == "asked"
    other = claim(
        journal,
        claim_of(
            op_id, attempt="a2", lambda_request="l2", from_cloudformation=True, request_digest="x"
        ),
    )
    assert other.outcome is ClaimOutcome.BUSY and other.operation.fence == 1
    same = claim(
        journal, claim_of(op_id, attempt="a3", lambda_request="l3", from_cloudformation=True)
    )
    assert same.outcome is ClaimOutcome.CLAIMED and same.operation.request_digest == "asked"


def test_an_answer_recorded_and_not_yet_posted_holds_the_operation_against_new_attempts(
    journal: RuntimeJournal,
) -> None:
    """Invariants 8 and 9: Lambda's retry of a finished attempt whose PUT failed re-posts its
    recorded body; no new attempt, proven or not, takes the operation over (and clears that
    body) until it is posted or its deadline has passed."""
    op_id = new_op()
    held = claim(journal, claim_of(op_id, issued_at=time.time() - 60))
    respond(journal, held)
    for attempt, proven in (("a2", False), ("a3", True)):
        new = claim(
            journal,
            claim_of(op_id, attempt=attempt, lambda_request=attempt, from_cloudformation=proven),
        )
        assert new.outcome is ClaimOutcome.BUSY
        assert (new.operation.fence, new.operation.attempt) == (1, "attempt-1")
        assert new.operation.response == json.dumps({"Status": "SUCCESS"})
    run(journal.mark_posted(op_id, "attempt-1"))
    after = claim(journal, claim_of(op_id, attempt="a2", lambda_request="l2"))
    assert after.outcome is ClaimOutcome.CLAIMED and after.operation.attempt == "a2"

    # An attempt answered at its deadline (timed out) is owed its answer as much as any, for
    # the time Lambda's retries take; long past its deadline it no longer holds the operation.
    for deadline, held in ((time.time() - 1, True), (time.time() - OWED_GRACE - 1, False)):
        overdue = new_op()
        late = claim(journal, claim_of(overdue, issued_at=time.time() - 60, deadline=deadline))
        respond(journal, late)
        taken = claim(journal, claim_of(overdue, attempt="a2", lambda_request="l2"))
        assert taken.outcome is (ClaimOutcome.BUSY if held else ClaimOutcome.CLAIMED)


def test_a_new_attempt_write_is_refused_when_the_holder_recorded_its_answer_meanwhile(
    journal: RuntimeJournal,
) -> None:
    """The holder records its answer under the fence the new attempt saw: the new attempt's
    conditional write checks for an answer still to deliver as well as the fence."""
    op_id = new_op()
    held = claim(journal, claim_of(op_id, issued_at=time.time() - 60))
    seen = held.operation
    respond(journal, held)
    proven = claim_of(op_id, attempt="a2", lambda_request="l2", from_cloudformation=True)
    assert isinstance(journal, (JournalStore, MemoryJournal))
    got = run(journal._claim_new_attempt(proven, seen, supersede=True))
    assert got is None or got.outcome is not ClaimOutcome.CLAIMED
    kept = run(journal.load_operation(op_id))
    assert kept is not None and (kept.fence, kept.attempt) == (1, "attempt-1")
    assert kept.response == json.dumps({"Status": "SUCCESS"})


def test_an_on_failure_record_never_supersedes_a_live_holder(journal: RuntimeJournal) -> None:
    """Invariant 9: anyone who may invoke the function can send Lambda's on-failure record,
    which answers FAILED as soon as it holds the operation: it waits for a live holder as any
    unproven attempt does, even with a CloudFormation-looking URL issued later."""
    op_id = new_op()
    claim(journal, claim_of(op_id, issued_at=time.time() - 60))
    record = claim_of(op_id, attempt="a2", lambda_request="l2", from_cloudformation=True)
    refused = claim(journal, record.replaced(gave_up=True))
    assert refused.outcome is ClaimOutcome.BUSY and refused.operation.fence == 1


def test_a_new_attempt_never_shortens_the_deadline_while_a_url_it_superseded_waits(
    journal: RuntimeJournal,
) -> None:
    """A superseded URL still unanswered gets the new attempt's answer: a new attempt made to
    expire at once must not turn the work into a FAILED timeout for it. Once every earlier
    attempt was answered, the new attempt's own deadline applies."""
    op_id = new_op()
    far = time.time() + 3600
    claim(journal, claim_of(op_id, issued_at=time.time() - 60, deadline=far))
    soon = time.time() + 1
    proven = claim_of(
        op_id, attempt="a2", lambda_request="l2", from_cloudformation=True, deadline=soon
    )
    took = claim(journal, proven)
    assert took.outcome is ClaimOutcome.CLAIMED and took.operation.deadline == pytest.approx(far)

    answered = new_op()
    first = claim(journal, claim_of(answered, issued_at=time.time() - 60, deadline=far))
    respond(journal, first)
    run(journal.mark_posted(answered, "attempt-1"))
    own = claim(journal, claim_of(answered, attempt="a2", lambda_request="l2", deadline=soon))
    assert own.outcome is ClaimOutcome.CLAIMED and own.operation.deadline == pytest.approx(soon)


def test_an_attempt_asking_for_something_else_never_takes_over_a_lapsed_holder(
    journal: RuntimeJournal,
) -> None:
    """Invariant 9: a holder whose lease lapsed (it crashed, or froze) is still owed an answer
    to its URL, which Lambda's retry of it gives; an attempt asking for something else, whose
    answer that URL cannot take, waits until the holder is done or its deadline has passed."""
    op_id = new_op()
    claim(journal, claim_of(op_id, issued_at=time.time() - 60, lease=-10.0))
    other = claim_of(
        op_id, attempt="a2", lambda_request="l2", from_cloudformation=True, request_digest="x"
    )
    assert claim(journal, other).outcome is ClaimOutcome.BUSY
    overdue = new_op()
    claim(
        journal,
        claim_of(
            overdue, issued_at=time.time() - 60, lease=-10.0, deadline=time.time() - OWED_GRACE - 1
        ),
    )
    taken = claim(journal, other.replaced(op_id=overdue))
    assert taken.outcome is ClaimOutcome.CLAIMED and taken.operation.request_digest == "x"


def test_a_new_attempt_takes_over_a_lapsed_holder(journal: RuntimeJournal) -> None:
    op_id = new_op()
    claim(journal, claim_of(op_id, issued_at=time.time() - 60, lease=-10.0))
    got = claim(journal, claim_of(op_id, attempt="a2", lambda_request="l2"))
    assert got.outcome is ClaimOutcome.CLAIMED and got.operation.attempt_no == 2


def test_a_new_attempt_keeps_the_superseded_attempts_never_answered(
    journal: RuntimeJournal,
) -> None:
    """A superseded attempt whose answer was never posted is kept as unanswered (a later
    delivery of it copies the new attempt's answer to its URL); one answered is not."""
    op_id = new_op()
    claim(journal, claim_of(op_id, issued_at=time.time() - 60, lease=-10.0))  # crashed
    second = claim(journal, claim_of(op_id, attempt="a2", lambda_request="l2"))
    assert second.operation.unanswered_attempts == ["attempt-1"]
    respond(journal, second)
    run(journal.mark_posted(op_id, "a2"))
    third = claim(journal, claim_of(op_id, attempt="a3", lambda_request="l3"))
    assert third.operation.past_attempts == ["attempt-1", "a2"]
    assert third.operation.unanswered_attempts == ["attempt-1"]


# -- fenced writes ----------------------------------------------------------------------------


def test_every_operation_write_is_fenced(journal: RuntimeJournal) -> None:
    op_id = new_op()
    first = claim(journal, claim_of(op_id, lease=-10.0))
    second = claim(journal, claim_of(op_id, lambda_request="l2"))
    assert second.operation.fence == 2
    stale = first.operation
    attempts: list[Any] = [
        journal.renew_lease(op_id, 1, time.time() + 30),
        journal.release_lease(op_id, 1),
        journal.record_physical_id(op_id, 1, "pid"),
        journal.record_handover(
            stale,
            token="t",
            state=None,
            positions=[],
            physical_id=None,
            wake_at=None,
            stalled=0,
            note="handed over",
        ),
        journal.record_response(
            stale,
            body="{}",
            response_status="SUCCESS",
            status=OperationStatus.SUCCEEDED,
            physical_id="pid",
            reason=None,
        ),
    ]
    for write in attempts:
        with pytest.raises(FenceLost, match="held by fence 2; this invocation had 1"):
            run(write)
    with pytest.raises(FenceLost, match="held by fence none"):
        run(journal.renew_lease(new_op(), 1, time.time() + 30))
    run(journal.renew_lease(op_id, 2, time.time() + 60))
    assert claim(journal, claim_of(op_id, lambda_request="l3")).outcome is (
        ClaimOutcome.LIVE_DUPLICATE
    )


def test_a_released_lease_is_claimed_at_once(journal: RuntimeJournal) -> None:
    op_id = new_op()
    claim(journal, claim_of(op_id))
    run(journal.release_lease(op_id, 1))
    retry = claim(journal, claim_of(op_id))  # Lambda's retry: the same request id
    assert retry.outcome is ClaimOutcome.CLAIMED and retry.operation.fence == 2


# -- step slots -------------------------------------------------------------------------------


def test_a_slot_is_created_once_and_the_loser_adopts_the_winner(
    journal: RuntimeJournal,
) -> None:
    op_id = new_op()
    winner = step(journal, op_id, "0#1", result='"first"')
    assert run(journal.write_step(winner, previous=None)) is winner
    loser = step(journal, op_id, "0#1", result='"second"', fence=2)
    adopted = run(journal.write_step(loser, previous=None))
    assert adopted is not loser and adopted == winner


def test_a_slot_advances_only_from_what_the_writer_saw(journal: RuntimeJournal) -> None:
    op_id = new_op()
    retrying = step(
        journal, op_id, "0#1", status=StepStatus.RETRYING.value, result=None, wake_at=1.5
    )
    run(journal.write_step(retrying, previous=None))
    done = step(journal, op_id, "0#1", attempt=2, result='"done"')
    assert run(journal.write_step(done, previous=retrying)) is done
    late = step(journal, op_id, "0#1", attempt=2, fence=2, result='"late"')
    adopted = run(journal.write_step(late, previous=retrying))
    assert adopted == done
    with pytest.raises(JournalError, match="vanished"):
        run(journal.write_step(step(journal, op_id, "0#9"), previous=retrying))


def test_an_oversize_step_is_refused_before_it_is_written(journal: RuntimeJournal) -> None:
    op_id = new_op()
    with pytest.raises(PayloadTooLarge, match="would journal"):
        run(journal.write_step(step(journal, op_id, "0#1", result="x" * 500_000), previous=None))
    assert run(journal.load_steps(op_id)) == {}


def test_steps_load_in_sort_key_order_with_their_values(journal: RuntimeJournal) -> None:
    op_id = new_op()
    positions = ["0#2", "0#10", "0#1", "0#3#1", "0#3", "0#3#0"]
    written = {}
    for n, position in enumerate(positions):
        entry = step(journal, op_id, position, result=str(n), state=json.dumps({"n": n}))
        written[position] = run(journal.write_step(entry, previous=None))
    loaded = run(journal.load_steps(op_id))
    assert list(loaded) == sorted(positions, key=lambda p: ("step#" + p).encode())
    assert loaded == written
    assert run(journal.load_steps(new_op())) == {}


# -- the outbox ------------------------------------------------------------------------------


def test_mark_posted_keeps_the_masked_body_and_ignores_other_attempts(
    journal: RuntimeJournal,
) -> None:
    op_id = new_op()
    held = claim(journal, claim_of(op_id))
    run(journal.mark_posted(op_id, "attempt-1"))  # nothing recorded yet: nothing to mark
    respond(journal, held)
    run(journal.mark_posted(op_id, "attempt-0", kept="nope"))
    run(journal.mark_posted(op_id, "attempt-1", kept='{"Status": "SUCCESS", "Data": "****"}'))
    op = claim(journal, claim_of(op_id, lambda_request="l2")).operation
    assert op.posted_at is not None and op.response == '{"Status": "SUCCESS", "Data": "****"}'
    assert [e.what for e in op.events or []] == ["claimed", "response SUCCESS", "posted"]
    run(journal.mark_posted(new_op(), "attempt-1"))  # no operation: nothing to do


def test_an_undeliverable_response_is_recorded_as_such(journal: RuntimeJournal) -> None:
    op_id = new_op()
    respond(journal, claim(journal, claim_of(op_id)))
    run(journal.mark_posted(op_id, "attempt-1", undeliverable="403 Forbidden"))
    op = claim(journal, claim_of(op_id, lambda_request="l2")).operation
    assert (op.status, op.reason) == ("UNDELIVERABLE", "403 Forbidden")
    assert [e.what for e in op.events or []][-1] == "undeliverable: 403 Forbidden"


def test_every_event_is_recorded_with_its_kind_and_details(journal: RuntimeJournal) -> None:
    op_id = new_op()
    held = claim(journal, claim_of(op_id))
    hand_over(journal, held, "tok")
    held = claim(journal, claim_of(op_id, lambda_request="l2", token="tok"))
    respond(journal, held, status="FAILED")
    run(journal.note_delivery(op_id, "attempt-1", "the response host did not answer"))
    run(journal.mark_posted(op_id, "attempt-1", undeliverable="403 Forbidden"))
    op = claim(journal, claim_of(op_id, lambda_request="l3")).operation
    events = [(e.kind, e.status, e.reason) for e in op.events or []]
    assert events[:6] == [
        ("claimed", None, None),
        ("handed over", None, None),
        ("claimed", None, None),
        ("response", "FAILED", None),
        ("not delivered", None, "the response host did not answer"),
        ("undeliverable", None, "403 Forbidden"),
    ]
