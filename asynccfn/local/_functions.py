"""A local Lambda function's configuration, and how the Invoke API names a function."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from asynccfn._errors import ConfigurationError
from asynccfn.local._env import ACCOUNT_ID, REGION

__all__ = ["FunctionConfig", "RecursiveLoop", "function_arn", "function_name_from"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# name | name:qualifier | account:function:name[:qualifier] | arn:aws:lambda:region:account:...
_IDENTIFIER = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:function:)?"
    r"(?P<name>[A-Za-z0-9_-]{1,64})(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$"
)


class RecursiveLoop(StrEnum):
    """The function's recursive loop setting, as in ``PutFunctionRecursionConfig``."""

    ALLOW = "Allow"
    TERMINATE = "Terminate"


@dataclass(frozen=True, kw_only=True, slots=True)
class FunctionConfig:
    """One function of the local Lambda service.

    ``handler`` is ``module.function`` as in Lambda, imported from ``code_paths`` (the first
    is the task root and the working directory). ``timeout`` is in seconds and may be a
    fraction. ``environment`` is added to the function's environment, over the local
    credentials and ``AWS_ENDPOINT_URL_LAMBDA`` (which points back at the service). The
    asynchronous-invocation settings follow Lambda's EventInvokeConfig: ``max_retries``
    (0 to 2), ``retry_delays`` (seconds before the first and later retries; Lambda waits about
    60 then 120), ``max_event_age`` (seconds), and ``on_failure`` (a function of the same
    service that receives the on-failure record). ``concurrency`` caps the function's worker
    processes; more invocations wait for one to be free.

    Raises ``ConfigurationError`` for a value Lambda would refuse.
    """

    name: str
    handler: str
    code_paths: Sequence[str | os.PathLike[str]] = ()
    timeout: float = 3.0
    memory: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)
    max_retries: int = 2
    retry_delays: Sequence[float] = (60.0, 120.0)
    max_event_age: float = 21600.0
    on_failure: str | None = None
    recursive_loop: RecursiveLoop | Literal["Allow", "Terminate"] = RecursiveLoop.TERMINATE
    concurrency: int = 4

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigurationError(f"invalid function name {self.name!r}")
        if "." not in self.handler:
            raise ConfigurationError(f"handler {self.handler!r} is not module.function")
        if not self.timeout > 0:
            raise ConfigurationError(f"timeout must be positive, not {self.timeout!r}")
        if not 0 <= self.max_retries <= 2:
            raise ConfigurationError(f"max_retries must be 0, 1 or 2, not {self.max_retries!r}")
        if not self.retry_delays or any(delay < 0 for delay in self.retry_delays):
            raise ConfigurationError(f"retry_delays must be non-negative: {self.retry_delays!r}")
        if not self.max_event_age > 0:
            raise ConfigurationError(f"max_event_age must be positive: {self.max_event_age!r}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.environment.items()):
            raise ConfigurationError(f"environment must map str to str: {self.environment!r}")
        if self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1: {self.concurrency!r}")
        # Store immutable copies so that a frozen config stays frozen.
        object.__setattr__(self, "code_paths", tuple(os.fspath(path) for path in self.code_paths))
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))
        object.__setattr__(self, "retry_delays", tuple(float(d) for d in self.retry_delays))
        object.__setattr__(self, "recursive_loop", RecursiveLoop(self.recursive_loop))

    @property
    def paths(self) -> tuple[str, ...]:
        """``code_paths`` as strings, the task root first."""
        return tuple(os.fspath(path) for path in self.code_paths)

    @property
    def arn(self) -> str:
        """The function's unqualified ARN in the local account."""
        return function_arn(self.name)

    def retry_delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based). Raises nothing."""
        return float(self.retry_delays[min(retry, len(self.retry_delays)) - 1])


def function_arn(name: str) -> str:
    """The unqualified ARN of function ``name`` in the local account. Raises nothing."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


def function_name_from(identifier: str) -> str | None:
    """The function name in an Invoke API ``FunctionName`` (name, partial or full ARN).

    A qualifier (``:$LATEST``, an alias or version) is accepted and ignored: the local
    service runs one version of each function. Returns ``None`` for a malformed identifier.
    """
    match = _IDENTIFIER.match(identifier)
    return match.group("name") if match else None
