"""How to run one resource on a local stack: :class:`StackConfig`, checked when it is made."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from asynccfn._errors import ConfigurationError

__all__ = ["DYNAMODB_LOCAL", "MAX_LAMBDA_TIMEOUT", "StackConfig"]

DYNAMODB_LOCAL = "dynamodb-local"
"""``StackConfig(dynamodb=...)`` value that starts Amazon's DynamoDB Local (needs Java)."""

MAX_LAMBDA_TIMEOUT = 900.0


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
    leaves the journal table in place; ``kms_key`` creates a key in moto's KMS and gives the
    function ``ASYNCCFN_KMS_KEY``, so that its journal is encrypted by ``KmsCodec``;
    ``raw_properties`` sends properties with their JSON types instead of as CloudFormation
    does (every scalar a string);
    ``handler`` replaces the local runner's handler with the function's own (``module.attr``,
    e.g. a packaged zip's), and ``python`` the interpreter of the workers.

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
    kms_key: bool = False
    raw_properties: bool = False
    handler: str | None = None
    python: str | None = None

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
