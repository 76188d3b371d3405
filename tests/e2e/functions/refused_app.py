"""A function whose resource lacks an answer for Update and Delete (issue 18): inside Lambda
``lambda_entry`` does not raise for it, it refuses every request. Its own module, since off
Lambda the same ``lambda_entry`` call raises."""

from __future__ import annotations

import asynccfn

half = asynccfn.Resource("Custom::Bucket")  # the line the refusal names


@half.create
async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    raise AssertionError("a refusing function runs no handler")


handler = asynccfn.lambda_entry(half)
