"""The only module that speaks HTTP to CloudFormation: PUT a response body to its ResponseURL.

The URL is pre-signed for the ``host`` header only, so the request carries the URL exactly as
signed (no re-encoding of ``%3A`` or ``%7C``) and no Content-Type at all. Transient failures
(5xx, 429, S3's RequestTimeout, connection errors, timeouts) are retried with full-jitter
exponential backoff inside the caller's deadline; refusals (403 for an expired or forged URL,
other 4xx) are final. Connecting has a short timeout of its own: S3 accepts a connection in
milliseconds, so one that does not open in seconds has no route (a function in a VPC without
an S3 gateway endpoint or NAT, the first cause of stacks stuck for an hour). That is logged
as such at once, and after ``unreachable_after`` such attempts in a row ``put`` stops with
:class:`ResponseUnreachable` instead of spending the invocation on more.

The URL is a bearer credential: log lines and error messages name its host only, and aiohttp's
exceptions (whose text can hold the URL) are described, never chained.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from asynccfn._errors import (
    ConfigurationError,
    DeliveryError,
    ResponseUnreachable,
    ResponseURLRefused,
    UndeliverableResponse,
)
from asynccfn._protocol import allowed_hosts_from_env, check_response_url, describe_url

if TYPE_CHECKING:
    import aiohttp
    import yarl

__all__ = ["DeliveryPolicy", "Responder"]

logger = logging.getLogger("asynccfn.responder")

# Enough of an S3 error document to read its Code and Message.
_ERROR_BODY_LIMIT = 4096
# S3's error body, read only when a PUT is refused: compiled on first use (by re's cache).
_S3_CODE = r"<Code>([A-Za-z0-9.]{1,64})</Code>"
_S3_MESSAGE = r"<Message>([A-Za-z0-9 .,;:'()/_-]{1,200})</Message>"
# S3 answers 400 with these codes for faults of the connection, not of the request.
_TRANSIENT_S3_CODES = frozenset({"RequestTimeout", "SlowDown", "InternalError"})


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryPolicy:
    """How hard ``Responder.put`` tries.

    ``attempts`` PUTs at most; before attempt n+1 it sleeps a random time in
    [0, min(max_delay, base_delay * 2**(n-1))] (full jitter). ``connect_timeout`` bounds
    connecting, ``read_timeout`` each wait for response bytes; an attempt as a whole is
    bounded by their sum. ``unreachable_after`` connect timeouts in a row end the attempts
    (:class:`ResponseUnreachable`): no route will appear within this invocation, and Lambda's
    retry of it tries again later.

    Raises:
        ConfigurationError: a value out of range.
    """

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 8.0
    connect_timeout: float = 3.0
    read_timeout: float = 15.0
    unreachable_after: int = 2

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError(f"DeliveryPolicy.attempts must be >= 1; got {self.attempts}")
        if self.unreachable_after < 1:
            raise ConfigurationError(
                f"DeliveryPolicy.unreachable_after must be >= 1; got {self.unreachable_after}"
            )
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigurationError(f"DeliveryPolicy.{name} must be >= 0; got {value}")
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"DeliveryPolicy.{name} must be > 0; got {value}")

    def delay(self, attempt: int) -> float:
        """A full-jitter delay to sleep after failed attempt number ``attempt`` (1-based)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 62))
        return random.uniform(0.0, cap)


_DEFAULT_POLICY = DeliveryPolicy()


class _Outcome(NamedTuple):
    """One attempt's result: an HTTP status, or None when no response came."""

    status: int | None
    detail: str
    retryable: bool
    connect_timed_out: bool = False


