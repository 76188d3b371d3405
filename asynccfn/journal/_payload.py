"""Journal payloads encrypted by a codec: the one layer between the runtime and the store that
knows which values are secret.

With ``lambda_entry(codec=...)``, one :class:`Payloads` per invocation encrypts, before they
reach DynamoDB, the result of a step marked ``sensitive``, the EventState (recorded with steps
and at a hand-over) when ``sensitive_state`` names keys, and the recorded response body when
it is NoEcho or the operation holds secrets; and decrypts them as the journal is loaded, so
the executor only ever sees plain JSON. An encrypted value is stored as :data:`PREFIX` and
the codec's bytes in base64: no JSON text starts so, so a reader without the key (the CLI,
:mod:`asynccfn.journal.query`) recognises it and shows it masked, never as data.

A value this layer always encrypts (a sensitive step's result, the EventState when it is
sealed, an unposted NoEcho response) must be read encrypted: one found in the clear was
written by someone who may write the table but not use the key, and is refused
(:class:`~asynccfn.JournalTampered`: the operation is answered FAILED and does not go on
with it), not handed to the handler as its own.

A codec is any object with the small :class:`PayloadCodec` interface (``asynccfn.KmsCodec``
is one): it opens a :class:`CodecSession` per invocation and operation, which may cache what
it needs (a data key) for that invocation. Values are bound to their operation (the session's
``context``): one moved to another operation does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .._errors import JournalTampered
from .._response import masked_body

if TYPE_CHECKING:
    from .models import OperationItem, StepItem
    from .protocol import StepJournal

PREFIX = "encrypted:"
"""How an encrypted journal value starts (never the start of JSON text)."""


class Clients(Protocol):
    """The shared aiobotocore clients of the function (``asynccfn._clients.ClientPool``)."""

    async def get(self, service: str, **options: Any) -> Any: ...


class CodecSession(Protocol):
    """A codec working for one invocation of one operation (``context``, its id)."""

    async def encode(self, data: bytes) -> bytes:
        """``data`` encrypted, bound to the session's context.

        Raises:
            CodecError: the value could not be encrypted.
        """
        ...

    async def decode(self, data: bytes) -> bytes:
        """What :meth:`encode` was given.

        Raises:
            JournalTampered: ``data`` was tampered with or belongs to another context (no
                retry can change that: the operation is answered FAILED at once).
            CodecError: its key could not be obtained (raised, for Lambda's retry).
        """
        ...


class PayloadCodec(Protocol):
    """Encrypts journal payloads at rest (as Temporal's payload codecs do): one object per
    function, given to ``lambda_entry(codec=...)``, opening a session per invocation."""

    def session(self, clients: Clients, *, context: str) -> CodecSession:
        """A session for one invocation of the operation ``context``; it makes no call yet."""
        ...


def is_encrypted(text: str | None) -> bool:
    """Whether a journal attribute holds an encrypted value. Raises nothing."""
    return text is not None and text.startswith(PREFIX)


class Secrets(NamedTuple):
    """What ``lambda_entry`` was told is secret, and the codec that encrypts it."""

    codec: PayloadCodec | None = None
    state_keys: frozenset[str] = frozenset()


class Payloads:
    """One invocation's encryption of one operation's journal values."""

    __slots__ = ("_session", "holds_secrets", "seal_state")

    def __init__(self, session: CodecSession, *, seal_state: bool) -> None:
        self._session = session
        self.seal_state = seal_state
        # The operation has journaled secrets: a response built from them is sealed too.
        self.holds_secrets = seal_state

    async def seal(self, text: str) -> str:
        """``text`` encrypted, as stored.

        Raises:
            CodecError: as :meth:`CodecSession.encode`.
        """
        sealed = await self._session.encode(text.encode())
        return PREFIX + base64.b64encode(sealed).decode()

    async def open(
        self, text: str | None, *, sealed: bool = False, what: str = "a journal value"
    ) -> str | None:
        """A stored value in the clear: decrypted, or as it is when it is not encrypted.

        ``sealed`` says this function always encrypts the value (``what``): one stored in the
        clear was written by someone else, who may write the table but not use the key, to
        make the operation go on with a value of their choosing (a downgrade). It is refused.

        Raises:
            CodecError: as :meth:`CodecSession.decode`.
            JournalTampered: the value is not base64, or it is
                ``sealed`` and stored in the clear.
        """
        if text is None:
            return None
        if not text.startswith(PREFIX):
            if sealed:
                raise JournalTampered(
                    f"{what} is stored in the clear, where this function always encrypts it: "
                    "it was not written by this function (or was written before the function "
                    "encrypted it: an operation in flight when sensitive_state was set), and "
                    "the operation does not go on with it"
                )
            return text
        try:
            raw = base64.b64decode(text[len(PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise JournalTampered("an encrypted journal value is not valid base64") from None
        return (await self._session.decode(raw)).decode()

    async def seal_step(self, step: StepItem) -> StepItem:
        """A copy of ``step`` as it is stored: its result encrypted when it is sensitive, its
        state when the state may hold secrets."""
        changes: dict[str, Any] = {}
        if step.sensitive and step.result is not None:
            self.holds_secrets = True
            changes["result"] = await self.seal(step.result)
        if self.seal_state and step.state is not None:
            changes["state"] = await self.seal(step.state)
        return step.replaced(**changes) if changes else step

    async def open_step(self, step: StepItem) -> StepItem:
        """``step`` as read from the journal, in the clear (in place). What :meth:`seal_step`
        encrypts must be encrypted: a sensitive step's result, and its state when the state
        is sealed.

        Raises:
            CodecError: as :meth:`open`.
        """
        if step.sensitive:
            self.holds_secrets = True
        step.result = await self.open(
            step.result,
            sealed=bool(step.sensitive),
            what=f"the result of sensitive step {step.name!r}",
        )
        step.state = await self.open(
            step.state,
            sealed=self.seal_state,
            what=f"the EventState recorded with step {step.name!r}",
        )
        return step

    async def open_steps(self, steps: dict[str, StepItem]) -> dict[str, StepItem]:
        """The loaded journal in the clear (in place).

        Raises:
            CodecError: as :meth:`open`.
        """
        for step in steps.values():
            await self.open_step(step)
        return steps

    async def seal_response(self, body: str, *, no_echo: bool) -> str:
        """The response body as the outbox keeps it: encrypted when it is NoEcho or the
        operation holds secrets (its Data may carry them), in the clear otherwise."""
        return await self.seal(body) if no_echo or self.holds_secrets else body


class SealedSteps:
    """The executor's journal with a codec: the store, with step values sealed on the way in
    and opened on the way back. The executor keeps the plain record it wrote, so its own
    bookkeeping (the state last recorded) stays in the clear."""

    __slots__ = ("_store", "payloads")

    def __init__(self, store: StepJournal, payloads: Payloads) -> None:
        self._store = store
        self.payloads = payloads

    def new_step(self, op_id: str, position: str, **attrs: Any) -> StepItem:
        return self._store.new_step(op_id, position, **attrs)

    async def write_step(self, step: StepItem, *, previous: StepItem | None) -> StepItem:
        """As the store's ``write_step``; the record returned is in the clear.

        Raises:
            CodecError, and as the store's ``write_step``.
        """
        sealed = await self.payloads.seal_step(step)
        recorded = await self._store.write_step(sealed, previous=previous)
        if recorded is sealed:
            return step
        return await self.payloads.open_step(recorded)  # the winner's, adopted

    async def record_physical_id(self, op_id: str, fence: int, physical_id: str) -> None:
        """As the store's (a physical id is never secret: CloudFormation shows it).

        Raises:
            as the store's ``record_physical_id``.
        """
        await self._store.record_physical_id(op_id, fence, physical_id)


# The invocation's payloads, for its ending (outbox, hand-over): set by the runtime once the
# operation is claimed, in the invocation's own task, so concurrent invocations never share.
current: contextvars.ContextVar[Payloads | None] = contextvars.ContextVar(
    "asynccfn_payloads", default=None
)


async def sealed_handover_state(state: str | None) -> str | None:
    """The hand-over's EventState as it is recorded (encrypted when it may hold secrets)."""
    payloads = current.get()
    if payloads is None or state is None or not payloads.seal_state:
        return state
    return await payloads.seal(state)


async def sealed_response(body: str, *, no_echo: bool) -> str:
    """The response body as the outbox records it (see :meth:`Payloads.seal_response`)."""
    payloads = current.get()
    return body if payloads is None else await payloads.seal_response(body, no_echo=no_echo)


async def open_operation(op: OperationItem, payloads: Payloads) -> None:
    """The operation item's encrypted values (hand-over state, response) in the clear (in
    place). The hand-over state must be encrypted when the state is sealed, and so must a
    NoEcho response until it is posted (then the outbox keeps it with its Data masked).

    Raises:
        CodecError: as :meth:`Payloads.open`.
    """
    op.handover_state = await payloads.open(
        op.handover_state, sealed=payloads.seal_state, what="the hand-over's EventState"
    )
    op.response = await payloads.open(
        op.response, sealed=_unmasked_no_echo(op.response), what="a NoEcho response"
    )


def _unmasked_no_echo(body: str | None) -> bool:
    """Whether ``body`` is a NoEcho response in the clear with its Data not masked, which the
    outbox never stores (it seals it until posted, then keeps it masked). Raises nothing."""
    if body is None or is_encrypted(body):
        return False
    kept = masked_body(body)
    return kept is not None and kept != body
