"""CloudFormation's side of the wire: the request, and the names of the whole protocol.

Everything here is pure (no I/O). ``parse_request`` turns a Lambda event into a frozen
``Request``, or into a ``RequestError`` that says exactly what is wrong and carries what can
still be answered (the identifiers to echo, a ResponseURL that passed the allow-list).

The rest of the protocol lives beside it and is re-exported here, the one import for the
runtime: ``_urls`` (which ResponseURLs are allowed, ``describe_url``) and ``_response``
(``Response``, ``build_body``, failed-create markers, ``mask_no_echo``).

The ResponseURL is a bearer credential: it never appears in a repr, a reason or a log line
written here.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic

from asynccfn._errors import RequestError, ResponseURLRefused
from asynccfn._json_values import (
    _freeze,
    _json_size,
    _json_type,
    _NotJSON,
    _ReadOnlyDict,
    _shown,
)
from asynccfn._response import (
    FAILED_CREATE_MARKER_PREFIX,
    MAX_BODY_BYTES,
    MAX_PHYSICAL_ID_BYTES,
    Echo,
    Response,
    Status,
    build_body,
    failed_create_physical_id,
    is_failed_create_marker,
    mask_no_echo,
    masked_body,
    physical_id_problem,
)
from asynccfn._response import MASK as MASK
from asynccfn._response import TRUNCATION_MARKER as TRUNCATION_MARKER
from asynccfn._urls import ALLOWED_HOSTS_ENV as ALLOWED_HOSTS_ENV
from asynccfn._urls import (
    MAX_URL_LENGTH,
    _signature_times,
    allowed_hosts_from_env,
    check_response_url,
    describe_url,
    is_cloudformation_url,
    url_key_identifiers,
)

__all__ = [
    "FAILED_CREATE_MARKER_PREFIX",
    "MAX_BODY_BYTES",
    "MAX_PHYSICAL_ID_BYTES",
    "MAX_URL_LENGTH",
    "Echo",
    "Request",
    "RequestType",
    "Response",
    "Status",
    "allowed_hosts_from_env",
    "build_body",
    "changed_keys",
    "check_response_url",
    "describe_url",
    "failed_create_physical_id",
    "failure_physical_id",
    "is_failed_create_marker",
    "mask_no_echo",
    "masked_body",
    "parse_request",
]

# Limits on the identifiers a response echoes, in bytes of their JSON form. Together with a
# fallback PhysicalResourceId and a short Reason they always fit in MAX_BODY_BYTES, so every
# request that parses can be answered.
_MAX_STACK_ID_BYTES = 1024
_MAX_REQUEST_ID_BYTES = 256
_MAX_LOGICAL_ID_BYTES = 256
_MAX_SERVICE_TOKEN_LENGTH = 2048
_MAX_RESOURCE_TYPE_LENGTH = 60
_MIN_SERVICE_TIMEOUT = 1
_MAX_SERVICE_TIMEOUT = 3600

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    # ``asynccfn.Request`` alone is a request of raw properties; ``Request[BucketProps]`` one
    # whose resource declared ``properties=BucketProps``.
    P = TypeVar("P", default=Mapping[str, Any])
else:
    from typing import TypeVar

    P = TypeVar("P")


class _Unset:
    """The default of the fields ``Request.__post_init__`` derives from the others."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()

_GENERIC_RESOURCE_TYPE = "AWS::CloudFormation::CustomResource"
_RESOURCE_TYPE = re.compile(r"Custom::[A-Za-z0-9_@:-]+")
_DECIMAL = re.compile(r"\s*[0-9]+(?:\.[0-9]+)?\s*")
# A CloudFormation ResponseURL's object key, decoded: StackId|LogicalResourceId|RequestId.
_IDENTIFIERS = (
    ("StackId", _MAX_STACK_ID_BYTES),
    ("LogicalResourceId", _MAX_LOGICAL_ID_BYTES),
    ("RequestId", _MAX_REQUEST_ID_BYTES),
)


class RequestType(enum.Enum):
    """What CloudFormation asks of the custom resource."""

    CREATE = "Create"
    UPDATE = "Update"
    DELETE = "Delete"