class Responder:
    """PUTs response bodies to pre-signed ResponseURLs, over one reused HTTP session.

    Create one per process and event loop; the aiohttp session is created on first use and
    bound to that loop. ``allowed_hosts`` None reads ASYNCCFN_ALLOWED_RESPONSE_HOSTS.
    Usable as ``async with Responder() as responder``.
    """

    def __init__(
        self,
        *,
        allowed_hosts: frozenset[str] | None = None,
        policy: DeliveryPolicy = _DEFAULT_POLICY,
    ) -> None:
        self._allowed_hosts = allowed_hosts_from_env() if allowed_hosts is None else allowed_hosts
        self._policy = policy
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> Responder:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def put(self, url: str, body: bytes, *, deadline: float | None = None) -> int:
        """PUT ``body`` to ``url`` and return the 2xx status it was accepted with.

        ``deadline`` is an absolute time on the running loop's clock (``loop.time()``); no
        attempt starts at or after it, and one still running when it comes is abandoned.

        Raises:
            ResponseURLRefused: the URL is not allowed (nothing was sent).
            UndeliverableResponse: the URL refused the body for good (403, 400, 404, other
                4xx, a redirect); no retry can help. S3's 400 RequestTimeout is a fault of
                the connection and is retried like a 5xx, 429 or 408.
            ResponseUnreachable: connecting timed out ``unreachable_after`` times in a row.
            DeliveryError: the attempts ran out or the deadline came first; a later try of
                the same response may succeed.
            ConfigurationError: the Responder was first used on another event loop.
        """
        check_response_url(url, allowed_hosts=self._allowed_hosts)
        where = describe_url(url)
        loop = asyncio.get_running_loop()
        end = math.inf if deadline is None else deadline
        session = self._session_for(loop)
        target = self._target(url)
        policy = self._policy
        last: _Outcome | None = None
        connect_timeouts = 0
        for attempt in range(1, policy.attempts + 1):
            if loop.time() >= end:
                raise DeliveryError(
                    f"response to {where} not delivered: the deadline came before attempt "
                    f"{attempt}" + (f" (last: {last.detail})" if last else "")
                )
            outcome = await self._attempt(session, target, body, loop=loop, end=end)
            if outcome.status is not None and 200 <= outcome.status < 300:
                logger.info(
                    "response delivered to %s: HTTP %d (attempt %d)",
                    where,
                    outcome.status,
                    attempt,
                )
                return outcome.status
            if not outcome.retryable:
                raise UndeliverableResponse(
                    f"response to {where} refused for good: {outcome.detail}"
                )
            last = outcome
            connect_timeouts = connect_timeouts + 1 if outcome.connect_timed_out else 0
            if connect_timeouts == 1:
                logger.error(
                    "response PUT to %s: connect timed out after %.1fs: the function has no "
                    "route to %s. In a VPC it needs an S3 gateway endpoint on its subnets' "
                    "route tables, or a NAT gateway (asynccfn doctor --function NAME checks)",
                    _host(target),
                    policy.connect_timeout,
                    _host(target),
                )
            if connect_timeouts >= policy.unreachable_after:
                raise ResponseUnreachable(
                    f"response could not reach {_host(target)}: connect timed out "
                    "(function in a VPC without an S3 route?)",
                    host=_host(target),
                )
            if attempt == policy.attempts:
                break
            delay = policy.delay(attempt)
            if loop.time() + delay >= end:
                raise DeliveryError(
                    f"response to {where} not delivered: the deadline comes before attempt "
                    f"{attempt + 1} could start (last: {outcome.detail})"
                )
            logger.warning(
                "response PUT to %s failed (attempt %d of %d): %s; retrying in %.2fs",
                where,
                attempt,
                policy.attempts,
                outcome.detail,
                delay,
            )
            await asyncio.sleep(delay)
        detail = last.detail if last else "no attempt made"
        raise DeliveryError(
            f"response to {where} not delivered after {policy.attempts} attempts (last: {detail})"
        )

    async def close(self) -> None:
        """Close the HTTP session, if one was opened; a later ``put`` opens a new one."""
        session, self._session, self._loop = self._session, None, None
        if session is not None:
            await session.close()

    def _session_for(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        """The session, created on first use.

        Raises:
            ConfigurationError: the session belongs to another event loop.
        """
        if self._session is not None:
            if self._loop is not loop:
                raise ConfigurationError(
                    "this Responder's HTTP session belongs to another event loop; "
                    "create one Responder per loop"
                )
            return self._session
        import aiohttp

        policy = self._policy
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=policy.connect_timeout,
                sock_read=policy.read_timeout,
            ),
            # The URL is signed for the host header alone; S3 would store a Content-Type
            # with the object, and CloudFormation's reader expects none.
            skip_auto_headers=("Content-Type",),
            raise_for_status=False,
        )
        self._loop = loop
        return self._session

    @staticmethod
    def _target(url: str) -> yarl.URL:
        """The URL as aiohttp will send it: encoded as given, never re-quoted.

        Raises:
            ResponseURLRefused: the HTTP client reads another host than the allow-list did.
        """
        import yarl

        target = yarl.URL(url, encoded=True)
        checked = urlsplit(url).hostname
        if target.host is None or checked is None or target.host.lower() != checked.lower():
            raise ResponseURLRefused("ResponseURL's host is ambiguous; refused")
        return target

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        target: yarl.URL,
        body: bytes,
        *,
        loop: asyncio.AbstractEventLoop,
        end: float,
    ) -> _Outcome:
        """One PUT, bounded by the policy's timeouts and the deadline; never raises for I/O."""
        policy = self._policy
        attempt_end = min(end, loop.time() + policy.connect_timeout + policy.read_timeout)
        try:
            async with asyncio.timeout_at(attempt_end):
                async with session.put(
                    target,
                    data=body,
                    allow_redirects=False,
                ) as response:
                    status = response.status
                    error_body = b""
                    if not 200 <= status < 300:
                        error_body = await response.content.read(_ERROR_BODY_LIMIT)
        except Exception as exc:
            return _translate(exc, deadline_passed=loop.time() >= end)
        return _classify(status, error_body)


