"""lambda_entry: the synchronous Lambda handler around the async runtime.

One event loop per container, kept across warm invocations, so the aiobotocore clients and the
aiohttp session it holds are reused. Nothing here needs AWS at import time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import _logging
from ._clients import import_sdk
from ._env import JOURNAL_TABLE_ENV, KMS_KEY_ENV, LAMBDA_RUNTIME_API_ENV
from ._errors import ConfigurationError
from ._outcomes import InvocationResult
from ._probe import NO_PROBE
from ._provider import Provider, as_target
from ._resource import Resource
from ._responder import DeliveryPolicy
from ._runtime import Runtime, RuntimeConfig
from ._urls import allowed_hosts_from_env
from .journal._payload import Secrets
from .journal.claims import LEASE_SKEW

if TYPE_CHECKING:
    from ._probe import Probe
    from ._refusal import Refusal
    from .journal._payload import PayloadCodec

DAY = 86_400.0

_loop: asyncio.AbstractEventLoop | None = None


def _persistent_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


class LambdaHandler:
    """The callable Lambda runs (``module.handler``); ``runtime`` is exposed for tests.

    ``exit_process`` ends the process when work that cannot be cancelled outlives an
    invocation (``os._exit``; a test passes its own to watch it).
    """

    __slots__ = ("_exit_process", "runtime")

    def __init__(
        self, runtime: Runtime, *, exit_process: Callable[[int], object] = os._exit
    ) -> None:
        self.runtime = runtime
        self._exit_process = exit_process

    def __call__(self, event: Any, context: Any) -> dict[str, str]:
        """Handle one invocation.

        Raises:
            JournalError, DeliveryError, OperationBusy: only when Lambda's retry is the way to
                recover.
        """
        _logging.configure()
        result: InvocationResult | None = None
        try:
            result = _persistent_loop().run_until_complete(self.runtime.invoke(event, context))
        finally:
            # Also when the invocation raised: a worker thread must not go on making side
            # effects after Lambda considers the invocation over (invariant 6).
            if (result is not None and result.exit_process) or (
                self.runtime.work_outlives_invocation()
            ):
                self._end_process(failed=result is None)
        return {"outcome": result.outcome}

    def _end_process(self, *, failed: bool) -> None:
        """End the process so that work which cannot be stopped cannot resume inside a later
        invocation of this container. Lambda then never learns the invocation's result and
        counts it failed whatever the exit status (the status only tells the two cases apart
        in the logs), so it retries an asynchronous invocation: the journal makes that retry
        harmless (it meets a live holder or a finished attempt)."""
        logging.getLogger("asynccfn.runtime").warning(
            "work that cannot be cancelled outlived the invocation%s; ending the process",
            " (which failed)" if failed else "",
        )
        logging.shutdown()
        sys.stdout.flush()
        self._exit_process(1 if failed else 0)


def lambda_entry(
    resource: Resource | Provider | Sequence[Resource],
    *,
    journal: str | None = None,
    reserve: float | None = None,
    timeout: float = 3600.0,
    lease: float = 30.0,
    retention: float = 30 * DAY,
    delivery: DeliveryPolicy | None = None,
    max_invocations: int = 100,
    response_hosts: Iterable[str] = (),
    lease_skew: float = LEASE_SKEW,
    codec: PayloadCodec | None = None,
    sensitive_state: Iterable[str] = (),
    probe: Probe | None = None,
) -> Callable[[Any, Any], dict[str, str]]:
    """Turn ``resource`` into a Lambda handler: one Resource, or a Provider (or a list of
    resources, made one) whose requests are routed by their ResourceType.

    ``journal`` names the DynamoDB table (default: the ``ASYNCCFN_JOURNAL_TABLE`` environment
    variable; with neither, handlers run without durability); ``reserve`` is the seconds kept
    back before the Lambda deadline (default: 10 s, less for short timeouts); ``timeout`` caps
    the whole operation across invocations; ``lease`` is the claim's lease length and
    ``retention`` how long journal items live (seconds); ``delivery`` how the response PUT
    retries (default: 6 attempts with jittered backoff from 0.5 s up to 8 s);
    ``max_invocations`` bounds every chain of hand-overs (the operation fails when it is
    reached); ``response_hosts`` are further hosts (``host`` or ``host:port``) responses may be
    PUT to besides CloudFormation's own response buckets, as ``ASYNCCFN_ALLOWED_RESPONSE_HOSTS``
    names them; ``lease_skew`` is the clock skew tolerated between invocations (seconds).

    ``codec`` (e.g. :class:`asynccfn.KmsCodec`) encrypts the journal's secrets at rest: the
    results of ``ctx.step(..., sensitive=True)``, the EventState when ``sensitive_state`` names
    any of its keys, and a NoEcho (or secret-bearing) response. ``sensitive_state`` keys are
    masked in every view; with a journal they need a codec. Without ``codec``, a journaled
    function whose ``ASYNCCFN_KMS_KEY`` names a key uses ``KmsCodec`` of that key.

    ``probe`` is for tests only: it watches named points of an invocation and may make it
    hand over after every step (see ``asynccfn._probe``); by default it does nothing.

    Every request type of every resource needs an answer (:meth:`asynccfn.Resource.unanswered`):
    a handler, or a declared ``update="replace"`` / ``delete="nothing"``. Inside Lambda (where
    ``AWS_LAMBDA_RUNTIME_API`` is set) a function lacking one does not raise: it logs why at
    init and refuses, answering every request FAILED with that reason, except the Delete that
    rolls back a refused Create (it reports the failed-create marker as its physical id), which
    answers SUCCESS.

    Raises:
        ConfigurationError: an argument is out of range, ``sensitive_state`` is given to a
            journaled function without a ``codec``, or (off Lambda) a resource lacks an answer
            for a request type; the message names each, with the file and line of its
            ``Resource(...)``.
    """
    target = as_target(resource)
    if not 0 < timeout <= 3600 * 24:
        raise ConfigurationError(f"timeout must be within (0, 86400] seconds, got {timeout!r}")
    if lease < 3:
        raise ConfigurationError(f"lease must be at least 3 seconds, got {lease!r}")
    if retention < 3600:
        raise ConfigurationError(f"retention must be at least an hour, got {retention!r}")
    if reserve is not None and reserve < 0:
        raise ConfigurationError(f"reserve must be >= 0 seconds, got {reserve!r}")
    if isinstance(max_invocations, bool) or not isinstance(max_invocations, int):
        raise ConfigurationError(f"max_invocations must be an int, got {max_invocations!r}")
    if max_invocations < 1:
        raise ConfigurationError(f"max_invocations must be >= 1, got {max_invocations!r}")
    if not 0 <= lease_skew < lease:
        raise ConfigurationError(
            f"lease_skew must be within [0, lease), got {lease_skew!r} for lease {lease!r}"
        )
    if isinstance(response_hosts, str):
        raise ConfigurationError(
            "response_hosts must be a collection of hosts, not one string: "
            f"response_hosts=[{response_hosts!r}]"
        )
    hosts = frozenset(host.strip().lower() for host in response_hosts if host.strip())
    hosts |= allowed_hosts_from_env()  # the deployment's settings are read here, once
    table = journal or os.environ.get(JOURNAL_TABLE_ENV) or None
    if codec is None and table and os.environ.get(KMS_KEY_ENV):
        from ._kms import KmsCodec

        codec = KmsCodec(os.environ[KMS_KEY_ENV])
    secrets = _secrets(codec, sensitive_state, journaled=bool(table))
    refusal = _refusal(target)
    config = RuntimeConfig(
        resource=target,
        journal=table,
        reserve=reserve,
        timeout=timeout,
        lease=lease,
        retention=retention,
        delivery=delivery,
        max_invocations=max_invocations,
        lease_skew=lease_skew,
        response_hosts=hosts,
        secrets=secrets,
        probe=probe or NO_PROBE,
        refusal=refusal,
    )
    handler = LambdaHandler(Runtime(config))
    if table and inside_lambda():  # Lambda's init phase
        _prepare_during_init(handler.runtime)
    return handler


def _secrets(codec: Any, sensitive_state: Iterable[str], *, journaled: bool) -> Secrets:
    """What is secret, checked: secrets are never journaled in the clear.

    Raises:
        ConfigurationError: as :func:`lambda_entry`.
    """
    if isinstance(sensitive_state, str):  # one key given bare would be split into letters
        sensitive_state = [sensitive_state]
    keys = frozenset(sensitive_state)
    if any(not isinstance(key, str) or not key for key in keys):
        raise ConfigurationError(f"sensitive_state must name state keys, got {sorted(keys)!r}")
    if codec is not None and not callable(getattr(codec, "session", None)):
        raise ConfigurationError(f"codec must be a payload codec like KmsCodec, got {codec!r}")
    if keys and journaled and codec is None:
        raise ConfigurationError(
            f"sensitive_state {sorted(keys)} would be journaled in the clear: pass "
            "lambda_entry(codec=asynccfn.KmsCodec(KEY_ARN)) to encrypt it"
        )
    return Secrets(codec=codec, state_keys=keys)


def _refusal(target: Resource | Provider) -> Refusal | None:
    """What a resource that cannot answer every request type (``unanswered``) becomes: off
    Lambda an error, raised where the user's module makes the handler; inside Lambda a
    :class:`~asynccfn._refusal.Refusal`, logged once here, which answers every request FAILED.
    Raising there would answer nothing at all (a function that cannot initialise never runs,
    nor does its on-failure record), and the stack would wait out its ServiceTimeout.

    Raises:
        ConfigurationError: off Lambda, naming every missing answer.
    """
    unanswered = target.unanswered()
    if not unanswered:
        return None
    if not inside_lambda():
        raise ConfigurationError("every request type needs an answer: " + "; ".join(unanswered))
    from ._refusal import Refusal  # only for a function that refuses

    refusal = Refusal(unanswered)
    _logging.configure()
    _logging.logger.error("%s", refusal.reason)
    return refusal


def inside_lambda() -> bool:
    """Whether this process is a Lambda function's: Lambda's runtime (and the local Lambda
    service, for its workers) sets ``AWS_LAMBDA_RUNTIME_API``. The one place it is read."""
    return bool(os.environ.get(LAMBDA_RUNTIME_API_ENV))


def _prepare_during_init(runtime: Runtime) -> None:
    """Inside Lambda, build the journal's (and the codec's) clients while the module loads:
    Lambda's init phase has its own time limit, so the first invocation's deadline is not
    spent parsing service models (the hand-over's Lambda client is made once an operation
    runs long enough to need it: ``HandOff.warm_later``). Anything that fails here is retried
    on first use.

    The collector pauses meanwhile: loading the models makes about 100,000 objects that live
    as long as the process, and collecting while they are made cost a cold start about 30 ms
    (the cold-start benchmark's packaged Create, 361-372 ms against 334-335 ms with the pause,
    two alternating runs each way). They are then frozen (``gc.freeze``), so a warm
    invocation's full collections no longer walk them (32 ms each); the few cycles of garbage
    made meanwhile (about 1,200 objects) are frozen with them."""
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        # aiobotocore (and aiohttp, which it imports) before the loop runs: made inside
        # run_until_complete, the same imports took about 12 ms more of a cold start (the
        # median of 24 alternating cold starts of the packaged zip each way; the cause is not
        # pinned down).
        import_sdk()
        _persistent_loop().run_until_complete(runtime.prepare())
    except Exception as exc:
        logging.getLogger("asynccfn.runtime").warning("clients not prepared at init: %s", exc)
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
