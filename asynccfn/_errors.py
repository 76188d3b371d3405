"""The one exception hierarchy of asynccfn, grouped by what happens next.

::

    AsyncCfnError
    ├── ConfigurationError        a bad argument to Resource, lambda_entry or a step option
    ├── Failed                    the handler's expected failure: answer FAILED with its reason
    │   ├── WaitTimeout           ctx.wait_until ran out of attempts or time (TimeoutError)
    │   ├── StepInterrupted       an at-most-once step was cut off and will not run again
    │   ├── NonDeterminismError   replay found another step at a journaled position
    │   ├── ConcurrentStepError   two steps started at once in one scope (use ctx.parallel)
    │   ├── PayloadTooLarge       a step result or the EventState exceeds the journal's cap
    │   ├── OperationTimeout      the operation's deadline passed (TimeoutError)
    │   └── StepFailed            a journaled error of a type that is not rebuilt (its name)
    ├── RequestError              the event is not a valid custom-resource request
    │   └── ResponseURLRefused    the ResponseURL is absent, malformed or not allowed
    ├── DeliveryError             the response PUT did not succeed (transient: Lambda retries)
    │   ├── UndeliverableResponse the URL refused the response for good (403, expired)
    │   └── ResponseUnreachable   no connection to the URL's host could be opened in time
    ├── JournalError              DynamoDB failed (transient: Lambda retries)
    │   ├── FenceLost             a newer invocation holds the operation: stop quietly
    │   ├── LeaseLost             no renewal succeeded before the lease ran out
    │   └── CodecError            a journal payload could not be encrypted or decrypted
    ├── OperationBusy             another invocation's live lease bars this one for now
    │                             (transient: Lambda's retry claims once it has run out)
    └── ContinuationError         the self-invocation failed after its retries

``HandOver`` derives from ``BaseException``, not from this tree: it is the runtime's signal that
the invocation must suspend, and user code that catches ``Exception`` must not swallow it.
``Continued`` likewise: the handler itself invoked the function again (no journal), so the
invocation ends without an answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asynccfn._protocol import Echo


class AsyncCfnError(Exception):
    """Root of every error asynccfn raises on purpose."""


class ConfigurationError(AsyncCfnError):
    """An argument to Resource, lambda_entry or a step is invalid."""


class Failed(AsyncCfnError):
    """Raise from a handler to answer FAILED with ``reason`` (an expected failure)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WaitTimeout(Failed, TimeoutError):
    """``ctx.wait_until`` exhausted its attempts or its timeout (also a ``TimeoutError``, as
    anyio's ``fail_after`` raises, for code that catches timeouts of any kind)."""


class StepInterrupted(Failed):
    """An ``at_most_once`` step started in an earlier invocation and never finished."""


class NonDeterminismError(Failed):
    """The handler asked for a different step than the journal holds at this position."""


class ConcurrentStepError(Failed):
    """Two steps were started concurrently in one scope; ``ctx.parallel`` gives each its own."""


class PayloadTooLarge(Failed):
    """A step result or the EventState is larger than a journal item can hold."""


class OperationTimeout(Failed, TimeoutError):
    """The operation's deadline passed before the handler finished (also a ``TimeoutError``)."""


class HandlerExited(Failed):
    """The handler, or code it called, raised SystemExit (``sys.exit()``): in a task it would
    stop the event loop and end the invocation with nothing answered, so the operation is
    answered FAILED with this instead."""


class StepFailed(Failed):
    """A step's journaled error whose type is not rebuilt on replay.

    Replay rebuilds only built-in exceptions, botocore's ClientError, asynccfn's own errors
    and the types registered with ``Resource(errors=[...])``: the journal names the type, and
    importing a module the journal names would run whatever that module runs. Any other type
    comes back as this, carrying the journaled ``type_name`` (``module:QualName``) and
    ``message``; its reason reads ``QualName: message``.
    """

    def __init__(self, type_name: str, message: str) -> None:
        qualname = type_name.rpartition(":")[2] or type_name
        super().__init__(f"{qualname}: {message}")
        self.type_name = type_name
        self.message = message

    def __reduce__(self) -> tuple[type[StepFailed], tuple[str, str]]:
        return type(self), (self.type_name, self.message)


class RequestError(AsyncCfnError):
    """The event is not a valid CloudFormation custom-resource request.

    ``echo`` holds the request's identifiers when they were valid, and ``response_url`` the
    ResponseURL when it passed the allow-list, so a FAILED response can still be posted when
    both are present; ``physical_id`` is an Update's or Delete's PhysicalResourceId when it
    was valid, which that answer echoes. ``reason`` never contains the URL; ``args`` holds
    the reason only.
    """

    def __init__(
        self,
        reason: str,
        *,
        echo: Echo | None = None,
        response_url: str | None = None,
        physical_id: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.echo = echo
        self.response_url = response_url
        self.physical_id = physical_id


class ResponseURLRefused(RequestError):
    """The ResponseURL is absent, malformed, or aimed at a host that is not allowed."""


class DeliveryError(AsyncCfnError):
    """The response PUT failed after its retries; a later attempt may succeed."""


class UndeliverableResponse(DeliveryError):
    """The response URL refused the response for good (403 or expired)."""


class ResponseUnreachable(DeliveryError):
    """Connecting to the ResponseURL's host timed out attempt after attempt: the function has
    no network path to it (in a VPC, no S3 gateway endpoint and no NAT). ``host`` names it."""

    def __init__(self, message: str, *, host: str) -> None:
        super().__init__(message)
        self.host = host


class JournalError(AsyncCfnError):
    """A DynamoDB request of the journal failed after botocore's retries."""


class FenceLost(JournalError):
    """A newer invocation claimed the operation; this one must stop without writing."""


class LeaseLost(JournalError):
    """The lease could not be renewed before it ran out: another invocation may hold the
    operation now, so this one stops its work and lets Lambda's retry continue."""


class OperationBusy(AsyncCfnError):
    """The operation is held under a live lease that this invocation may take over only once
    it has run out (Lambda's retry of the holder's own request id, or a new attempt that cannot
    prove it is newer): raised so that Lambda's retry claims it later."""


class CodecError(JournalError):
    """The payload codec could not encrypt or decrypt a journal value: KMS refused or failed,
    or the value was tampered with or moved from another operation. Like any journal failure,
    Lambda's retry runs the operation again; one that keeps failing is answered FAILED."""


class JournalTampered(CodecError):
    """A journal value this function did not write: plaintext where it always encrypts, a
    sensitive step's record without its flag, or an encrypted value that fails its
    authentication (altered, or moved from another operation). No retry can change it, so
    the operation is answered FAILED at once and never goes on with the value."""


class ContinuationError(AsyncCfnError):
    """Invoking the function again for the hand-over failed after retries."""


class HandOver(BaseException):
    """Suspend the operation here and continue in a new invocation.

    A ``BaseException`` so that ``except Exception`` in handler code does not swallow it.
    """

    def __init__(self, why: str, *, wake_at: float | None = None) -> None:
        super().__init__(why)
        self.wake_at = wake_at


class Continued(BaseException):
    """The handler already invoked the function again, its state in the payload: end this
    invocation without answering (the next one answers).

    Only the journal-less cfn-lambda-handler compatibility layer raises it; durable handlers
    hand over with ``HandOver``. A ``BaseException`` for the same reason as ``HandOver``.
    """
