"""A ResponseURL whose host accepts no connection (a function in a VPC without a route to S3):
the PUT gives up within seconds, the log names the likely cause, and ``asynccfn journal show``
says why the response is not delivered."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

import asynccfn
from asynccfn import cli
from tests.support import (
    FakeLambdaContext,
    closing_handler,
    create_journal_table,
    event_for,
    event_op_id,
)

resource = asynccfn.Resource(update="replace", delete="nothing")


@resource.create
async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    return asynccfn.Success(physical_id="made")


@pytest.fixture
def blackhole() -> Iterator[str]:
    """``host:port`` of a socket that listens and never accepts, its backlog already full:
    the kernel drops further SYNs, so a connect hangs as it does without a route."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(3):  # more than the accept queue of a backlog of 0 holds
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    time.sleep(0.1)
    host, port = listener.getsockname()
    try:
        yield f"{host}:{port}"
    finally:
        for sock in (*fillers, listener):
            sock.close()


def test_a_response_host_that_accepts_no_connection_is_named_within_seconds(
    blackhole: str,
    dynamodb_endpoint: str,
    presigned_response_url: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:

    table = create_journal_table(dynamodb_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", blackhole)
    url, _ = presigned_response_url()  # type: ignore[operator]
    parts = urlsplit(url)
    url = urlunsplit(("http", blackhole, parts.path, parts.query, ""))
    event = event_for("create", url)
    handler = asynccfn.lambda_entry(resource, journal=table)
    started = time.monotonic()
    capsys.readouterr()
    with closing_handler(handler), pytest.raises(asynccfn.DeliveryError) as raised:
        handler(event, FakeLambdaContext())
    elapsed = time.monotonic() - started
    # two connect attempts of 3 s and a jittered pause of at most 0.5 s, not minutes
    assert elapsed < 10, elapsed
    assert str(raised.value) == (
        f"response could not reach {blackhole}: connect timed out "
        "(function in a VPC without an S3 route?)"
    )
    # the function's log (JSON lines on stdout, as in CloudWatch)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    logged = [line["message"] for line in lines if line.get("logger") == "asynccfn.responder"]
    assert any(
        f"response PUT to {blackhole}: connect timed out after 3.0s" in line
        and "S3 gateway endpoint" in line
        and "NAT" in line
        for line in logged
    ), logged

    op_id = event_op_id(event)
    code = cli.main(
        [
            "journal",
            "show",
            op_id[:12],
            "--table",
            table,
            "--endpoint-url",
            dynamodb_endpoint,
            "--region",
            "us-east-1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        f"response could not reach {blackhole}: connect timed out "
        "(function in a VPC without an S3 route?)"
    ) in out