@dataclass(frozen=True, kw_only=True)
class Request(Generic[P]):
    """A frozen, typed view of a CloudFormation custom-resource event.

    ``properties`` and ``old_properties`` are read-only: nested objects are ``dict``
    subclasses and arrays ``list`` subclasses whose mutating methods raise ``TypeError`` (so
    they still serialise as JSON and pass botocore's parameter checks);
    ``copy.deepcopy(request.properties)`` gives a plain, mutable copy. They are left out of
    ``repr`` because properties may carry NoEcho template parameters, and ``response_url``
    because it is a bearer credential.

    When the resource declares ``properties=SomeType``, its handlers get a
    ``Request[SomeType]``: ``properties`` (and on Update ``old_properties``) are instances of
    that type converted from CloudFormation's strings, and the mappings as sent stay in
    ``raw_properties`` and ``raw_old_properties``.
    """

    request_type: RequestType
    request_id: str
    stack_id: str
    logical_id: str
    resource_type: str
    physical_id: str | None
    """None on Create; the resource's current id on Update and Delete."""
    properties: P = field(repr=False)
    old_properties: P | None = field(repr=False)
    """The previous properties, on Update only (None when a typed resource's old properties
    no longer convert: ``raw_old_properties`` has them)."""
    service_token: str
    service_timeout: float | None
    """ServiceTimeout in seconds (1..3600) when the event carries one."""
    response_url: str = field(repr=False)
    issued_at: float | None
    """Epoch seconds of the URL's X-Amz-Date (SigV4), else None."""
    url_expires_at: float | None
    """Epoch seconds when the URL expires (X-Amz-Date + X-Amz-Expires, or SigV2 Expires)."""
    raw_properties: Mapping[str, Any] = field(default=_UNSET, repr=False, compare=False)
    """ResourceProperties as CloudFormation sent them (``properties`` itself when untyped)."""
    raw_old_properties: Mapping[str, Any] | None = field(default=_UNSET, repr=False, compare=False)
    """OldResourceProperties as sent, on Update only."""
    changed: frozenset[str] = field(default=_UNSET, repr=False)
    """On Update, the properties whose value differs from the old one: the typed fields'
    names, or the raw keys (without ServiceToken) when untyped. Empty otherwise."""
    replacing: bool = False
    """On Update, whether a changed field is declared ``asynccfn.field(replaces=True)`` (or
    ``Annotated[..., asynccfn.Replaces]``): the update needs a new physical id."""
    property_errors: str | None = field(default=None, repr=False)
    """Why the properties did not convert, on a Delete of a typed resource that still runs
    its handler (with the raw mapping as ``properties``); None otherwise."""

    def __post_init__(self) -> None:
        # Derived here so that every way of building a Request (parsing, tests, the typed
        # view) gets them; object.__setattr__ because the dataclass is frozen.
        if self.raw_properties is _UNSET:
            object.__setattr__(self, "raw_properties", self.properties)
        if self.raw_old_properties is _UNSET:
            object.__setattr__(self, "raw_old_properties", self.old_properties)
        if self.changed is _UNSET:
            object.__setattr__(
                self, "changed", changed_keys(self.raw_properties, self.raw_old_properties)
            )

    @property
    def echo(self) -> Echo:
        """The identifiers a response to this request copies."""
        return Echo(stack_id=self.stack_id, request_id=self.request_id, logical_id=self.logical_id)

    @property
    def from_cloudformation(self) -> bool:
        """Whether the ResponseURL points into a CloudFormation response bucket (whose key,
        checked when parsing, names this very operation): only CloudFormation can sign one."""
        return is_cloudformation_url(self.response_url)

    @functools.cached_property  # read at the claim and twice more by the outbox
    def attempt_digest(self) -> str:
        """Hex SHA-256 of the ResponseURL: names the attempt without storing the credential."""
        return hashlib.sha256(self.response_url.encode("utf-8")).hexdigest()

    @functools.cached_property  # read by every claim the invocation makes
    def request_digest(self) -> str:
        """Hex SHA-256 of what the request asks for (its type, resource type, properties, old
        properties and physical id, as sent): every attempt of one request carries the same."""
        asked = {
            "RequestType": self.request_type.value,
            "ResourceType": self.resource_type,
            "ResourceProperties": self.raw_properties,
            "OldResourceProperties": self.raw_old_properties,
            "PhysicalResourceId": self.physical_id,
        }
        text = json.dumps(asked, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def changed_keys(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> frozenset[str]:
    """The top-level keys whose values differ between ``new`` and ``old`` (ServiceToken,
    which names the function and not the resource, left out); empty without ``old``."""
    if old is None:
        return frozenset()
    keys = (set(new) | set(old)) - {"ServiceToken"}
    return frozenset(key for key in keys if new.get(key, _UNSET) != old.get(key, _UNSET))


# --- request parsing -----------------------------------------------------------------------


def parse_request(event: object, *, allowed_hosts: frozenset[str]) -> Request:
    """Validate a custom-resource event and return its typed view.

    Every problem found is named in the reason (field, what was expected, what came), joined
    by "; ". The reason never contains the ResponseURL. Unknown top-level keys are ignored.

    Raises:
        ResponseURLRefused: ResponseURL is absent, malformed or not allowed (``echo`` is set
            when the identifiers are valid; ``response_url`` is None).
        RequestError: any other field is invalid; ``response_url`` is set when it passed the
            allow-list, and then ``echo`` always is, so a FAILED response can be posted:
            identifiers that are missing, empty or invalid are taken from the URL's object key
            (``StackId|LogicalResourceId|RequestId``), or echoed as the event has them (see
            ``_recovered_echo``).
    """
    if not isinstance(event, Mapping):
        raise RequestError(f"the event must be a JSON object; got {_json_type(event)}")
    problems: list[str] = []

    stack_id = _identifier(event, "StackId", _MAX_STACK_ID_BYTES, problems)
    request_id = _identifier(event, "RequestId", _MAX_REQUEST_ID_BYTES, problems)
    logical_id = _identifier(event, "LogicalResourceId", _MAX_LOGICAL_ID_BYTES, problems)
    echo = None
    if stack_id is not None and request_id is not None and logical_id is not None:
        echo = Echo(stack_id=stack_id, request_id=request_id, logical_id=logical_id)

    url_problem: str | None = None
    response_url: str | None = None
    try:
        response_url = check_response_url(
            event.get("ResponseURL"),
            allowed_hosts=allowed_hosts,
            identifiers=(echo.stack_id, echo.logical_id, echo.request_id) if echo else None,
        )
    except ResponseURLRefused as exc:
        url_problem = exc.reason
    if echo is None and response_url is not None:
        # The URL can take an answer: CloudFormation fails an invalid one at once, and
        # waits an hour for none.
        echo = _recovered_echo(event, response_url)

    request_type = _request_type(event, problems)
    resource_type = _resource_type(event, problems)
    service_token = _service_token(event, problems)
    properties = _properties(event, "ResourceProperties", problems, required=False)
    old_properties = None
    if request_type is RequestType.UPDATE:
        old_properties = _properties(event, "OldResourceProperties", problems, required=True)
    physical_id = None
    if request_type in (RequestType.UPDATE, RequestType.DELETE):
        physical_id = _physical_id(event, problems)
    service_timeout = _service_timeout(event, problems)

    if url_problem is not None:
        raise ResponseURLRefused("; ".join([url_problem, *problems]), echo=echo)
    if problems:
        raise RequestError(
            "; ".join(problems), echo=echo, response_url=response_url, physical_id=physical_id
        )
    if (
        echo is None
        or response_url is None
        or request_type is None
        or resource_type is None
        or service_token is None
        or properties is None
    ):
        raise AssertionError("unreachable: every missing field added a problem")
    issued_at, url_expires_at = _signature_times(response_url)
    return Request(
        request_type=request_type,
        request_id=echo.request_id,
        stack_id=echo.stack_id,
        logical_id=echo.logical_id,
        resource_type=resource_type,
        physical_id=physical_id,
        properties=properties,
        old_properties=old_properties,
        service_token=service_token,
        service_timeout=service_timeout,
        response_url=response_url,
        issued_at=issued_at,
        url_expires_at=url_expires_at,
    )


def _identifier(event: Mapping[Any, Any], name: str, limit: int, problems: list[str]) -> str | None:
    value = event.get(name)
    if name not in event:
        problems.append(f"{name} is missing")
        return None
    if not isinstance(value, str):
        problems.append(f"{name} must be a string; got {_json_type(value)}")
        return None
    if not value:
        problems.append(f"{name} is empty")
        return None
    size = _json_size(value)
    if size is None:
        problems.append(f"{name} is not valid Unicode text")
        return None
    if size > limit:
        problems.append(f"{name} is too long ({size} bytes as JSON; the limit is {limit})")
        return None
    return value


def _recovered_echo(event: Mapping[Any, Any], response_url: str) -> Echo:
    """The identifiers a FAILED answer to a malformed event echoes: each valid one as given,
    the others from the ResponseURL's object key when it has CloudFormation's shape, else
    the event's string as given (as valid text, cut to the limit) or empty."""
    from_key = url_key_identifiers(response_url)
    echoed = []
    for index, (name, limit) in enumerate(_IDENTIFIERS):
        value = _identifier(event, name, limit, [])
        if value is None and from_key is not None:
            value = _echoable(from_key[index], limit)
        if value is None:
            given = event.get(name)
            value = _echoable(given, limit) if isinstance(given, str) else ""
        echoed.append(value)
    stack_id, logical_id, request_id = echoed
    return Echo(stack_id=stack_id, logical_id=logical_id, request_id=request_id)


def _echoable(value: str, limit: int) -> str:
    """``value`` as text a response can carry: lone surrogates replaced, at most ``limit``
    bytes as JSON."""
    text = value.encode("utf-8", "replace").decode("utf-8")[:limit]
    while (_json_size(text) or 0) > limit:
        text = text[:-1]
    return text


def _request_type(event: Mapping[Any, Any], problems: list[str]) -> RequestType | None:
    value = event.get("RequestType")
    if "RequestType" not in event:
        problems.append("RequestType is missing")
        return None
    for member in RequestType:
        if value == member.value and isinstance(value, str):
            return member
    problems.append(f"RequestType must be one of Create, Update, Delete; got {_shown(value)}")
    return None


def _resource_type(event: Mapping[Any, Any], problems: list[str]) -> str | None:
    value = event.get("ResourceType")
    if "ResourceType" not in event:
        problems.append("ResourceType is missing")
        return None
    if isinstance(value, str) and (
        value == _GENERIC_RESOURCE_TYPE
        or (len(value) <= _MAX_RESOURCE_TYPE_LENGTH and _RESOURCE_TYPE.fullmatch(value))
    ):
        return value
    problems.append(
        f"ResourceType must be {_GENERIC_RESOURCE_TYPE} or 'Custom::' followed by letters, "
        f"digits and _@:- (at most {_MAX_RESOURCE_TYPE_LENGTH} characters in all); "
        f"got {_shown(value)}"
    )
    return None


def _service_token(event: Mapping[Any, Any], problems: list[str]) -> str | None:
    value = event.get("ServiceToken")
    if "ServiceToken" not in event:
        problems.append("ServiceToken is missing")
    elif not isinstance(value, str) or not value:
        problems.append(f"ServiceToken must be a non-empty string; got {_shown(value)}")
    elif len(value) > _MAX_SERVICE_TOKEN_LENGTH:
        problems.append(
            f"ServiceToken is {len(value)} characters; the limit is {_MAX_SERVICE_TOKEN_LENGTH}"
        )
    else:
        return value
    return None


def _properties(
    event: Mapping[Any, Any], name: str, problems: list[str], *, required: bool
) -> Mapping[str, Any] | None:
    if name not in event:
        if required:
            problems.append(f"{name} is missing")
            return None
        return _ReadOnlyDict()
    value = event.get(name)
    if not isinstance(value, Mapping):
        problems.append(f"{name} must be a JSON object; got {_json_type(value)}")
        return None
    try:
        frozen = _freeze(value)
    except _NotJSON as exc:
        problems.append(f"{name} {exc.args[0]}")
        return None
    assert isinstance(frozen, _ReadOnlyDict)
    return frozen


def _physical_id(event: Mapping[Any, Any], problems: list[str]) -> str | None:
    value = event.get("PhysicalResourceId")
    if "PhysicalResourceId" not in event:
        problems.append("PhysicalResourceId is missing (required for Update and Delete)")
        return None
    if not isinstance(value, str):
        problems.append(f"PhysicalResourceId must be a string; got {_json_type(value)}")
        return None
    problem = physical_id_problem(value)
    if problem is not None:
        problems.append(problem)
        return None
    return value


def _service_timeout(event: Mapping[Any, Any], problems: list[str]) -> float | None:
    value = event.get("ServiceTimeout")
    if value is None:
        return None
    seconds: float | None = None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, int):
        seconds = float(value) if _MIN_SERVICE_TIMEOUT <= value <= _MAX_SERVICE_TIMEOUT else None
    elif isinstance(value, float):
        seconds = value
    elif isinstance(value, str) and len(value) <= 32 and _DECIMAL.fullmatch(value):
        seconds = float(value)
    if (
        seconds is None
        or not math.isfinite(seconds)
        or not _MIN_SERVICE_TIMEOUT <= seconds <= _MAX_SERVICE_TIMEOUT
    ):
        problems.append(
            f"ServiceTimeout must be a number of seconds from {_MIN_SERVICE_TIMEOUT} to "
            f"{_MAX_SERVICE_TIMEOUT}; got {_shown(value)}"
        )
        return None
    return seconds


# --- the id a failure reports --------------------------------------------------------------


def failure_physical_id(request: Request, ctx_physical_id: str | None) -> str:
    """The PhysicalResourceId a FAILED response to ``request`` reports.

    Update and Delete echo the request's id, so CloudFormation keeps tracking the resource it
    knows. Create reports ``ctx_physical_id`` when the handler set a usable one, so rollback's
    Delete can clean up what was built, and otherwise the failed-create marker.
    """
    if request.request_type is not RequestType.CREATE:
        if request.physical_id is not None and physical_id_problem(request.physical_id) is None:
            return request.physical_id
    elif ctx_physical_id is not None and physical_id_problem(ctx_physical_id) is None:
        return ctx_physical_id
    return failed_create_physical_id(request)
