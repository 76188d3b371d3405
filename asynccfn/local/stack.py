"""A stack's life for one custom resource, on this machine: what ``asynccfn local``,
``asynccfn demo`` and :mod:`asynccfn.testing` run.

What a :class:`LocalStack` starts, and stops again (every worker process killed and reaped)::

    moto's server, in this process ── S3: the pre-signed response URLs CloudFormation sends
                                      DynamoDB: the journal table (unless another is given)
                                      any other AWS API the handler calls (AWS_ENDPOINT_URL)
    the local Lambda service ──────── the function asynccfn.local._handler.handler, which
                                      serves MODULE:RESOURCE through lambda_entry, under
                                      awslambdaric in worker processes with real deadlines

A request goes out as CloudFormation sends it, an ``Event`` invocation with a fresh pre-signed
URL; the stack then waits for the response to land in S3, and meanwhile passes what the
journal and the Lambda service show to a :class:`Watcher`. :meth:`LocalStack.lifecycle` plays
a stack's life: Create, then Update, then Delete, with CloudFormation's rollbacks and the
clean-up Delete of a replaced resource.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Self

from asynccfn._errors import AsyncCfnError, ConfigurationError
from asynccfn._forced_handover import ENV as HANDOVER_AFTER_STEP_ENV
from asynccfn._protocol import ALLOWED_HOSTS_ENV, RequestType
from asynccfn.journal.models import StepStatus, operation_id
from asynccfn.local._env import ACCOUNT_ID, LOCAL_AWS_ENV, REGION
from asynccfn.local._functions import FunctionConfig, RecursiveLoop
from asynccfn.local._loader import HANDLER, RESOURCE_ENV, journal_table_of, load_resource
from asynccfn.local._runs import (
    NoResponse,
    OperationRun,
    QuietWatcher,
    Replay,
    Watcher,
    response_differences,
)

if TYPE_CHECKING:
    from asynccfn.journal.query import Journal, OperationDetail
    from asynccfn.local.dynamodb import DynamoDBLocal, MotoServer
    from asynccfn.local.lambda_service import LambdaServiceThread

__all__ = [
    "DYNAMODB_LOCAL",
    "LocalStack",
    "NoResponse",
    "OperationRun",
    "QuietWatcher",
    "Replay",
    "StackConfig",
    "Watcher",
]

DYNAMODB_LOCAL = "dynamodb-local"
"""``StackConfig(dynamodb=...)`` value that starts Amazon's DynamoDB Local (needs Java)."""

EMBEDDED_TABLE = "asynccfn-journal"
RESPONSE_BUCKET = "asynccfn-local-responses"
MAX_LAMBDA_TIMEOUT = 900.0

_POLL = 0.2
_JOURNAL_POLL = 0.5
_IDLE_POLLS = 3  # the service idle this many polls in a row, and no response: none will come
_SETTLE = 30.0  # after a response, how long the invocation may take to finish its writes


@dataclass(frozen=True, kw_only=True, slots=True)
class StackConfig:
    """How to run one resource.

    ``resource`` is ``MODULE:RESOURCE``; ``lambda_timeout`` the function's timeout in seconds
    (at most 900; small values make the runtime hand over); ``dynamodb`` an endpoint URL for
    the journal, or :data:`DYNAMODB_LOCAL`, or None for ``$AWS_ENDPOINT_URL_DYNAMODB`` and
    else moto's server; ``table`` the journal table (default: the one the module's
    ``lambda_entry`` names, else ``asynccfn-journal`` on moto and a fresh name elsewhere);
    ``environment`` is added to the function's; ``code_paths`` are where the worker imports
    from (default: the working directory); ``handover_after_step`` makes every invocation
    hand over after its first recorded step; ``service_timeout`` is the requests'
    ServiceTimeout (CloudFormation's own wait, 1 to 3600 s; None: 3600); ``keep_table``
    leaves the journal table in place.

    Raises:
        ConfigurationError: a value Lambda or CloudFormation would refuse.
    """

    resource: str
    lambda_timeout: float = MAX_LAMBDA_TIMEOUT
    dynamodb: str | None = None
    table: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    code_paths: Sequence[str] = ()
    handover_after_step: bool = False
    stack_name: str = "asynccfn-local"
    logical_id: str | None = None
    resource_type: str | None = None
    service_timeout: float | None = None
    keep_table: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.lambda_timeout <= MAX_LAMBDA_TIMEOUT:
            raise ConfigurationError(
                f"the Lambda timeout must be within (0, 900] seconds, not {self.lambda_timeout:g}"
            )
        if self.service_timeout is not None and not 1 <= self.service_timeout <= 3600:
            raise ConfigurationError(
                f"ServiceTimeout must be within 1..3600 seconds, not {self.service_timeout:g}"
            )
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", self.stack_name):
            raise ConfigurationError(f"invalid stack name {self.stack_name!r}")
        if self.logical_id is not None and not re.fullmatch(r"[A-Za-z0-9]{1,255}", self.logical_id):
            raise ConfigurationError(
                f"invalid logical id {self.logical_id!r}: letters and digits only"
            )
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))
        object.__setattr__(self, "code_paths", tuple(os.fspath(p) for p in self.code_paths))


