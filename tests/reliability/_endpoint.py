"""A stand-in for S3's pre-signed response URLs that records every PUT and misbehaves on plan.

Each issued URL looks like CloudFormation's (SigV4 query: ``X-Amz-Date``, ``X-Amz-Expires``, a
random ``X-Amz-Signature``) and is checked like S3 checks it: the path and query must arrive
byte for byte as issued (else 403 SignatureDoesNotMatch) and an expired URL is refused (403
AccessDenied). Before answering normally, a URL works through its planned faults in order:

- ``Fault.status(503)``: an S3-style error document with that status; nothing stored;
- ``Fault.reset()``: the connection is dropped without an answer; nothing stored;
- ``Fault.slow(seconds)``: the body is stored, the answer comes ``seconds`` later (a client
  with a shorter read timeout gives up and tries again, as against a slow S3);
- ``Fault.redirect(location)``: 307 to ``location`` (which a client must not follow).

``forever`` repeats one fault for every PUT after the plan.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.reliability._tally import SECRETS, count
from tests.reliability._threaded import ThreadedApp

_S3_ERRORS = {
    403: ("AccessDenied", "Access Denied"),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Fault:
    kind: str  # "status", "reset", "slow" or "redirect"
    status: int = 0
    seconds: float = 0.0
    location: str = ""

    @classmethod
    def of_status(cls, status: int) -> Fault:
        return cls(kind="status", status=status)

    @classmethod
    def reset(cls) -> Fault:
        return cls(kind="reset")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls(kind="slow", seconds=seconds)

    @classmethod
    def redirect(cls, location: str) -> Fault:
        return cls(kind="redirect", status=307, location=location)


@dataclass(frozen=True, kw_only=True, slots=True)
class Put:
    """One PUT as the endpoint saw it, and what it did with it."""

    body: bytes
    headers: dict[str, str]
    answer: str  # "200", "503", "reset", "slow", ...
    stored: bool
    at: float


@dataclass(kw_only=True)
class _Slot:
    path: str  # path and query exactly as issued
    expires_at: float
    plan: list[Fault]
    forever: Fault | None
    expect_answer: bool
    puts: list[Put] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class IssuedURL:
    """One response URL: what CloudFormation would have handed the function."""

    url: str
    key: str
    endpoint: ResponseEndpoint

    def puts(self) -> list[Put]:
        return self.endpoint.puts(self.key)

    def stored(self) -> list[bytes]:
        """Every body the endpoint stored for this URL, oldest first."""
        return [put.body for put in self.puts() if put.stored]

    def response(self, timeout: float = 40.0) -> dict[str, Any]:
        """The response CloudFormation would read (waits for it; counts a loss on timeout)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            bodies = self.stored()
            if bodies:
                raw = bodies[-1]
                assert len(raw) <= 4096, f"response body of {len(raw)} bytes"
                decoded: dict[str, Any] = json.loads(raw)
                return decoded
            time.sleep(0.05)
        self.endpoint.mark_lost(self.key)
        raise AssertionError(f"no response within {timeout} s: a response was lost")

    def single_response(self, timeout: float = 40.0) -> dict[str, Any]:
        """The response, asserting every stored copy is the same bytes (re-posts of one
        recorded response are allowed; a different second answer is not)."""
        first = self.response(timeout)
        bodies = self.stored()
        assert len(set(bodies)) == 1, f"{len(set(bodies))} different responses: {bodies}"
        return first


