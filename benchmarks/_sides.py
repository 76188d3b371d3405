"""Both sides of every comparison: asynccfn driven in-process, and the raw floor.

The floor is what a hand-written handler would send with aiobotocore and aiohttp alone. Where
it can, it sends *the same requests asynccfn sent*: :class:`CallRecorder` captures asynccfn's
DynamoDB calls as botocore receives them, and :func:`retarget` points a copy at a new
operation key, so the item sizes and conditions compared are identical. Its clients keep
botocore's defaults for what the journal does its own way: the generic response parser (the
journal reads its Query answers with its own codec) and client-side parameter validation (the
journal's requests are built by code, and DynamoDB checks them again).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asynccfn
from benchmarks._harness import Stopwatch

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/bench/5b6a1b90-c7a4-11ef-9d3c"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"


def create_event(response_url: str, *, request_id: str | None = None, **properties: Any) -> dict:
    """A CloudFormation Create request with ``properties``."""
    return {
        "RequestType": "Create",
        "ServiceToken": FUNCTION_ARN,
        "ResponseURL": response_url,
        "StackId": STACK_ID,
        "RequestId": request_id or str(uuid.uuid4()),
        "ResourceType": "Custom::Bench",
        "LogicalResourceId": "Bench",
        "ResourceProperties": {"ServiceToken": FUNCTION_ARN, **properties},
    }


class LambdaContext:
    """The attributes of Lambda's context object that asynccfn reads, with a real deadline."""

    invoked_function_arn = FUNCTION_ARN
    log_stream_name = "bench"
    function_name = "bench"

    def __init__(self, seconds: float = 600.0, request_id: str | None = None) -> None:
        self.aws_request_id = request_id or str(uuid.uuid4())
        self._deadline = time.time() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def build_handler(resource: asynccfn.Resource, journal: str | None) -> Any:
    """``lambda_entry(resource, journal=...)``; drive it with ``handler.runtime.invoke``."""
    return asynccfn.lambda_entry(resource, journal=journal)


def log_like_lambda() -> None:
    """Format asynccfn's log records as ``lambda_entry`` does in Lambda (JSON lines), but
    write them to /dev/null: their cost is measured, their text is not shown."""
    from asynccfn import _logging

    _logging.configure()
    sink = open(os.devnull, "w")
    for log_handler in logging.getLogger(_logging.LOGGER_NAME).handlers:
        if isinstance(log_handler, logging.StreamHandler):
            log_handler.setStream(sink)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Keep what the code under test prints off the results table (it is still written)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def client_config(like: Any = None) -> Any:
    """The floor's client configuration: a copy of ``like``'s (an aiobotocore client, such as
    the runtime's), so that both sides time out, retry and pool connections alike. It keeps
    botocore's client-side parameter validation, as a client made with the defaults does; the
    journal's own client leaves that to DynamoDB (its requests are built by its codec)."""
    from aiobotocore.config import AioConfig

    if like is None:
        return AioConfig(retries={"mode": "standard", "total_max_attempts": 5})
    theirs = like.meta.config
    return AioConfig(
        connect_timeout=theirs.connect_timeout,
        read_timeout=theirs.read_timeout,
        retries=theirs.retries,
        max_pool_connections=theirs.max_pool_connections,
    )


@contextlib.asynccontextmanager
async def raw_dynamodb(like: Any = None) -> AsyncIterator[Any]:
    """A plain aiobotocore DynamoDB client (endpoint and credentials from the environment),
    configured as ``like`` (see :func:`client_config`)."""
    from aiobotocore.session import get_session

    config = client_config(like)
    async with get_session().create_client("dynamodb", config=config) as client:
        yield client


@contextlib.asynccontextmanager
async def raw_http() -> AsyncIterator[Any]:
    """A plain aiohttp session, set up to PUT to a pre-signed URL as it was signed."""
    import aiohttp

    async with aiohttp.ClientSession(skip_auto_headers=("Content-Type",)) as session:
        yield session