class LocalStack:
    """Servers, journal table and function for one resource (see the module docstring).

    ::

        with LocalStack(StackConfig(resource="examples.backfill:backfill")) as stack:
            for run in stack.lifecycle({"Items": 100}):
                print(run.label, run.status)

    Raises (from ``start``): ``ResourceSpecError`` for a bad ``MODULE:RESOURCE``,
    ``LocalServerError`` when a server cannot start, ``JournalError`` for the table.
    """

    def __init__(self, config: StackConfig, *, watcher: Watcher | None = None) -> None:
        self.config = config
        self.watcher: Watcher = watcher or QuietWatcher()
        self._exit = contextlib.ExitStack()
        self._moto: MotoServer | None = None
        self._dynamodb_local: DynamoDBLocal | None = None
        self._lambda: LambdaServiceThread | None = None
        self._s3: Any = None  # a botocore S3 client
        self._journal: Journal | None = None
        self._created_table = False
        self._log_index = 0
        self._record_index = 0
        self._sent = 0
        self.resource_type = ""
        self.logical_id = ""
        self.function_name = ""
        self.dynamodb_endpoint = ""
        self.dynamodb_kind = ""
        self.table = ""
        self.stack_id = ""

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Import the resource, start the servers, create the table, deploy the function.

        Raises:
            ResourceSpecError, LocalServerError, JournalError, ConfigurationError.
        """
        config = self.config
        resource = load_resource(config.resource)  # a bad name fails before anything starts
        attr = config.resource.rpartition(":")[2].rpartition(".")[2]
        self.logical_id = config.logical_id or _camel(attr) or "Resource"
        self.resource_type = (
            config.resource_type or resource.resource_type or (f"Custom::{self.logical_id}")
        )
        self.stack_id = (
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{config.stack_name}/{uuid.uuid4()}"
        )
        self.function_name = f"{config.stack_name}-{self.logical_id}"[:64]
        try:
            self._exit.enter_context(_local_credentials())
            self._start_servers()
            self._ensure_table(journal_table_of(config.resource))
            self._start_lambda()
        except BaseException:
            self.close()
            raise
        return self

    def _start_servers(self) -> None:
        from asynccfn.local.dynamodb import DynamoDBLocal, MotoServer

        self._moto = MotoServer()
        self._moto.start()
        self._s3 = _s3_client(self._moto.endpoint_url)
        self._s3.create_bucket(Bucket=RESPONSE_BUCKET)  # moto: a no-op when it exists
        wanted = self.config.dynamodb or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
        if wanted == DYNAMODB_LOCAL:
            self._dynamodb_local = DynamoDBLocal()
            self.dynamodb_endpoint = self._dynamodb_local.start()
            self.dynamodb_kind = "DynamoDB Local"
        elif wanted:
            self.dynamodb_endpoint = wanted
            self.dynamodb_kind = "DynamoDB"
        else:
            self.dynamodb_endpoint = self._moto.endpoint_url
            self.dynamodb_kind = "moto's DynamoDB"

    @property
    def embedded_journal(self) -> bool:
        """The journal lives in moto's server in this process."""
        return self._moto is not None and self.dynamodb_endpoint == self._moto.endpoint_url

    @property
    def journal_server_started(self) -> bool:
        """The journal's server is one this stack started: it stops when the stack does."""
        return self.embedded_journal or self._dynamodb_local is not None

    @property
    def moto_endpoint(self) -> str:
        """moto's server: S3 for the responses, and every AWS API but Lambda's."""
        if self._moto is None:
            raise ConfigurationError("the local stack is not started")
        return self._moto.endpoint_url

    @property
    def lambda_endpoint(self) -> str:
        if self._lambda is None:
            raise ConfigurationError("the local stack is not started")
        return self._lambda.endpoint_url

    def _ensure_table(self, named_by_module: str | None) -> None:
        from asynccfn.journal.query import Journal

        if self.config.table:
            self.table = self.config.table
        elif named_by_module:
            self.table = named_by_module
        elif self.embedded_journal:
            self.table = EMBEDDED_TABLE
        else:
            self.table = f"asynccfn-local-{uuid.uuid4().hex[:8]}"
        self._journal = Journal(self.table, region=REGION, endpoint_url=self.dynamodb_endpoint)
        try:
            self._journal.create_table()
        except AsyncCfnError as exc:
            if "already exists" not in str(exc):
                raise
        else:
            self._created_table = True

    def _start_lambda(self) -> None:
        from asynccfn.local.lambda_service import LambdaServiceThread

        config = self.config
        moto = self.moto_endpoint
        environment = {
            "PYTHONUNBUFFERED": "1",  # the handler's prints show as they happen
            "AWS_ENDPOINT_URL": moto,  # nothing the handler calls reaches a real account
            "AWS_ENDPOINT_URL_S3": moto,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
            "ASYNCCFN_JOURNAL_TABLE": self.table,
            ALLOWED_HOSTS_ENV: moto.split("://", 1)[1],
            RESOURCE_ENV: config.resource,
            **config.environment,
        }
        if config.handover_after_step:
            environment[HANDOVER_AFTER_STEP_ENV] = "1"
        self._lambda = LambdaServiceThread()
        self._lambda.start()
        # As DESIGN.md section 5 deploys it: recursion allowed, events at most 15 minutes
        # old, the function its own on-failure destination. Retries come sooner than
        # Lambda's minute, for a person waiting at a terminal.
        self._lambda.add_function(
            FunctionConfig(
                name=self.function_name,
                handler=HANDLER,
                code_paths=list(config.code_paths) or [os.getcwd()],
                timeout=config.lambda_timeout,
                environment=environment,
                recursive_loop=RecursiveLoop.ALLOW,
                max_event_age=900.0,
                on_failure=self.function_name,
                retry_delays=(1.0, 2.0),
            )
        )

    def stop_lambda(self) -> None:
        """Stop the Lambda service and kill its workers; the servers and the table stay.
        Idempotent; raises nothing."""
        lambdas, self._lambda = self._lambda, None
        if lambdas is not None:
            lambdas.stop()

    def close(self) -> None:
        """Stop the Lambda service (killing its workers), drop the table unless kept, stop
        the servers. Idempotent; raises nothing."""
        self.stop_lambda()
        journal, self._journal = self._journal, None
        if journal is not None and self._created_table and not self.config.keep_table:
            with contextlib.suppress(Exception):
                _delete_table(journal)
        if self._s3 is not None:
            self._s3.close()
            self._s3 = None
        if self._dynamodb_local is not None:
            self._dynamodb_local.stop()
            self._dynamodb_local = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self._exit.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------------

    def lifecycle(
        self,
        properties: Mapping[str, Any],
        update_properties: Mapping[str, Any] | None = None,
        *,
        replay: bool = False,
    ) -> list[OperationRun]:
        """Create, then Update (when ``update_properties`` is given), then Delete, as a stack
        would: a failed Create is rolled back (Delete of the id it reported) and ends the
        life; a failed Update is rolled back (an Update back to the old properties); an
        Update that changed the physical id is followed by the Delete of the old one.
        ``replay`` runs each operation once more from its journal (see :meth:`replay`).

        Raises:
            NoResponse: a request was never answered.
        """
        runs: list[OperationRun] = []

        def send(
            label: str, request_type: RequestType, props: Mapping[str, Any], **kw: Any
        ) -> OperationRun:
            run = self.send(request_type, props, label=label, **kw)
            if replay:
                run = self.replay(run)
            runs.append(run)
            return run

        create = send("Create", RequestType.CREATE, properties)
        if not create.ok:
            send(
                "Delete (rollback)", RequestType.DELETE, properties, physical_id=create.physical_id
            )
            return runs
        current_id, current = create.physical_id, properties
        if update_properties is not None:
            update = send(
                "Update",
                RequestType.UPDATE,
                update_properties,
                old_properties=current,
                physical_id=current_id,
            )
            if update.ok:
                if update.physical_id != current_id:
                    send("Delete (replaced)", RequestType.DELETE, current, physical_id=current_id)
                current_id, current = update.physical_id, update_properties
            else:
                rollback = send(
                    "Update (rollback)",
                    RequestType.UPDATE,
                    current,
                    old_properties=update_properties,
                    physical_id=current_id,
                )
                if rollback.ok:
                    current_id = rollback.physical_id
        send("Delete", RequestType.DELETE, current, physical_id=current_id)
        return runs

    def send(
        self,
        request_type: RequestType,
        properties: Mapping[str, Any],
        *,
        old_properties: Mapping[str, Any] | None = None,
        physical_id: str | None = None,
        label: str | None = None,
    ) -> OperationRun:
        """Send one request and wait for its response.

        Raises:
            NoResponse: the function went quiet without answering.
            ConfigurationError: the stack is not started.
        """
        event: dict[str, Any] = {
            "RequestType": request_type.value,
            "ServiceToken": self._function_arn,
            "StackId": self.stack_id,
            "RequestId": str(uuid.uuid4()),
            "ResourceType": self.resource_type,
            "LogicalResourceId": self.logical_id,
            "ResourceProperties": {"ServiceToken": self._function_arn, **properties},
        }
        if request_type is not RequestType.CREATE:
            event["PhysicalResourceId"] = physical_id or f"{self.logical_id}-local"
        if request_type is RequestType.UPDATE:
            old = old_properties if old_properties is not None else properties
            event["OldResourceProperties"] = {"ServiceToken": self._function_arn, **old}
        if self.config.service_timeout is not None:
            event["ServiceTimeout"] = str(int(self.config.service_timeout))
        return self._deliver(label or request_type.value, request_type, event)

    def replay(self, run: OperationRun) -> OperationRun:
        """Run ``run``'s operation once more from its journal: the same request as a new
        attempt (a new ResponseURL), which keeps the journaled steps, so a deterministic
        handler replays every one of them and answers as before. Returns ``run`` with
        :attr:`OperationRun.replay` set.

        Raises:
            NoResponse: the replay was never answered.
        """
        again = self._deliver(f"{run.label}, replayed", run.request_type, dict(run.request))
        original = {step.position: step for step in run.journal.steps}
        attempt = again.journal.operation.attempt
        rerun = tuple(
            step
            for step in again.journal.steps
            if step.op_attempt == attempt
            and not (
                step.position in original and original[step.position].status is StepStatus.FAILED
            )
        )
        problems = [
            f"step {step.name!r} at position {step.position} ran live on replay instead of "
            "coming from the journal"
            for step in rerun
        ]
        problems += response_differences(run.response, again.response)
        replayed = Replay(response=again.response, rerun=rerun, problems=tuple(problems))
        return OperationRun(
            label=run.label,
            request_type=run.request_type,
            request=run.request,
            response=run.response,
            journal=run.journal,
            invocations=run.invocations,
            elapsed=run.elapsed,
            replay=replayed,
        )

    @property
    def _function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    def _deliver(
        self, label: str, request_type: RequestType, event: dict[str, Any]
    ) -> OperationRun:
        lambdas, s3 = self._lambda, self._s3
        if lambdas is None or s3 is None:
            raise ConfigurationError("the local stack is not started: call start()")
        self._sent += 1
        key = f"{self.config.stack_name}/{event['RequestId']}/{self._sent}"
        url = s3.generate_presigned_url(
            "put_object", Params={"Bucket": RESPONSE_BUCKET, "Key": key}, ExpiresIn=7200
        )
        request = {k: v for k, v in event.items() if k != "ResponseURL"}
        op_id = operation_id(self.stack_id, self.logical_id, str(event["RequestId"]))
        first_record = len(lambdas.records(self.function_name))
        self.watcher.request_sent(label, request)
        started = time.monotonic()
        lambdas.invoke(self.function_name, {**event, "ResponseURL": url}, invocation_type="Event")
        body, shown = self._await_response(key, op_id, label)
        with contextlib.suppress(TimeoutError):
            lambdas.wait_idle(timeout=_SETTLE)
        detail = self._pump(op_id, shown)
        if detail is None:
            raise NoResponse(f"{label} was answered, but its operation is not in the journal")
        run = OperationRun(
            label=label,
            request_type=request_type,
            request=request,
            response=body,
            journal=detail,
            invocations=tuple(lambdas.records(self.function_name)[first_record:]),
            elapsed=time.monotonic() - started,
        )
        self.watcher.answered(run)
        return run

    def _await_response(
        self, key: str, op_id: str, label: str
    ) -> tuple[Mapping[str, Any], OperationDetail | None]:
        import json

        assert self._lambda is not None
        limit = (self.config.service_timeout or 3600.0) + 60.0
        give_up = time.monotonic() + limit
        idle_polls = 0
        shown: OperationDetail | None = None
        next_journal = 0.0
        while True:
            idle = self._lambda.service.idle  # before the read: a response is PUT while busy
            raw = self._read_response(key)
            if raw is not None or time.monotonic() >= next_journal:
                shown = self._pump(op_id, shown)
                next_journal = time.monotonic() + _JOURNAL_POLL
            if raw is not None:
                body: Mapping[str, Any] = json.loads(raw)
                return body, shown
            idle_polls = idle_polls + 1 if idle else 0
            if idle_polls >= _IDLE_POLLS:
                raise NoResponse(f"{label} was never answered: {self._why_silent(shown)}")
            if time.monotonic() >= give_up:
                raise NoResponse(f"{label} was not answered within {limit:g} s")
            time.sleep(_POLL)

    def _why_silent(self, detail: OperationDetail | None) -> str:
        assert self._lambda is not None
        records = self._lambda.records(self.function_name)
        last = records[-1] if records else None
        if last is not None and last.error:
            kind = last.error.get("errorType", "error")
            message = " ".join(str(last.error.get("errorMessage", "")).split())
            return f"the function's last invocation ended with {kind}: {message}"
        if detail is not None and detail.operation.reason:
            return f"the journal says {detail.operation.status.value}: {detail.operation.reason}"
        return "see the function's output above"

    def _read_response(self, key: str) -> bytes | None:
        assert self._s3 is not None
        from botocore.exceptions import ClientError

        try:
            answer = self._s3.get_object(Bucket=RESPONSE_BUCKET, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        body: bytes = answer["Body"].read()
        return body

    def _pump(self, op_id: str, shown: OperationDetail | None) -> OperationDetail | None:
        """Pass on new worker output, ended invocations and a changed journal; return the
        journal as it is now."""
        from asynccfn.journal.query import OperationNotFound

        assert self._lambda is not None and self._journal is not None
        lines = self._lambda.logs(self.function_name)
        for line in lines[self._log_index :]:
            self.watcher.output(line)
        self._log_index = len(lines)
        records = self._lambda.records(self.function_name)
        for record in records[self._record_index :]:
            self.watcher.invocation_ended(record)
        self._record_index = len(records)
        try:
            detail = self._journal.get_operation(op_id)
        except OperationNotFound:
            return shown
        except (ValueError, TypeError):
            # moto applies an update to an item one action at a time, and a read from another
            # thread may see it half done (no status yet): read it again at the next poll.
            return shown
        if detail != shown:
            self.watcher.journal(detail)
        return detail

    # -- what the function did ----------------------------------------------------------------

    def worker_pids(self) -> list[int]:
        """Process ids of the function's live workers."""
        return self._lambda.worker_pids() if self._lambda is not None else []


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


def _s3_client(endpoint: str) -> Any:
    import botocore.session
    from botocore.config import Config

    return botocore.session.Session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        # SigV4 query authentication, as CloudFormation's ResponseURLs (X-Amz-Date/Expires).
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def _delete_table(journal: Journal) -> None:
    from asynccfn.journal.models import bind

    bind(journal.table, journal.region, journal.endpoint_url).operation.delete_table()


_CREDENTIAL_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@contextlib.contextmanager
def _local_credentials() -> Iterator[None]:
    """The local account's credentials for this process's own reads (the journal through
    pynamodb, which takes them from the environment), restored afterwards."""
    saved = {name: os.environ.get(name) for name in _CREDENTIAL_NAMES}
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ["AWS_ACCESS_KEY_ID"] = LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"]
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
