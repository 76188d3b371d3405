"""What a local stack runs on: moto's server (S3 for the responses, DynamoDB for the journal
unless another is given), the journal table, and the local Lambda service with the function
deployed. They start together and stop together, every worker process killed and reaped; the
module docstring of :mod:`asynccfn.local.stack` draws them.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Self

from asynccfn._env import JOURNAL_TABLE_ENV, KMS_KEY_ENV
from asynccfn._errors import AsyncCfnError, ConfigurationError
from asynccfn._protocol import ALLOWED_HOSTS_ENV
from asynccfn._provider import Provider
from asynccfn.local._env import ACCOUNT_ID, LOCAL_AWS_ENV, REGION, StartStop
from asynccfn.local._functions import FunctionConfig, RecursiveLoop
from asynccfn.local._loader import (
    HANDLER,
    HANDLER_EVERY_STEP,
    LOCAL_LEASE,
    RESOURCE_ENV,
    ResourceSpecError,
    journal_table_of,
    lease_of,
    load_resource,
)
from asynccfn.local._stack_config import DYNAMODB_LOCAL, StackConfig

if TYPE_CHECKING:
    from asynccfn.journal.query import Journal
    from asynccfn.local.dynamodb import DynamoDBLocal, MotoServer
    from asynccfn.local.lambda_service import LambdaServiceThread

__all__ = ["EMBEDDED_TABLE", "RESPONSE_BUCKET", "LocalDeployment"]

EMBEDDED_TABLE = "asynccfn-journal"
RESPONSE_BUCKET = "asynccfn-local-responses"


class LocalDeployment(StartStop):
    """The servers, the journal table and the function for one resource: :meth:`start`
    brings them up, :meth:`close` takes them down; :class:`~asynccfn.local.stack.LocalStack`
    sends requests to them."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self._exit = contextlib.ExitStack()
        self._moto: MotoServer | None = None
        self._dynamodb_local: DynamoDBLocal | None = None
        self._lambda: LambdaServiceThread | None = None
        self._s3: Any = None  # a botocore S3 client
        self._journal: Journal | None = None
        self._created_table = False
        self.resource_type = ""
        self.logical_id = ""
        self.function_name = ""
        self.dynamodb_endpoint = ""
        self.dynamodb_kind = ""
        self.table = ""
        self.stack_id = ""
        self.kms_key: str | None = None  # the ARN of the payload codec's key in moto

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Import the resource, start the servers, create the table, deploy the function.

        Raises:
            ResourceSpecError, LocalServerError, JournalError, ConfigurationError.
        """
        config = self.config
        resource = load_resource(config.resource)  # a bad name fails before anything starts
        unanswered = resource.unanswered()
        if unanswered:  # found on the laptop, before a stack's first Update fails on it
            raise ResourceSpecError(f"{config.resource}: " + "; ".join(unanswered))
        attr = config.resource.rpartition(":")[2].rpartition(".")[2]
        self.logical_id = config.logical_id or _camel(attr) or "Resource"
        # A Provider's first type, unless --resource-type names the one to exercise.
        declared = resource.types[0] if isinstance(resource, Provider) else resource.resource_type
        self.resource_type = config.resource_type or declared or (f"Custom::{self.logical_id}")
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
            JOURNAL_TABLE_ENV: self.table,
            ALLOWED_HOSTS_ENV: moto.split("://", 1)[1],
            RESOURCE_ENV: config.resource,
            **config.environment,
        }
        if config.kms_key:
            self.kms_key = _create_kms_key(moto)
            environment[KMS_KEY_ENV] = self.kms_key
        self._lambda = (
            LambdaServiceThread(python=config.python) if config.python else LambdaServiceThread()
        )
        self._lambda.start()
        # As DESIGN.md section 5 deploys it: recursion allowed, events at most 15 minutes
        # old, the function its own on-failure destination. Retries come sooner than
        # Lambda's minute, for a person waiting at a terminal, but as in Lambda after the
        # lease of an attempt that crashed or timed out has run out (Lambda's minute outlasts
        # the default 30 s lease): a resource the module did not wrap itself runs with a
        # short lease, and a module's own lease sets the delay.
        own = lease_of(config.resource)
        lease, skew = own or LOCAL_LEASE  # the workers' handler runs a bare resource so
        retry = lease + skew + 0.5
        self._lambda.add_function(
            FunctionConfig(
                name=self.function_name,
                handler=config.handler
                or (HANDLER_EVERY_STEP if config.handover_after_step else HANDLER),
                code_paths=list(config.code_paths) or [os.getcwd()],
                timeout=config.lambda_timeout,
                environment=environment,
                recursive_loop=RecursiveLoop.ALLOW,
                max_event_age=900.0,
                on_failure=self.function_name,
                retry_delays=(retry, retry),
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

    def stop(self) -> None:
        self.close()

    @property
    def _function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

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


def _create_kms_key(endpoint: str) -> str:
    """A new symmetric key in moto's KMS at ``endpoint``: its ARN."""
    import botocore.session

    kms: Any = botocore.session.Session().create_client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        arn: str = kms.create_key(Description="asynccfn local journal")["KeyMetadata"]["Arn"]
    finally:
        kms.close()
    return arn


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
