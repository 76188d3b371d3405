"""Secrets in errors, and hostile events (DESIGN.md invariants 1, 12 and 13): a chained cause
that repeats the ResponseURL, a long error cut inside the URL, an error repeating a sensitive
step's result, an exception whose ``str()`` fails, a ResponseURL key made to backtrack. Each
plants its secret (or hostile event) and checks what asynccfn logs, answers and raises. In
process, no AWS: the runtime without a journal, and a responder that records its PUTs."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import asynccfn
from asynccfn import _logging
from asynccfn._errors import RequestError
from asynccfn._protocol import parse_request
from asynccfn._runtime import Runtime, RuntimeConfig
from asynccfn._urls import MAX_URL_LENGTH
from tests.support import FakeLambdaContext, event_for

SIGNATURE = "5d3c1b0a9e8f7a6b" * 4  # 64 hex digits, as SigV4's
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/review/1"
LOGICAL_ID = "MyRes"
REQUEST_ID = "review-request-1"
BUCKET_HOST = "cloudformation-custom-resource-response-useast1.s3.amazonaws.com"


def response_url() -> str:
    """A CloudFormation-style ResponseURL naming this module's operation, issued now."""
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    key = (
        "arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/review/1"
        f"%7C{LOGICAL_ID}%7C{REQUEST_ID}"
    )
    return (
        f"https://{BUCKET_HOST}/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={now}"
        f"&X-Amz-Expires=7200&X-Amz-SignedHeaders=host&X-Amz-Signature={SIGNATURE}"
    )


def event(url: str) -> dict[str, Any]:
    ev = event_for("create", url, request_id=REQUEST_ID)
    ev["StackId"] = STACK_ID
    ev["LogicalResourceId"] = LOGICAL_ID
    return ev


