"""asynccfn: durable async handlers for AWS CloudFormation custom resources."""

from __future__ import annotations

from ._context import Context
from ._entry import lambda_entry
from ._errors import (
    AsyncCfnError,
    CodecError,
    ConcurrentStepError,
    ConfigurationError,
    ContinuationError,
    DeliveryError,
    Failed,
    FenceLost,
    HandlerExited,
    JournalError,
    JournalTampered,
    NonDeterminismError,
    OperationTimeout,
    PayloadTooLarge,
    RequestError,
    ResponseURLRefused,
    StepFailed,
    StepInterrupted,
    UndeliverableResponse,
    WaitTimeout,
)
from ._fields import Replaces, field
from ._kms import KmsCodec
from ._protocol import Request, RequestType
from ._provider import Provider
from ._resource import Resource
from ._responder import DeliveryPolicy
from ._result import Success
from ._retry import RetryPolicy
from .journal._payload import PayloadCodec

__all__ = [
    "AsyncCfnError",
    "CodecError",
    "ConcurrentStepError",
    "ConfigurationError",
    "Context",
    "ContinuationError",
    "DeliveryError",
    "DeliveryPolicy",
    "Failed",
    "FenceLost",
    "HandlerExited",
    "JournalError",
    "JournalTampered",
    "KmsCodec",
    "NonDeterminismError",
    "OperationTimeout",
    "PayloadCodec",
    "PayloadTooLarge",
    "Provider",
    "Replaces",
    "Request",
    "RequestError",
    "RequestType",
    "Resource",
    "ResponseURLRefused",
    "RetryPolicy",
    "StepFailed",
    "StepInterrupted",
    "Success",
    "UndeliverableResponse",
    "WaitTimeout",
    "field",
    "lambda_entry",
]
