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

The parts live beside this module: :class:`StackConfig` in ``_stack_config``, the servers, table
and function a stack starts in ``_deployment``, and what a run reports in ``_runs``.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from asynccfn._aws import error_code
from asynccfn._errors import ConfigurationError
from asynccfn._protocol import RequestType
from asynccfn.journal.models import StepStatus, operation_id
from asynccfn.local._cfn_encoding import as_cloudformation_sends
from asynccfn.local._deployment import EMBEDDED_TABLE as EMBEDDED_TABLE
from asynccfn.local._deployment import RESPONSE_BUCKET as RESPONSE_BUCKET
from asynccfn.local._deployment import LocalDeployment
from asynccfn.local._runs import (
    NoResponse,
    OperationRun,
    QuietWatcher,
    Replay,
    Watcher,
    response_differences,
)
from asynccfn.local._stack_config import DYNAMODB_LOCAL, StackConfig
from asynccfn.local._stack_config import MAX_LAMBDA_TIMEOUT as MAX_LAMBDA_TIMEOUT
from asynccfn.local._unvisited import unvisited_problems

if TYPE_CHECKING:
    from asynccfn.journal.query import OperationDetail

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

_POLL = 0.2
_JOURNAL_POLL = 0.5
_IDLE_POLLS = 3  # the service idle this many polls in a row, and no response: none will come
_SETTLE = 30.0  # after a response, how long the invocation may take to finish its writes


class LocalStack(LocalDeployment):
    """Servers, journal table and function for one resource (see the module docstring).

    ::

        with LocalStack(StackConfig(resource="asynccfn.examples.backfill:backfill")) as stack:
            for run in stack.lifecycle({"Items": 100}):
                print(run.label, run.status)

    Raises (from ``start``): ``ResourceSpecError`` for a bad ``MODULE:RESOURCE``,
    ``LocalServerError`` when a server cannot start, ``JournalError`` for the table.
    """

    def __init__(self, config: StackConfig, *, watcher: Watcher | None = None) -> None:
        super().__init__(config)
        self.watcher: Watcher = watcher or QuietWatcher()
        self._log_index = 0
        self._record_index = 0
        self._sent = 0

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
        logical_id: str | None = None,
        resource_type: str | None = None,
    ) -> OperationRun:
        """Send one request and wait for its response (``logical_id`` and ``resource_type``
        name another resource of a Provider's stack than the configured one). The properties
        go as CloudFormation sends them, every scalar a string, unless the config says
        ``raw_properties``.

        Raises:
            NoResponse: the function went quiet without answering.
            ConfigurationError: the stack is not started.
        """
        if not self.config.raw_properties:
            properties = as_cloudformation_sends(properties)
            if old_properties is not None:
                old_properties = as_cloudformation_sends(old_properties)
        event: dict[str, Any] = {
            "RequestType": request_type.value,
            "ServiceToken": self._function_arn,
            "StackId": self.stack_id,
            "RequestId": str(uuid.uuid4()),
            "ResourceType": resource_type or self.resource_type,
            "LogicalResourceId": logical_id or self.logical_id,
            "ResourceProperties": {"ServiceToken": self._function_arn, **properties},
        }
        if request_type is not RequestType.CREATE:
            event["PhysicalResourceId"] = physical_id or f"{logical_id or self.logical_id}-local"
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
        problems += unvisited_problems(run.journal, again.journal)
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
        op_id = operation_id(
            self.stack_id, str(event["LogicalResourceId"]), str(event["RequestId"])
        )
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
            if error_code(exc) in ("NoSuchKey", "404"):
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
