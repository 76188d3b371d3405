"""The local servers every benchmark talks to: DynamoDB Local, moto's S3, the Lambda service.

moto runs in a child process here, not in a thread of the benchmark process: its request
handling would otherwise take the GIL from the event loop being measured. The environment
points every AWS SDK in this process (and in the processes it starts) at the servers and at
the local account, never at a real one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from asynccfn.local import LOCAL_AWS_ENV, DynamoDBLocal, LocalServerError

RESPONSE_BUCKET = "asynccfn-bench-responses"

_MOTO_CHILD = """
import sys
from asynccfn.local import MotoServer
server = MotoServer()
print(server.start(), flush=True)
sys.stdin.read()
server.stop()
"""


def local_environment(dynamodb: str, s3: str) -> dict[str, str]:
    """The variables that point asynccfn (and the floor) at the servers."""
    return {
        **LOCAL_AWS_ENV,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb,
        "AWS_ENDPOINT_URL_S3": s3,
        "ASYNCCFN_ALLOWED_RESPONSE_HOSTS": urlsplit(s3).netloc,
    }


@dataclass
class Servers:
    """Endpoints of running servers, and what the benchmarks make with them.

    Build one with :func:`start_servers`, or from endpoints a caller already runs (the smoke
    test passes its fixtures' servers, and sets ``environment`` itself).
    """

    dynamodb: str
    s3: str
    lambdas: Any = None  # a started LambdaServiceThread, made on first use
    journal: str | None = None  # the shared journal table, made on first use
    _s3_client: Any = None
    _stack: ExitStack = field(default_factory=ExitStack)

    @property
    def environment(self) -> dict[str, str]:
        return local_environment(self.dynamodb, self.s3)

    def response_url(self) -> str:
        """A fresh SigV4 pre-signed PUT URL in moto's S3, like CloudFormation's."""
        if self._s3_client is None:
            import botocore.session
            from botocore.config import Config

            self._s3_client = botocore.session.get_session().create_client(
                "s3",
                endpoint_url=self.s3,
                region_name=LOCAL_AWS_ENV["AWS_REGION"],
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            )
            self._stack.callback(self._s3_client.close)
            try:
                self._s3_client.create_bucket(Bucket=RESPONSE_BUCKET)
            except self._s3_client.exceptions.BucketAlreadyOwnedByYou:
                pass
        url: str = self._s3_client.generate_presigned_url(
            "put_object",
            Params={"Bucket": RESPONSE_BUCKET, "Key": f"responses/{uuid.uuid4()}"},
            ExpiresIn=7200,
        )
        return url

    def response_body(self, url: str) -> bytes | None:
        """What was PUT to ``url``, or None."""
        key = urlsplit(url).path.split(f"/{RESPONSE_BUCKET}/", 1)[1]
        try:
            answer = self._s3_client.get_object(Bucket=RESPONSE_BUCKET, Key=key)
        except self._s3_client.exceptions.NoSuchKey:
            return None
        body: bytes = answer["Body"].read()
        return body

    def table(self) -> str:
        """The journal table every benchmark shares (made on first use; operations never
        share keys, so they cannot meet)."""
        if self.journal is None:
            from asynccfn.journal.table import create_table

            name = f"bench-{uuid.uuid4().hex[:10]}"
            create_table(name, region=LOCAL_AWS_ENV["AWS_REGION"], host=self.dynamodb)
            self.journal = name
        return self.journal

    def lambda_service(self) -> Any:
        """The local Lambda service (started on first use, stopped with the servers)."""
        if self.lambdas is None:
            from asynccfn.local.lambda_service import LambdaServiceThread

            self.lambdas = self._stack.enter_context(LambdaServiceThread())
        return self.lambdas

    def close(self) -> None:
        self._stack.close()


def start_servers(stack: ExitStack) -> Servers:
    """Start DynamoDB Local and moto's server (closed with ``stack``) and point this process's
    environment at them.

    Raises:
        LocalServerError: a server could not start.
    """
    dynamodb = stack.enter_context(DynamoDBLocal())
    moto = subprocess.Popen(
        [sys.executable, "-c", _MOTO_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stack.callback(_stop_child, moto)
    assert moto.stdout is not None
    endpoint = moto.stdout.readline().strip()
    if not endpoint.startswith("http"):
        raise LocalServerError("moto's server did not start")
    servers = Servers(dynamodb=dynamodb.endpoint_url, s3=endpoint)
    stack.callback(servers.close)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.update(servers.environment)
    return servers


def _stop_child(process: subprocess.Popen[str]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
