"""Real local servers for tests and ``asynccfn local``: DynamoDB Local, moto, a Lambda service.

Point an AWS SDK at them with ``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL_S3`` and
``AWS_ENDPOINT_URL_LAMBDA`` plus the credentials in :data:`LOCAL_AWS_ENV`; the code under test
does not know it runs locally.
"""

from __future__ import annotations

from asynccfn.local._env import LOCAL_AWS_ENV, LocalServerError, free_port
from asynccfn.local.dynamodb import DynamoDBLocal, MotoServer
from asynccfn.local.lambda_service import (
    FunctionConfig,
    InvocationRecord,
    InvocationType,
    InvokeResult,
    LambdaService,
    LambdaServiceThread,
    Outcome,
)

__all__ = [
    "LOCAL_AWS_ENV",
    "DynamoDBLocal",
    "FunctionConfig",
    "InvocationRecord",
    "InvocationType",
    "InvokeResult",
    "LambdaService",
    "LambdaServiceThread",
    "LocalServerError",
    "MotoServer",
    "Outcome",
    "free_port",
]
