"""Delivering response bodies over real HTTP (asynccfn._responder).

Two real servers, each started once per module in its own thread: moto's S3 server (a
pre-signed PUT stored and read back) and a small aiohttp server of this module's own that
answers with scripted faults and records every request as it arrived on the wire.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from moto.server import ThreadedMotoServer
from protocol_events import STACK_ID, url_secrets

from asynccfn._errors import (
    ConfigurationError,
    DeliveryError,
    ResponseURLRefused,
    UndeliverableResponse,
)
from asynccfn._protocol import Echo, Response, Status, build_body
from asynccfn._responder import DeliveryPolicy, Responder

T = TypeVar("T")

BODY = build_body(
    Response(status=Status.SUCCESS, physical_id="demo-bucket", data={"Arn": "arn:aws:s3:::x"}),
    Echo(stack_id=STACK_ID, request_id="0f5f0c1e", logical_id="DemoBucket"),
)
QUICK = DeliveryPolicy(
    attempts=4, base_delay=0.01, max_delay=0.05, connect_timeout=2.0, read_timeout=0.3
)
SLOW_SECONDS = 3.0


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(main())  # type: ignore[arg-type]


async def put_with(responder: Responder, url: str, **kwargs: Any) -> int:
    try:
        return await responder.put(url, BODY, **kwargs)
    finally:
        await responder.close()


# --- a fault-injecting receiver --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Seen:
    raw_path: str
    raw_headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    peer_port: int


S3_ERRORS = {
    "403": (
        403,
        "<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
        "<X-Amz-Expires>7200</X-Amz-Expires></Error>",
    ),
    "sig403": (
        403,
        "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we "
        "calculated does not match the signature you provided</Message>"
        "<SignatureProvided>{signature}</SignatureProvided>"
        "<CanonicalRequest>PUT\n{path}\n{query}</CanonicalRequest></Error>",
    ),
    "404": (404, "<Error><Code>NoSuchBucket</Code></Error>"),
    "400": (400, "<Error><Code>MalformedXML</Code></Error>"),
    "timeout400": (400, "<Error><Code>RequestTimeout</Code></Error>"),
    "500": (500, "<Error><Code>InternalError</Code></Error>"),
    "503": (503, "<Error><Code>SlowDown</Code><Message>Please reduce your rate</Message></Error>"),
    "429": (429, ""),
    "307": (307, ""),
}


class FaultServer:
    """Serves PUT /<fault>/<count>/<token>/<anything>.

    The first <count> requests for a token ("all": every one) get <fault>; later ones 200.
    """

    def __init__(self) -> None:
        self._seen: dict[str, list[Seen]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault server did not start")

    def stop(self) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def url(self, fault: str, count: int | str = "all") -> tuple[str, str]:
        """A fresh (url, token); the URL has a pre-signed query and an encoded key."""
        token = uuid.uuid4().hex
        key = f"arn%3Aaws%3Acloudformation%3Aus-east-1%3A1%3Astack/s/x%7CRes%7C{token}"
        query = (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261122T120000Z"
            "&X-Amz-Credential=AKIAEXAMPLE%2F20261122%2Fus-east-1%2Fs3%2Faws4_request"
            f"&X-Amz-Expires=7200&X-Amz-SignedHeaders=host&X-Amz-Signature={token}{token}"
        )
        return f"http://127.0.0.1:{self.port}/{fault}/{count}/{token}/{key}?{query}", token

    def seen(self, token: str) -> list[Seen]:
        with self._lock:
            return list(self._seen.get(token, []))

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_put("/{fault}/{count}/{token}/{rest:.*}", self._handle)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = request.match_info["fault"]
        count = request.match_info["count"]
        token = request.match_info["token"]
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        with self._lock:
            seen = self._seen.setdefault(token, [])
            seen.append(
                Seen(
                    raw_path=request.raw_path,
                    raw_headers=tuple(request.raw_headers),
                    body=body,
                    peer_port=peer[1] if peer else 0,
                )
            )
            number = len(seen)
        if fault == "ok" or (count != "all" and number > int(count)):
            return web.Response(status=200)
        if fault == "reset":
            assert request.transport is not None
            sock = request.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.transport.abort()
            raise asyncio.CancelledError
        if fault == "slow":
            await asyncio.sleep(SLOW_SECONDS)
            return web.Response(status=200)
        status, text = S3_ERRORS[fault]
        path, _, query = request.raw_path.partition("?")
        text = text.format(signature=token + token, path=path, query=query)
        headers = {"Location": "http://127.0.0.1:1/elsewhere"} if status == 307 else {}
        return web.Response(
            status=status, text=text, content_type="application/xml", headers=headers
        )


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    server = FaultServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def responder_for(faults: FaultServer) -> Callable[..., Responder]:
    def make(policy: DeliveryPolicy = QUICK) -> Responder:
        return Responder(allowed_hosts=frozenset({f"127.0.0.1:{faults.port}"}), policy=policy)

    return make


# --- moto's S3 -------------------------------------------------------------------------------

BUCKET = "cfn-responses"


@dataclass(frozen=True, kw_only=True)
class S3:
    client: Any
    host: str


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield S3(client=client, host=f"{host}:{port}")
    finally:
        client.close()
        server.stop()


def test_put_to_a_presigned_s3_url_stores_the_body_under_the_exact_key(s3: S3) -> None:
    key = f"{STACK_ID}|DemoBucket|{uuid.uuid4()}"
    url = s3.client.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=3600
    )
    assert "%3A" in url and "%7C" in url and "X-Amz-Signature=" in url
    responder = Responder(allowed_hosts=frozenset({s3.host}))
    assert run(lambda: put_with(responder, url)) == 200
    stored = s3.client.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == BODY
    listed = s3.client.list_objects_v2(Bucket=BUCKET, Prefix=STACK_ID)
    assert key in [item["Key"] for item in listed["Contents"]]


def test_sigv2_style_url_reaches_s3(s3: S3) -> None:
    key = f"{STACK_ID}|Legacy|{uuid.uuid4()}"
    path = f"/{BUCKET}/" + key.replace(":", "%3A").replace("|", "%7C")
    url = (
        f"http://{s3.host}{path}?AWSAccessKeyId=AKIAEXAMPLE&Expires=1795356000"
        "&Signature=abc%2Bdef%3D"
    )
    responder = Responder(allowed_hosts=frozenset({s3.host}))
    assert run(lambda: put_with(responder, url)) == 200
    assert s3.client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == BODY


# --- what goes on the wire -------------------------------------------------------------------


def test_request_on_the_wire_is_exactly_as_signed(
    faults: FaultServer, responder_for: Callable[..., Responder]
) -> None:
    url, token = faults.url("ok")
    assert run(lambda: put_with(responder_for(), url)) == 200
    [seen] = faults.seen(token)
    assert seen.raw_path == url.split(f"{faults.port}", 1)[1]
    assert "%3A" in seen.raw_path and "%7C" in seen.raw_path and "%2F" in seen.raw_path
    assert seen.body == BODY
    names = [name.lower() for name, _ in seen.raw_headers]
    assert b"content-type" not in names
    assert (b"content-length", str(len(BODY)).encode()) in [
        (name.lower(), value) for name, value in seen.raw_headers
    ]


def test_one_session_is_reused(
    faults: FaultServer, responder_for: Callable[..., Responder]
) -> None:
    first, first_token = faults.url("ok")
    second, second_token = faults.url("ok")
    responder = responder_for()

    async def main() -> None:
        await responder.put(first, BODY)
        await responder.put(second, BODY)
        await responder.close()

    run(main)
    [one] = faults.seen(first_token)
    [two] = faults.seen(second_token)
    assert one.peer_port == two.peer_port  # the same keep-alive connection


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["503", "500", "429", "timeout400"])
def test_transient_statuses_are_retried(
    faults: FaultServer, responder_for: Callable[..., Responder], fault: str
) -> None:
    url, token = faults.url(fault, 3)
    assert run(lambda: put_with(responder_for(), url)) == 200
    seen = faults.seen(token)
    assert len(seen) == 4
    assert {item.body for item in seen} == {BODY}


def test_retries_are_bounded(faults: FaultServer, responder_for: Callable[..., Responder]) -> None:
    url, token = faults.url("503")
    with pytest.raises(DeliveryError) as caught:
        run(lambda: put_with(responder_for(), url))
    assert type(caught.value) is DeliveryError
    assert "after 4 attempts" in str(caught.value)
    assert "HTTP 503 SlowDown" in str(caught.value)
    assert f"127.0.0.1:{faults.port}" in str(caught.value)
    assert len(faults.seen(token)) == 4


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("403", "HTTP 403 AccessDenied (Request has expired)"),
        ("sig403", "HTTP 403 SignatureDoesNotMatch"),
        ("404", "HTTP 404 NoSuchBucket"),
        ("400", "HTTP 400 MalformedXML"),
        ("307", "HTTP 307"),
    ],
)
def test_refusals_are_final_without_retry(
    faults: FaultServer, responder_for: Callable[..., Responder], fault: str, expected: str
) -> None:
    url, token = faults.url(fault)
    with pytest.raises(UndeliverableResponse) as caught:
        run(lambda: put_with(responder_for(), url))
    message = str(caught.value)
    assert expected in message
    assert f"127.0.0.1:{faults.port}" in message
    assert len(faults.seen(token)) == 1
    for secret in url_secrets(url):
        assert secret not in message


def test_connection_reset_is_retried(
    faults: FaultServer, responder_for: Callable[..., Responder]
) -> None:
    # aiohttp itself resends an idempotent request once on a failed connection, so two
    # resets on the wire make one failed attempt of ours.
    url, token = faults.url("reset", 2)
    assert run(lambda: put_with(responder_for(), url)) == 200
    seen = faults.seen(token)
    assert len(seen) == 3
    assert seen[-1].body == BODY


def test_connection_resets_exhaust_the_attempts(
    faults: FaultServer, responder_for: Callable[..., Responder]
) -> None:
    url, _ = faults.url("reset")
    with pytest.raises(DeliveryError, match=r"after 4 attempts \(last: connection failed"):
        run(lambda: put_with(responder_for(), url))


def test_refused_connection_is_retried_then_fails(responder_for: Callable[..., Responder]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    responder = Responder(allowed_hosts=frozenset({f"127.0.0.1:{port}"}), policy=QUICK)
    with pytest.raises(DeliveryError, match="cannot connect"):
        run(lambda: put_with(responder, f"http://127.0.0.1:{port}/k?X-Amz-Signature=s"))


def test_slow_response_beyond_the_read_timeout_is_retried(
    faults: FaultServer, responder_for: Callable[..., Responder]
) -> None:
    url, token = faults.url("slow", 1)
    started = time.monotonic()
    assert run(lambda: put_with(responder_for(), url)) == 200
    assert time.monotonic() - started < SLOW_SECONDS
    assert len(faults.seen(token)) == 2


# --- deadlines -------------------------------------------------------------------------------


def test_deadline_cuts_a_slow_attempt(
    faults: FaultServer, responder_for: Callable[..., Responder]
) -> None:
    url, token = faults.url("slow")
    patient = DeliveryPolicy(attempts=6, base_delay=0.01, read_timeout=30.0)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.5
        with pytest.raises(DeliveryError, match="deadline"):
            await put_with(responder_for(patient), url, deadline=deadline)
        return loop.time() - deadline

    overrun = run(main)
    assert overrun < 0.25
    assert len(faults.seen(token)) == 1


def test_no_attempt_starts_after_the_deadline(
    faults: FaultServer, responder_for: Callable[..., Responder]
) -> None:
    url, token = faults.url("ok")

    async def main() -> None:
        deadline = asyncio.get_running_loop().time() - 1
        with pytest.raises(DeliveryError, match="deadline came before attempt 1"):
            await put_with(responder_for(), url, deadline=deadline)

    run(main)
    assert faults.seen(token) == []


def test_no_retry_is_scheduled_past_the_deadline(
    faults: FaultServer, responder_for: Callable[..., Responder]
) -> None:
    url, token = faults.url("503")
    slow_backoff = DeliveryPolicy(attempts=6, base_delay=10.0, max_delay=10.0)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(DeliveryError, match="deadline"):
            # The first backoff is drawn from [0, 10 s]; ask for one that cannot fit.
            await put_with(responder_for(slow_backoff), url, deadline=started + 0.001 + 0.2)
        return loop.time() - started

    elapsed = run(main)
    assert elapsed < 1.0
    assert len(faults.seen(token)) >= 1


# --- refusals before any I/O, policy, loop ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/key?X-Amz-Signature=s",
        "http://169.254.169.254/latest/meta-data/",
        "http://bucket.s3.amazonaws.com/key",
        "https://user:pw@bucket.s3.amazonaws.com/key",
    ],
)
def test_url_refused_by_the_allow_list(url: str) -> None:
    responder = Responder(allowed_hosts=frozenset())
    with pytest.raises(ResponseURLRefused):
        run(lambda: put_with(responder, url))


def test_allowed_hosts_default_to_the_environment(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token = faults.url("ok")
    monkeypatch.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", f"example.test, 127.0.0.1:{faults.port}")
    assert run(lambda: put_with(Responder(policy=QUICK), url)) == 200
    monkeypatch.delenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS")
    with pytest.raises(ResponseURLRefused):
        run(lambda: put_with(Responder(policy=QUICK), url))
    assert len(faults.seen(token)) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"attempts": 0},
        {"base_delay": -1.0},
        {"max_delay": float("nan")},
        {"connect_timeout": 0.0},
        {"read_timeout": float("inf")},
    ],
)
def test_policy_rejects_bad_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        DeliveryPolicy(**changes)


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = DeliveryPolicy(base_delay=0.5, max_delay=8.0)
    for attempt, cap in [(1, 0.5), (2, 1.0), (4, 4.0), (5, 8.0), (40, 8.0), (5000, 8.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0.0 <= delay <= cap for delay in delays)
        assert max(delays) > cap / 2


def test_a_responder_belongs_to_one_loop(
    faults: FaultServer, responder_for: Callable[..., Responder]
) -> None:
    url, _ = faults.url("ok")
    responder = responder_for()
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert first.run_until_complete(responder.put(url, BODY)) == 200
        with pytest.raises(ConfigurationError, match="another event loop"):
            second.run_until_complete(responder.put(url, BODY))
        first.run_until_complete(responder.close())
        assert second.run_until_complete(put_with(responder, url)) == 200
    finally:
        first.close()
        second.close()


def test_responder_is_an_async_context_manager(faults: FaultServer) -> None:
    url, _ = faults.url("ok")

    async def main() -> int:
        async with Responder(allowed_hosts=frozenset({f"127.0.0.1:{faults.port}"})) as responder:
            return await responder.put(url, BODY)

    assert run(main) == 200


# --- the URL stays secret --------------------------------------------------------------------


def test_url_never_appears_in_logs_or_errors(
    faults: FaultServer,
    responder_for: Callable[..., Responder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    urls = [faults.url(fault, count)[0] for fault, count in [("ok", 0), ("503", 2), ("reset", 2)]]
    failing = [faults.url(fault)[0] for fault in ["403", "sig403", "503", "reset", "slow"]]
    texts: list[str] = []

    async def main() -> None:
        responder = responder_for()
        for url in urls:
            await responder.put(url, BODY)
        for url in failing:
            try:
                await responder.put(url, BODY)
            except DeliveryError as exc:
                texts.append("".join(traceback.format_exception(exc)))
                texts.append(repr(exc))
        await responder.close()

    run(main)
    assert len(texts) == 2 * len(failing)
    ours = [record for record in caplog.records if record.name.startswith("asynccfn")]
    assert any("retrying" in record.getMessage() for record in ours)
    assert any("delivered" in record.getMessage() for record in ours)
    texts.extend(record.getMessage() for record in ours)
    texts.extend(str(record.args) for record in ours)
    for url in urls + failing:
        for secret in url_secrets(url):
            for text in texts:
                assert secret not in text
