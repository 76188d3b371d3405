"""The journal's own Query (and claim) responses, read from DynamoDB's JSON as it arrives.

botocore's generic parser walks the output shape of every attribute of every item (thousands
of structures for one page of steps), only to produce the same ``{"S": ...}``/``{"N": ...}``
maps the wire already holds: the journal's codec reads those maps directly. So for the
journal's own Queries, and the operation item a claim's UpdateItem returns (only within
:func:`raw_query`), a ``before-parse`` handler takes the JSON body as it is and leaves the
generic parser an empty one. Requests, signing, retries, the CRC32 check and error responses stay
botocore's: only a 200 answer's body is taken.

Step and operation items hold no binary attributes, the one kind whose wire form (base64)
differs from what botocore would return (bytes).
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_EVENTS = ("before-parse.dynamodb.Query", "before-parse.dynamodb.UpdateItem")
_HANDLER_ID = "asynccfn-journal-raw"

_journal_query: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "asynccfn_journal_query", default=False
)


def prepare(client: Any) -> None:
    """Have ``client`` hand the journal's Query and UpdateItem bodies over as they are, within
    :func:`raw_query` (idempotent)."""
    for event in _EVENTS:
        client.meta.events.register(event, _take_body, unique_id=f"{_HANDLER_ID}-{event}")


@contextmanager
def raw_query() -> Iterator[None]:
    """Within this block (this task's context), Query and UpdateItem answers are the wire's
    own JSON."""
    token = _journal_query.set(True)
    try:
        yield
    finally:
        _journal_query.reset(token)


def _take_body(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    if not _journal_query.get() or response_dict.get("status_code") != 200:
        return
    body = response_dict.get("body")
    if not body:
        return
    customized_response_dict.update(json.loads(body))
    response_dict["body"] = b"{}"
