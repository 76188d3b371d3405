"""Hostile events and unusual handler outcomes still end in one valid response (DESIGN.md
invariants 1 and 12), driven in-process against DynamoDB Local and the response endpoint, as
Lambda calls ``lambda_entry``'s handler: each case once made the invocation raise (every
retry the same, the stack waiting) or answered with the wrong PhysicalResourceId."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asynccfn
from asynccfn._entry import LambdaHandler
from tests.reliability._endpoint import IssuedURL
from tests.reliability.conftest import URLs
from tests.support import FakeLambdaContext, closing_handler, event_for


def make_handler(resource: asynccfn.Resource, journal_table: str) -> LambdaHandler:
    made = asynccfn.lambda_entry(resource, journal=journal_table)
    assert isinstance(made, LambdaHandler)
    return made


def for_every_request(
    handler: Callable[[asynccfn.Request, asynccfn.Context], Awaitable[asynccfn.Success]],
    resource: asynccfn.Resource | None = None,
) -> asynccfn.Resource:
    """``resource`` (a plain one unless given) with ``handler`` for Create, Update and Delete."""
    resource = resource or asynccfn.Resource()
    resource.create(handler)
    resource.update(handler)
    resource.delete(handler)
    return resource


def answered(url: IssuedURL) -> dict[str, Any]:
    """The one body stored for ``url``: valid JSON of at most 4096 bytes."""
    stored = url.stored()
    assert len(stored) == 1, f"{len(stored)} responses stored"
    assert len(stored[0]) <= 4096, len(stored[0])
    body: dict[str, Any] = json.loads(stored[0])
    return body


def invoke(handler: LambdaHandler, event: dict[str, Any]) -> dict[str, str]:
    """One Lambda invocation; raising here means Lambda would retry, and the stack waits."""
    return handler(event, FakeLambdaContext(20))


def answer_once(
    resource: asynccfn.Resource,
    journal_table: str,
    urls: URLs,
    kind: str = "create",
    *,
    overrides: dict[str, Any] | None = None,
    **properties: Any,
) -> tuple[dict[str, str], dict[str, Any]]:
    """One invocation of ``resource``'s handler for a ``kind`` request with ``properties``
    (top-level fields replaced by ``overrides``): what it returned and the one body it
    answered."""
    url = urls.issue(expect_answer=False)
    event = {**event_for(kind, url.url, **properties), **(overrides or {})}
    with closing_handler(make_handler(resource, journal_table)) as handler:
        returned = invoke(handler, event)
    return returned, answered(url)


# --- 1. a request PhysicalResourceId whose JSON escaping outgrows the body -------------------


def test_invariant_12_an_update_whose_physical_id_outgrows_the_body_as_json_is_answered(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """1000 control characters are 1000 UTF-8 bytes (parse accepts them, within the 1 KB
    limit) but 6000 bytes as JSON: no body can echo the id, so the FAILED answer reports the
    failed-create marker, which always fits."""

    async def ok(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success()

    overrides = {"PhysicalResourceId": "\x01" * 1000}
    _, body = answer_once(for_every_request(ok), journal_table, urls, "update", overrides=overrides)
    assert body["Status"] == "FAILED", body
    assert body["PhysicalResourceId"].startswith("asynccfn-failed-create:"), body
    assert "too many to fit" in body["Reason"], body


# --- 2. properties validation that raises something else than a validation error -----------


@dataclasses.dataclass
class Strict:
    Name: str

    def __post_init__(self) -> None:
        if self.Name.startswith("bad"):
            raise LookupError(f"no such name: {self.Name}")


STRICT = {"ResourceType": "Custom::Strict"}  # the type Strict serves (the fixtures name another)


def test_invariant_1_a_properties_type_whose_construction_raises_is_answered_failed(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """A dataclass's ``__post_init__`` (or a pydantic validator) raising anything but a
    validation error is a conversion error too: FAILED, naming the type and its message."""

    async def ok(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="strict")

    resource = for_every_request(ok, asynccfn.Resource("Custom::Strict", properties=Strict))
    _, body = answer_once(resource, journal_table, urls, overrides=STRICT, Name="bad-name")
    assert body["Status"] == "FAILED", body
    assert "Strict raised LookupError: no such name: bad-name" in body["Reason"], body


def test_invariant_1_a_delete_whose_properties_construction_raises_still_deletes(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """A Delete always reaches its handler (``property_errors``), so a stack can always be
    deleted, also when the type's own code raises LookupError."""
    resource = asynccfn.Resource("Custom::Strict", properties=Strict)
    deleted: list[str] = []

    @resource.create
    @resource.update
    async def ok(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="strict")

    @resource.delete
    async def delete(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        deleted.append(str(request.physical_id))
        return asynccfn.Success()

    _, body = answer_once(
        resource, journal_table, urls, "delete", overrides=STRICT, Name="bad-name"
    )
    assert body["Status"] == "SUCCESS", body
    assert deleted


# --- 3. ctx.physical_id the journal cannot hold ---------------------------------------------


def test_invariant_1_a_ctx_physical_id_no_response_can_report_fails_the_operation(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """ctx.physical_id is journaled before the next step. A value no response can report
    (here 500 KB, which DynamoDB would refuse for good, a JournalError the runtime raises on
    every retry) is refused when it is set: the Create answers FAILED saying why."""

    async def build(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        ctx.physical_id = "p" * 500_000
        await ctx.step("after", lambda: 1)
        return asynccfn.Success()

    _, body = answer_once(for_every_request(build), journal_table, urls)
    assert body["Status"] == "FAILED", body
    assert "ctx.physical_id cannot be set: PhysicalResourceId is 500000 bytes" in body["Reason"]


# --- 4. a malformed Update must echo the request's PhysicalResourceId -----------------------


def test_invariant_12_a_malformed_update_echoes_its_physical_id(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """Invariant 12: FAILED Update/Delete echo the request's PhysicalResourceId. An Update
    that fails to parse for another field (here a ServiceTimeout out of range) echoes its
    valid PhysicalResourceId (another id would tell CloudFormation the resource was
    replaced)."""

    async def ok(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success()

    overrides = {"ServiceTimeout": "99999"}
    _, body = answer_once(for_every_request(ok), journal_table, urls, "update", overrides=overrides)
    assert body["Status"] == "FAILED", body
    assert body["PhysicalResourceId"] == "demo-bucket", body


# --- 5. Data a handler returns that breaks the body builder --------------------------------


def nest(depth: int) -> dict[str, Any]:
    data: dict[str, Any] = {"leaf": "v"}
    for _ in range(depth):
        data = {"a": data}
    return data


def test_invariant_12_self_referencing_no_echo_data_is_answered_failed(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """Data that is not serialisable is answered FAILED ("Data is not JSON-serialisable");
    with NoEcho the Reason is also masked of the Data's values, walking a Data that holds
    itself once."""

    async def build(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        data: dict[str, Any] = {"Password": "hunter2-secret"}
        data["Self"] = data
        return asynccfn.Success(physical_id="p", data=data, no_echo=True)

    _, body = answer_once(for_every_request(build), journal_table, urls)
    assert body["Status"] == "FAILED", body


def test_invariant_12_deeply_nested_data_is_answered_failed(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """Data that json.dumps accepts but nested deeper than any Fn::GetAtt needs (what reads
    it, masking and the journal's codec, walks it recursively) is answered FAILED."""

    async def build(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success(physical_id="p", data=nest(DEPTH))

    _, body = answer_once(for_every_request(build), journal_table, urls)
    assert body["Status"] == "FAILED", body
    assert "Data is nested 601 levels deep; the limit is 32" in body["Reason"], body


DEPTH = 600


# --- 6. a handler that raises SystemExit -------------------------------------------------


def test_invariant_1_a_handler_raising_system_exit_is_answered_failed(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """A library calling sys.exit() inside the handler: asyncio would re-raise SystemExit out
    of the loop, past the runtime, and the invocation would end unanswered with the lease
    held. It is answered FAILED (HandlerExited), the handler returning normally."""

    async def build(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        raise SystemExit(3)

    escaped: BaseException | None = None
    body: dict[str, Any] = {}
    try:
        _, body = answer_once(for_every_request(build), journal_table, urls)
    except SystemExit as exc:
        escaped = exc
    assert escaped is None, f"SystemExit escaped the Lambda handler: {escaped!r}"
    assert body["Status"] == "FAILED", body
    assert "SystemExit(3)" in body["Reason"], body


def test_invariant_1_a_parallel_branch_raising_system_exit_is_answered_failed(
    local_env: str, journal_table: str, urls: URLs
) -> None:
    """A branch of ctx.parallel runs in a task of its own: its SystemExit is answered FAILED
    too, not raised out of the event loop."""

    async def branch(code: int) -> int:
        if code:
            raise SystemExit(code)
        return code

    async def build(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        await ctx.parallel(branch(0), branch(4))
        return asynccfn.Success(physical_id="p")

    returned, body = answer_once(for_every_request(build), journal_table, urls)
    assert returned["outcome"] == "FAILED"
    assert body["Status"] == "FAILED", body
    assert "SystemExit(4)" in body["Reason"], body