async def raw_put(session: Any, url: str, body: bytes) -> None:
    """One response PUT, the URL sent exactly as signed."""
    import yarl

    async with session.put(yarl.URL(url, encoded=True), data=body) as response:
        if response.status != 200:
            raise RuntimeError(f"the floor's PUT got HTTP {response.status}")


@dataclass(frozen=True, slots=True)
class Call:
    operation: str  # botocore's name: PutItem, UpdateItem, Query, ...
    params: dict[str, Any]


@dataclass
class CallRecorder:
    """Counts (and optionally keeps) the DynamoDB requests a client sends.

    ``sent`` counts HTTP requests as botocore sends them, retries included: an independent
    check of asynccfn's own ``JournalStore.requests``.
    """

    keep: bool = False
    calls: list[Call] = field(default_factory=list)
    sent: int = 0

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.dynamodb", self._on_call)
        client.meta.events.register("before-send.dynamodb", self._on_send)

    def reset(self) -> None:
        self.calls.clear()
        self.sent = 0

    def _on_call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.keep:
            self.calls.append(Call(model.name, copy.deepcopy(params)))

    def _on_send(self, **_: Any) -> None:
        self.sent += 1


async def recorder_for(handler: Any, *, keep: bool = False) -> CallRecorder:
    """A recorder attached to the DynamoDB client of ``handler``'s runtime."""
    recorder = CallRecorder(keep=keep)
    recorder.attach(await handler.runtime.clients.own("dynamodb"))
    return recorder