class ResponseEndpoint(ThreadedApp):
    """The response endpoint; allow-list its ``host`` for the runtime to use it."""

    def __init__(self) -> None:
        super().__init__()
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self._lost: set[str] = set()

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def issue(
        self,
        *,
        faults: Sequence[Fault] = (),
        forever: Fault | None = None,
        issued_ago: float = 0.0,
        expires_in: int = 7200,
        expect_answer: bool = True,
    ) -> IssuedURL:
        """A fresh URL; ``issued_ago`` back-dates its X-Amz-Date."""
        key = str(uuid.uuid4())
        issued = time.time() - issued_ago
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(issued))
        key_id = f"AKIAEXAMPLE{secrets.token_hex(4).upper()}"
        credential = f"{key_id}%2F{stamp[:8]}%2Fus-east-1%2Fs3%2Faws4_request"
        path = (
            f"/cfn-responses/arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/"
            f"demo/{key}%7CDemoBucket%7C{key[:8]}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential={credential}&X-Amz-Date={stamp}&X-Amz-Expires={expires_in}"
            f"&X-Amz-SignedHeaders=host&X-Amz-Signature={secrets.token_hex(32)}"
        )
        url = f"{self.endpoint_url}{path}"
        with self._lock:
            self._slots[key] = _Slot(
                path=path,
                expires_at=issued + expires_in,
                plan=list(faults),
                forever=forever,
                expect_answer=expect_answer,
            )
        SECRETS.register_url(url)
        if expect_answer:
            count(responses_expected=1)
        return IssuedURL(url=url, key=key, endpoint=self)

    def plan(self, key: str, faults: Sequence[Fault], *, forever: Fault | None = None) -> None:
        """Replace the faults planned for ``key`` (an empty plan: answer normally)."""
        with self._lock:
            slot = self._slots[key]
            slot.plan = list(faults)
            slot.forever = forever

    def puts(self, key: str) -> list[Put]:
        with self._lock:
            return list(self._slots[key].puts)

    def mark_lost(self, key: str) -> None:
        with self._lock:
            if key not in self._lost:
                self._lost.add(key)
                count(responses_lost=1)

    def unanswered(self) -> list[str]:
        """Keys of URLs expecting an answer that never stored one (each counted as lost)."""
        with self._lock:
            keys = [
                key
                for key, slot in self._slots.items()
                if slot.expect_answer and not any(p.stored for p in slot.puts)
            ]
        for key in keys:
            self.mark_lost(key)
        return keys

    def forget(self) -> None:
        with self._lock:
            self._slots.clear()
            self._lost.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        key = _key_of(request.path)
        with self._lock:
            slot = self._slots.get(key) if key else None
        if slot is None or request.method != "PUT":
            return _s3_error(404, "NoSuchBucket", "The specified bucket does not exist")
        headers = dict(request.headers)
        if request.raw_path != slot.path:
            self._note(slot, body, headers, "403-signature", stored=False)
            return _s3_error(403, "SignatureDoesNotMatch", "The request signature does not match")
        if time.time() > slot.expires_at:
            self._note(slot, body, headers, "403-expired", stored=False)
            return _s3_error(403, "AccessDenied", "Request has expired")
        with self._lock:
            fault = slot.plan.pop(0) if slot.plan else slot.forever
        if fault is None:
            self._note(slot, body, headers, "200", stored=True)
            return web.Response(status=200)
        if fault.kind == "status":
            self._note(slot, body, headers, str(fault.status), stored=False)
            code, message = _S3_ERRORS.get(fault.status, ("InternalError", "Error"))
            return _s3_error(fault.status, code, message)
        if fault.kind == "redirect":
            self._note(slot, body, headers, "307", stored=False)
            return web.Response(status=307, headers={"Location": fault.location})
        if fault.kind == "reset":
            self._note(slot, body, headers, "reset", stored=False)
            _reset(request)
            raise asyncio.CancelledError  # aiohttp drops the handler quietly
        self._note(slot, body, headers, "slow", stored=True)
        await asyncio.sleep(fault.seconds)
        return web.Response(status=200)

    def _note(
        self, slot: _Slot, body: bytes, headers: dict[str, str], answer: str, *, stored: bool
    ) -> None:
        put = Put(body=body, headers=headers, answer=answer, stored=stored, at=time.time())
        with self._lock:
            slot.puts.append(put)


def _key_of(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) < 4 or parts[1] != "cfn-responses":
        return None
    # .../stack/demo/<key>|DemoBucket|... (the path arrives decoded)
    return parts[-1].split("|")[0] or None


def _s3_error(status: int, code: str, message: str) -> web.Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=xml, content_type="application/xml")


def _reset(request: web.Request) -> None:
    """Drop the connection with a TCP reset (SO_LINGER 0), as a failing load balancer does."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            raw = socket.socket(fileno=sock.fileno())
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.detach()
        except OSError:
            pass
    transport.abort()
