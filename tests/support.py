"""Helpers shared by the tests: events, Lambda context objects, journal tables, the lines
test functions note when their bodies run, and the secret parts of a response URL."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import asynccfn

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cfn"


def fixture_event(kind: str) -> dict[str, Any]:
    """One of the CloudFormation fixture events (create, update, delete)."""
    return json.loads((FIXTURES / f"{kind}.json").read_text())


def event_for(
    kind: str,
    response_url: str,
    *,
    request_id: str | None = None,
    stack: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """A fixture event with a live ResponseURL, a fresh RequestId and extra properties."""
    event = copy.deepcopy(fixture_event(kind))
    event["ResponseURL"] = response_url
    event["RequestId"] = request_id or str(uuid.uuid4())
    if stack is not None:
        event["StackId"] = (
            f"arn:aws:cloudformation:us-east-1:123456789012:stack/{stack}/{uuid.uuid4()}"
        )
    event["ResourceProperties"].update(properties)
    return event


def event_op_id(event: dict[str, Any]) -> str:
    """The journal's operation id of a request ``event``."""
    from asynccfn.journal.models import operation_id

    return operation_id(event["StackId"], event["LogicalResourceId"], event["RequestId"])


def url_signatures(url: str) -> list[str]:
    """The signature values in a presigned ``url``'s query (``Signature``, ``X-Amz-Signature``):
    like the URL itself, they must never appear in a log line, CLI output or the journal."""
    parts = (part.partition("=") for part in urlsplit(url).query.split("&"))
    return [v for name, _, v in parts if v and name.lower() in ("signature", "x-amz-signature")]


def journal_items(endpoint: str, table: str) -> list[dict[str, Any]]:
    """Every item of the journal ``table`` as DynamoDB holds it (a consistent Scan): what a
    secret must never be found in."""
    import botocore.session

    client = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1"
    )
    try:
        pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        return [item for page in pages for item in page["Items"]]
    finally:
        client.close()


def noted_runs(run_dir: Path) -> list[str]:
    """The lines test functions appended to ``runs.log`` in ``run_dir`` when a body ran
    (``<what> <pid> <invocation>``)."""
    path = run_dir / "runs.log"
    return path.read_text().splitlines() if path.exists() else []


def times_ran(runs: list[str], what: str) -> int:
    """How many of ``runs`` (see :func:`noted_runs`) noted ``what``."""
    return sum(1 for line in runs if line.rsplit(" ", 2)[0] == what)


def issued(url: str, *, seconds_ago: float, expires_in: int = 7200) -> str:
    """``url`` signed (as far as its query says) ``seconds_ago`` seconds ago, SigV4 style."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - seconds_ago))
    base, _, query = url.partition("?")
    kept = [
        p for p in query.split("&") if not p.lower().startswith(("x-amz-date=", "x-amz-expires="))
    ]
    return f"{base}?{'&'.join([*kept, f'X-Amz-Date={stamp}', f'X-Amz-Expires={expires_in}'])}"


class FakeLambdaContext:
    """The attributes Lambda's context object has, with a real deadline.

    Used only by in-process runtime tests; end-to-end tests get awslambdaric's own.
    """

    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:inprocess"
    log_stream_name = "2026/11/22/[$LATEST]inprocess"
    function_name = "inprocess"

    def __init__(self, seconds: float = 30.0, request_id: str | None = None) -> None:
        self.aws_request_id = request_id or str(uuid.uuid4())
        self._deadline = time.time() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def answering_resource(resource_type: str | None = None) -> asynccfn.Resource:
    """A resource with an answer for every request type, for a test that needs a handler
    (``lambda_entry`` refuses a resource without one) but is not about what it runs: Create
    succeeds, an Update creates a replacement, a Delete leaves nothing behind."""
    import asynccfn

    resource = asynccfn.Resource(resource_type, update="replace", delete="nothing")

    @resource.create
    async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
        return asynccfn.Success()

    return resource


def create_journal_table(endpoint: str) -> str:
    """A new journal table in the DynamoDB server at ``endpoint``; returns its name."""
    from asynccfn.journal.table import create_table

    name = f"journal-{uuid.uuid4().hex[:10]}"
    create_table(name, region="us-east-1", host=endpoint)
    return name


@contextmanager
def closing_handler(handler: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """Close the handler's clients on its persistent loop afterwards (no unclosed sessions)."""
    try:
        yield handler
    finally:
        from asynccfn._entry import _persistent_loop

        runtime = handler.runtime  # type: ignore[attr-defined]
        _persistent_loop().run_until_complete(runtime.close())


def run(coro: Any) -> Any:
    """Run ``coro`` on the entry point's persistent loop (where the handler's clients live)."""
    from asynccfn._entry import _persistent_loop

    return _persistent_loop().run_until_complete(coro)


def sleep(seconds: float) -> None:
    run(asyncio.sleep(seconds))


@dataclass
class Sent:
    """One request sent to a function, and its response URL's reader."""

    event: dict[str, Any]
    read_body: Callable[[], bytes | None]

    def response(self, timeout: float = 30.0) -> dict[str, Any]:
        """The response CloudFormation would have received (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            raw = self.read_body()
            if raw is not None:
                assert len(raw) <= 4096
                return json.loads(raw)  # type: ignore[no-any-return]
            time.sleep(0.1)
        raise AssertionError(f"no response within {timeout} s")


@dataclass
class LocalFunctions:
    """Test functions deployed to one local Lambda service (awslambdaric workers), with a
    journal in DynamoDB Local and responses in moto's S3. Subclasses say where the functions
    live and under which variable they find their run directory."""

    code_path: ClassVar[Path]
    run_dir_variable: ClassVar[str]
    handler_prefix: ClassVar[str] = ""

    service: Any  # a LambdaServiceThread
    run_dir: Path
    dynamodb: str
    responses_host: str
    make_url: Callable[[], Any]
    journal: str | None = None
    functions: list[str] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """The variables every deployed function gets."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb,
            "ASYNCCFN_ALLOWED_RESPONSE_HOSTS": self.responses_host,
            self.run_dir_variable: str(self.run_dir),
        }

    def deploy(
        self,
        name: str,
        handler: str,
        *,
        timeout: float = 3.0,
        durable: bool = True,
        environment: dict[str, str] | None = None,
        **config: Any,
    ) -> str:
        """Deploy ``handler`` (``module.object`` under ``code_path``) as ``name``; with
        ``durable``, journaled in a table made on first use."""
        from asynccfn.local.lambda_service import FunctionConfig

        env = {**self.environment(), **(environment or {})}
        if durable:
            if self.journal is None:
                self.journal = create_journal_table(self.dynamodb)
            env["ASYNCCFN_JOURNAL_TABLE"] = self.journal
        config.setdefault("retry_delays", (0.5, 1.0))
        self.service.add_function(
            FunctionConfig(
                name=name,
                handler=self.handler_prefix + handler,
                code_paths=[str(self.code_path)],
                timeout=timeout,
                environment=env,
                **config,
            )
        )
        self.functions.append(name)
        return name

    def send(
        self,
        function: str,
        kind: str = "create",
        *,
        overrides: dict[str, Any] | None = None,
        **properties: Any,
    ) -> Sent:
        """Send a fixture request with ``properties`` added, top-level fields ``overrides``."""
        url, read = self.make_url()
        event = {**event_for(kind, url, **properties), **(overrides or {})}
        self.service.invoke(function, event, invocation_type="Event")
        return Sent(event=event, read_body=read)
