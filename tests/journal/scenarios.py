"""Real operations for the journal's readers: driven through the runtime (``lambda_entry``)
in-process, against DynamoDB Local and moto's S3, so the query API and the CLI read what the
runtime really writes.

- ``succeeded``: steps, a ``ctx.parallel`` with two branch scopes, a poll, a NoEcho response.
- ``failed``: the handler's step raises; the response is FAILED with its reason.
- ``handed_over``: the first invocation runs out of time inside a durable sleep and hands
  over (to a fake Invoke API that records the payload); the payload, delivered again, is the
  successor that claims with the token and answers SUCCESS.
- ``stuck``: handed over the same way, but the successor never comes: RUNNING, hand-over
  pending. What ``journal show`` is for.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest

import asynccfn
from asynccfn.journal.models import operation_id
from asynccfn.local import LOCAL_AWS_ENV
from tests.support import FakeLambdaContext, closing_handler, create_journal_table, event_for

SECRET = "hunter2-secret-value"
BUCKET = "asynccfn-journal-tests"


@dataclass(frozen=True, kw_only=True)
class Operation:
    op_id: str
    stack_id: str
    stack_name: str
    url: str  # the ResponseURL: must never appear in any view


@dataclass(kw_only=True)
class Recorded:
    """A journal table holding one operation of each kind."""

    table: str
    endpoint: str
    succeeded: Operation
    failed: Operation
    handed_over: Operation
    stuck: Operation
    responses: dict[str, bytes | None] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)  # hand-over tokens: never shown either

    @property
    def all(self) -> list[Operation]:
        return [self.succeeded, self.failed, self.handed_over, self.stuck]


class FakeInvokeAPI:
    """The Lambda Invoke API, accepting asynchronous invocations and keeping their payloads.

    Enough for the runtime's hand-over (aiobotocore over HTTP), nothing more: the local
    Lambda service is what runs handlers for real.
    """

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        received = self.payloads

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeInvokeAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class ResponseURLs:
    """Pre-signed PUT URLs in moto's S3, like CloudFormation's, and what was PUT to them."""

    def __init__(self, moto_endpoint: str) -> None:
        self._s3 = botocore.session.get_session().create_client(
            "s3", endpoint_url=moto_endpoint, region_name=LOCAL_AWS_ENV["AWS_REGION"]
        )
        self._s3.create_bucket(Bucket=BUCKET)

    def new(self) -> tuple[str, str]:
        key = f"responses/{uuid.uuid4()}"
        url = self._s3.generate_presigned_url(
            "put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=7200
        )
        return url, key

    def body(self, key: str) -> bytes | None:
        try:
            answer = self._s3.get_object(Bucket=BUCKET, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None
        body: bytes = answer["Body"].read()
        return body

    def close(self) -> None:
        self._s3.close()


def bucket_resource() -> asynccfn.Resource:
    """Create: a few steps, two parallel branches, a poll, a durable sleep when asked, and a
    step that fails when asked."""
    resource = asynccfn.Resource("Custom::Bucket", update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        props = request.properties
        name = props["BucketName"]
        ctx.physical_id = name
        await ctx.step("create-bucket", _echo, name)
        if props.get("Fail"):
            await ctx.step("put-bucket-policy", _refuse, props["Fail"])
        if props.get("Sleep"):
            await ctx.sleep(float(props["Sleep"]), name="settle")
        await ctx.parallel(ctx.step("tag-bucket", _echo, "tags"), ctx.step("log-bucket", _echo, 1))
        await ctx.wait_until("bucket-exists", _ready, interval=0.05, timeout=5)
        return asynccfn.Success(
            physical_id=name,
            data={"Arn": f"arn:aws:s3:::{name}", "Secret": SECRET},
            no_echo=True,
        )

    return resource


async def _echo(value: Any) -> Any:
    return value


async def _refuse(message: str) -> None:
    raise RuntimeError(message)


async def _ready() -> bool:
    return True


def stack_arn(name: str) -> str:
    return f"arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/{uuid.uuid4()}"


def record_operations(dynamodb: str, moto: str, *, table: str | None = None) -> Recorded:
    """Drive the four operations into a new journal table (or ``table``)."""
    table = table or create_journal_table(dynamodb)
    urls = ResponseURLs(moto)
    web, data = stack_arn("web-stack"), stack_arn("data-stack")
    keys: dict[str, str] = {}
    ops: dict[str, Operation] = {}

    def event(label: str, stack: str, **props: Any) -> dict[str, Any]:
        url, key = urls.new()
        keys[label] = key
        body = event_for("create", url, BucketName=f"{label}-bucket", **props)
        body["StackId"] = stack
        body["LogicalResourceId"] = f"{label.title().replace('-', '')}Bucket"
        ops[label] = Operation(
            op_id=operation_id(stack, body["LogicalResourceId"], body["RequestId"]),
            stack_id=stack,
            stack_name=stack.split("/")[1],
            url=url,
        )
        return body

    with pytest.MonkeyPatch.context() as env, FakeInvokeAPI() as lambdas:
        env.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb)
        env.setenv("AWS_ENDPOINT_URL_LAMBDA", lambdas.endpoint_url)
        env.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", urlsplit(moto).netloc)
        with _handler(table, reserve=2.0) as handler:
            outcome = handler(event("ok", web), FakeLambdaContext())["outcome"]
            assert outcome == "SUCCESS", outcome
            failing = event("broken", web, Fail="bucket policy refused: MalformedPolicy")
            outcome = handler(failing, FakeLambdaContext())["outcome"]
            assert outcome == "FAILED", outcome
            # Out of time inside the sleep: hand over; the payload is the successor's event.
            outcome = handler(event("slow", data, Sleep=4), FakeLambdaContext(5))["outcome"]
            assert outcome == "handed-over", outcome
            successor = lambdas.payloads[-1]
            outcome = handler(successor, FakeLambdaContext())["outcome"]
            assert outcome == "SUCCESS", outcome
            # Handed over, and the successor's event is lost: the operation is stuck.
            stuck = event("stuck", data, Sleep=3600)  # still asleep whenever a test reads it
            outcome = handler(stuck, FakeLambdaContext(5))["outcome"]
            assert outcome == "handed-over", outcome
        tokens = [p["AsyncCfnHandOver"]["token"] for p in lambdas.payloads]
    responses = {label: urls.body(key) for label, key in keys.items()}
    urls.close()
    return Recorded(
        table=table,
        endpoint=dynamodb,
        succeeded=ops["ok"],
        failed=ops["broken"],
        handed_over=ops["slow"],
        stuck=ops["stuck"],
        responses=responses,
        tokens=tokens,
    )


@contextmanager
def _handler(table: str, **options: Any) -> Iterator[Any]:
    handler = asynccfn.lambda_entry(bucket_resource(), journal=table, **options)
    with closing_handler(handler):
        yield handler


@contextmanager
def botocore_calls() -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """Record every AWS API call made through botocore (pynamodb's) and aiobotocore (the
    runtime's) while the block runs: (service, operation, parameters)."""
    from aiobotocore.client import AioBaseClient
    from botocore.client import BaseClient

    calls: list[tuple[str, str, dict[str, Any]]] = []
    sync_call = BaseClient._make_api_call
    async_call = AioBaseClient._make_api_call

    def recording(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append((self.meta.service_model.service_name, operation, dict(params)))
        return sync_call(self, operation, params)

    async def recording_async(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append((self.meta.service_model.service_name, operation, dict(params)))
        return await async_call(self, operation, params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", recording)
        patch.setattr(AioBaseClient, "_make_api_call", recording_async)
        yield calls