def retarget(value: Any, old: str, new: str) -> Any:
    """A deep copy of ``value`` with every string equal to ``old`` replaced by ``new``."""
    if isinstance(value, str):
        return new if value == old else value
    if isinstance(value, dict):
        return {key: retarget(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [retarget(item, old, new) for item in value]
    return value


def op_key(event: dict[str, Any]) -> str:
    """The journal partition key of the operation ``event`` starts."""
    from asynccfn.journal.models import op_pk, operation_id

    return op_pk(operation_id(event["StackId"], event["LogicalResourceId"], event["RequestId"]))


async def succeed(runtime: Any, event: dict[str, Any], what: str = "the invocation") -> None:
    """One invocation of ``runtime`` (its printing kept off the table) that must answer
    SUCCESS."""
    with quiet_stdout():
        result = await runtime.invoke(event, LambdaContext())
    if result.outcome != "SUCCESS":
        raise RuntimeError(f"{what} ended {result.outcome}")


async def send(client: Any, call: Call) -> Any:
    """Send one recorded call with a raw client."""
    method: Callable[..., Any] = getattr(client, _snake(call.operation))
    return await method(**call.params)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


async def query_items(client: Any, table: str, pk: str) -> tuple[list[dict[str, Any]], int]:
    """Every item under ``pk`` starting ``step#``: one consistent Query, paginated; and the
    number of pages."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": "step#"}},
        "ConsistentRead": True,
    }
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        page = await client.query(**kwargs)
        pages += 1
        items.extend(page.get("Items", []))
        last = page.get("LastEvaluatedKey")
        if not last:
            return items, pages
        kwargs["ExclusiveStartKey"] = last


# -- the asynccfn side ----------------------------------------------------------------------


async def _trivial() -> int:
    return 1


def _trivial_sync() -> int:
    return 1


def steps_resource(
    watch: Stopwatch | None = None,
    *,
    between: Callable[[], Awaitable[None]] | None = None,
    every: int = 0,
) -> asynccfn.Resource:
    """A Create handler running ``Steps`` sequential trivial steps (``Payload``: the JSON
    string each returns instead, of that many bytes; ``Sync``: a plain function, which a step
    runs in a worker thread), timed by ``watch`` when given.

    ``between`` is awaited before every ``every``-th step, outside the timing: the floor's
    share of an interleaved comparison runs there, so that both sides meet the same noise.
    """
    resource = asynccfn.Resource("Custom::Bench", update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        count = int(request.properties.get("Steps", 0))
        payload = int(request.properties.get("Payload", 0))
        sync = str(request.properties.get("Sync", "false")).lower() == "true"
        body: Callable[[], Any] = _trivial_sync if sync else _trivial
        if payload:
            body = _payload(payload)
        if watch is not None:
            watch.start()
        for i in range(count):
            if between is not None and i and i % every == 0:
                if watch is not None:
                    watch.pause()
                await between()
                if watch is not None:
                    watch.resume()
            await ctx.step(f"s{i}", body)
        if watch is not None:
            watch.stop()
        return asynccfn.Success(physical_id="bench")

    return resource


def payload_json(size: int) -> str:
    """A JSON string value exactly ``size`` bytes long once encoded (quotes included)."""
    return '"' + "x" * (size - 2) + '"'


def _payload(size: int) -> Callable[[], Any]:
    value = payload_json(size)[1:-1]

    async def body() -> str:
        return value

    return body


async def journal_for_replay(
    client: Any, table: str, event: dict[str, Any], *, steps: int, result: str = "1"
) -> dict[str, Any]:
    """Put the operation of ``event`` in the state a hand-over leaves it in, with ``steps``
    finished steps journaled (as ``steps_resource`` journals them), and return the event its
    successor receives. Written in batches: this is set-up, not measured."""
    import asyncio
    import secrets

    from asynccfn._continuation import HANDOVER_KEY
    from asynccfn._protocol import allowed_hosts_from_env, parse_request
    from asynccfn.journal._codec import ItemCodec
    from asynccfn.journal.models import StepItem, bind, operation_id
    from asynccfn.journal.store import ClaimRequest, JournalStore

    async def factory() -> Any:
        return client

    store = JournalStore(table, factory, retention=86_400)
    request = parse_request(event, allowed_hosts=allowed_hosts_from_env())
    op_id = operation_id(request.stack_id, request.logical_id, request.request_id)
    now = time.time()
    claim = await store.claim(
        ClaimRequest.for_request(
            request,
            owner="bench-predecessor",
            token=None,
            lease=300,
            issued_at=request.issued_at or now,
            deadline=now + 3000,
        )
    )
    op = claim.operation
    codec = ItemCodec(bind(table).step, StepItem)
    items = [
        codec.encode(
            store.new_step(
                op_id,
                f"0#{i + 1:05d}",
                name=f"s{i}",
                kind="step",
                status="SUCCEEDED",
                attempt=1,
                op_attempt=int(op.attempt_no),
                started_at=now,
                ended_at=now,
                invocation=int(op.invocations),
                fence=int(op.fence),
                result=result,
            )
        )[0]
        for i in range(steps)
    ]
    batches = [items[i : i + 25] for i in range(0, len(items), 25)]
    limit = asyncio.Semaphore(8)

    async def write(batch: list[dict[str, Any]]) -> None:
        async with limit:
            pending = {table: [{"PutRequest": {"Item": item}} for item in batch]}
            while pending:
                answer = await client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}

    await asyncio.gather(*(write(batch) for batch in batches))
    token = secrets.token_hex(16)
    await store.record_handover(
        op,
        token=token,
        state=None,
        positions=[],
        physical_id=None,
        wake_at=None,
        stalled=0,
        note="handed over",
    )
    return {**event, HANDOVER_KEY: {"token": token}}


async def reopen_for_replay(client: Any, table: str, event: dict[str, Any]) -> dict[str, Any]:
    """Put an operation that :func:`journal_for_replay` prepared, and a replay then finished,
    back in the hand-over state (status RUNNING, a new token, no response), so the next round
    replays the same journal without writing it again. Set-up, not measured."""
    import secrets

    from asynccfn._continuation import HANDOVER_KEY

    token = secrets.token_hex(16)
    await client.update_item(
        TableName=table,
        Key={"pk": {"S": op_key(event)}, "sk": {"S": "op"}},
        UpdateExpression=(
            "SET #status = :running, handover_token = :token "
            "REMOVE #response, response_status, posted_at"
        ),
        ExpressionAttributeNames={"#status": "status", "#response": "response"},
        ExpressionAttributeValues={":running": {"S": "RUNNING"}, ":token": {"S": token}},
    )
    return {**event, HANDOVER_KEY: {"token": token}}
