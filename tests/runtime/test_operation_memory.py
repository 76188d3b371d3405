"""An operation's objects are freed when it ends, by reference counting alone: nothing of it
is left in a reference cycle for the collector (with 200 operations at once, the cycles were
most of what the collector walked)."""

from __future__ import annotations

import gc
import json
import weakref
from typing import Any

import asynccfn
from tests.support import FakeLambdaContext, closing_handler, event_for


def test_an_operations_context_logger_and_request_are_freed_as_it_ends(
    journal: str, presigned_response_url: Any
) -> None:
    refs: list[weakref.ref[Any]] = []
    resource = asynccfn.Resource("Custom::Bucket", update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        ctx.logger.info("creating")
        await ctx.step("build", lambda: "built")
        refs.extend(weakref.ref(o) for o in (ctx, ctx.logger, request))
        return asynccfn.Success(physical_id="built")

    handler = asynccfn.lambda_entry(resource, journal=journal)
    url, read = presigned_response_url()
    with closing_handler(handler):
        handler(event_for("create", url), FakeLambdaContext())  # warm: clients made
        gc.collect()
        gc.disable()
        try:
            refs.clear()
            url, read = presigned_response_url()
            assert handler(event_for("create", url), FakeLambdaContext())["outcome"] == "SUCCESS"
            alive = [type(r()).__name__ for r in refs if r() is not None]
        finally:
            gc.enable()
    assert json.loads(read() or b"")["Status"] == "SUCCESS"
    assert len(refs) == 3 and alive == []