def _host(target: yarl.URL) -> str:
    """The host (and a port that is not the scheme's default) a PUT connects to."""
    return f"{target.host}:{target.port}" if target.explicit_port else str(target.host)


def _translate(exc: Exception, *, deadline_passed: bool) -> _Outcome:
    """The one place aiohttp's (and the socket layer's) errors become outcomes.

    The outcome's detail names the error's type and, for connection errors, the OS reason;
    never the exception's text, which can contain the URL.

    Raises:
        Exception: ``exc`` itself when it is not an I/O failure (a bug, not a delivery fault).
    """
    import aiohttp

    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # sock_connect ran out
        return _Outcome(
            status=None, detail="connect timed out", retryable=True, connect_timed_out=True
        )
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        detail = "the deadline came during the attempt" if deadline_passed else "timed out"
        return _Outcome(status=None, detail=detail, retryable=True)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _Outcome(
            status=None,
            detail=f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})",
            retryable=True,
        )
    if isinstance(exc, aiohttp.ClientError | ConnectionError | OSError):
        return _Outcome(
            status=None,
            detail=f"connection failed ({type(exc).__name__})",
            retryable=True,
        )
    raise exc


def _classify(status: int, error_body: bytes) -> _Outcome:
    """Whether an HTTP status (with S3's error document, if any) is worth another attempt."""
    text = error_body.decode("utf-8", "replace")
    code_match = re.search(_S3_CODE, text)
    code = code_match.group(1) if code_match else None
    message_match = re.search(_S3_MESSAGE, text)
    detail = f"HTTP {status}"
    if code:
        detail += f" {code}"
    if message_match:
        detail += f" ({message_match.group(1)})"
    retryable = status >= 500 or status in (408, 429) or code in _TRANSIENT_S3_CODES
    return _Outcome(status=status, detail=detail, retryable=retryable)