class RecordingResponder:
    """Stands in for the Responder: keeps each PUT's body (every PUT is accepted)."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    async def put(self, url: str, body: bytes, *, deadline: float | None = None) -> int:
        self.bodies.append(body.decode())
        return 200

    async def close(self) -> None:
        pass


def run_create(
    create: Callable[[asynccfn.Request, asynccfn.Context], Any],
) -> tuple[Any, RecordingResponder]:
    """Run one Create through the runtime (no journal) with ``create`` as its handler."""
    _logging.configure()  # what lambda_entry does first: the masking filter on our loggers
    resource = asynccfn.Resource("Custom::Bucket", update="replace", delete="nothing")
    resource.create(create)
    runtime = Runtime(
        RuntimeConfig(
            resource=resource,
            journal=None,
            reserve=1.0,
            timeout=600,
            lease=30,
            retention=86400,
        )
    )
    responder = RecordingResponder()
    runtime.outbox._responder = responder  # type: ignore[assignment]

    async def go() -> Any:
        try:
            return await runtime.invoke(event(response_url()), FakeLambdaContext(30))
        finally:
            await runtime.close()

    return asyncio.run(go()), responder


@pytest.fixture
def lines(asynccfn_logs: list[str]) -> Iterator[list[str]]:
    """The JSON lines the ``asynccfn`` loggers write during the test (conftest's capture)."""
    yield asynccfn_logs


# -- 1. a chained exception prints the ResponseURL in the handler's traceback -------------------


def test_a_cause_that_repeats_the_url_is_masked_in_the_logged_traceback(
    lines: list[str],
) -> None:
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        try:
            raise ValueError(f"upstream refused the callback {request.response_url}")
        except ValueError as exc:
            raise RuntimeError("could not register the callback") from exc

    result, responder = run_create(create)
    assert result.outcome == "FAILED"
    assert SIGNATURE not in responder.bodies[0]  # the Reason names the outer error only
    leaked = [line for line in lines if SIGNATURE in line]
    assert not leaked, f"the ResponseURL's signature was logged: {leaked[0][:400]}..."


# -- 2. the Reason is cut before it is masked ---------------------------------------------------


def test_a_long_error_cut_inside_the_url_leaves_no_part_of_the_signature(
    lines: list[str],
) -> None:
    # failure_reason keeps "Type: message" to 2048 characters (2047 and an ellipsis); this
    # message ends with the URL so that the cut falls 4 characters before its end.
    shown = 2047 - len("RuntimeError: ")

    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        url = request.response_url
        raise RuntimeError("x" * (shown - (len(url) - 4)) + url)

    result, responder = run_create(create)
    assert result.outcome == "FAILED"
    partial = SIGNATURE[:60]  # all but 16 bits of the signature: a brute force away
    assert partial not in responder.bodies[0], "the Reason sent holds the signature"
    leaked = [line for line in lines if partial in line]
    assert not leaked, f"the signature was logged: {leaked[0][:200]}..."


# -- 3. a sensitive step's result in a later error ----------------------------------------------

SECRET = "pw-7f3a9c1e5b2d4f60-review"


def test_a_sensitive_step_result_repeated_by_an_error_stays_out_of_reason_and_logs(
    lines: list[str],
) -> None:
    async def fetch_password() -> str:
        return SECRET

    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        password = await ctx.step("fetch-password", fetch_password, sensitive=True)
        raise RuntimeError(f"the database refused admin:{password}")

    result, responder = run_create(create)
    assert result.outcome == "FAILED"
    assert SECRET not in responder.bodies[0], "the sensitive step's result is in the Reason"
    leaked = [line for line in lines if SECRET in line]
    assert not leaked, f"the sensitive step's result was logged: {leaked[0][:200]}..."


def test_a_sensitive_step_result_answered_as_noecho_data_is_sent_as_it_is(
    lines: list[str],
) -> None:
    """Masked in text, a sensitive result is not masked in what the handler answers on
    purpose: a generated password returned as NoEcho Data reaches CloudFormation whole."""

    async def fetch_password() -> str:
        return SECRET

    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        password = await ctx.step("fetch-password", fetch_password, sensitive=True)
        log = logging.getLogger("asynccfn.user")
        log.info("created admin:%s", password)
        return asynccfn.Success(physical_id="db", data={"Password": password}, no_echo=True)

    result, responder = run_create(create)
    assert result.outcome == "SUCCESS"
    assert json.loads(responder.bodies[0])["Data"] == {"Password": SECRET}
    assert [line for line in lines if "created admin:****" in line]
    assert not [line for line in lines if SECRET in line]


def test_a_physical_id_that_repeats_a_sensitive_result_is_sent_as_it_is() -> None:
    """A physical id is an answer given on purpose, as Data is: masked, the resource would
    take the identity "****"."""

    async def fetch_password() -> str:
        return SECRET

    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        key = await ctx.step("fetch-password", fetch_password, sensitive=True)
        return asynccfn.Success(physical_id=key)

    result, responder = run_create(create)
    assert result.outcome == "SUCCESS"
    assert json.loads(responder.bodies[0])["PhysicalResourceId"] == SECRET


# -- 4. a user's exception whose str() fails --------------------------------------------------


class BadStr(Exception):
    """An exception whose ``str()`` raises (its __str__ expects arguments it was not given)."""

    def __str__(self) -> str:
        return f"{self.args[0]}: {self.args[1]}"


def test_an_exception_whose_str_fails_is_answered_failed_not_raised() -> None:
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        raise BadStr("only one argument")

    result, responder = run_create(create)  # Lambda's retry would fail the same way
    assert result.outcome == "FAILED"
    assert len(responder.bodies) == 1


def test_a_step_whose_error_str_fails_is_journaled_and_answered_failed() -> None:
    """The same error raised by a step body: the step's failure is recorded (its message
    naming the type) and the operation answered FAILED."""

    async def body() -> None:
        raise BadStr("only one argument")

    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.step("breaks", body)
        return asynccfn.Success(physical_id="never")

    result, responder = run_create(create)
    assert result.outcome == "FAILED"
    assert len(responder.bodies) == 1 and "BadStr" in responder.bodies[0]


# -- 5. a hostile ResponseURL key backtracks for seconds ----------------------------------------


def test_a_hostile_url_key_is_parsed_in_linear_time() -> None:
    # An allowed URL (a CloudFormation response bucket) whose key is "arn:stack/" repeated,
    # in an event whose StackId is missing: the identifiers are recovered from the key
    # (_urls.url_key_identifiers), whose regular expression backtracks cubically.
    base = f"https://{BUCKET_HOST}/"
    url = base + "arn:stack/" * ((MAX_URL_LENGTH - len(base)) // len("arn:stack/"))
    ev = event(url)
    del ev["StackId"]
    began = time.perf_counter()
    with pytest.raises(RequestError) as refused:
        parse_request(ev, allowed_hosts=frozenset())
    took = time.perf_counter() - began
    assert refused.value.response_url == url  # a FAILED answer can be delivered ...
    # ... but only after seconds of CPU on the event loop (a well-formed key takes
    # microseconds); a function with a short timeout never gets to answer at all.
    assert took < 1.0, f"parsing one event took {took:.1f} s"
