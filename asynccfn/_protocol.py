"""CloudFormation's side of the wire: the request, the response body, and what to redact.

Everything here is pure (no I/O). ``parse_request`` turns a Lambda event into a frozen
``Request``, or into a ``RequestError`` that says exactly what is wrong and carries what can
still be answered (the identifiers to echo, a ResponseURL that passed the allow-list).
``build_body`` turns a ``Response`` into the bytes CloudFormation accepts, or into an honest
FAILED body when the response cannot be accepted as given.

The ResponseURL is a bearer credential: it never appears in a repr, a reason or a log line
written here; ``describe_url`` gives what is safe to log (scheme and host).
"""

from __future__ import annotations

import calendar
import enum
import hashlib
import ipaddress
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

from asynccfn._errors import RequestError, ResponseURLRefused

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
    "check_response_url",
    "describe_url",
    "failed_create_physical_id",
    "failure_physical_id",
    "is_failed_create_marker",
    "mask_no_echo",
    "parse_request",
]

MAX_BODY_BYTES = 4096
"""CloudFormation rejects a response body larger than this many UTF-8 bytes."""

MAX_PHYSICAL_ID_BYTES = 1024
"""CloudFormation's limit on PhysicalResourceId, in UTF-8 bytes."""

MAX_URL_LENGTH = 8192
"""A pre-signed S3 URL with a session token is a few hundred characters; longer is refused."""

ALLOWED_HOSTS_ENV = "ASYNCCFN_ALLOWED_RESPONSE_HOSTS"

FAILED_CREATE_MARKER_PREFIX = "asynccfn-failed-create:"

TRUNCATION_MARKER = " [truncated]"

MASK = "****"

# Limits on the identifiers a response echoes, in bytes of their JSON form. Together with a
# fallback PhysicalResourceId and a short Reason they always fit in MAX_BODY_BYTES, so every
# request that parses can be answered.
_MAX_STACK_ID_BYTES = 1024
_MAX_REQUEST_ID_BYTES = 256
_MAX_LOGICAL_ID_BYTES = 256
_MAX_SERVICE_TOKEN_LENGTH = 2048
_MAX_RESOURCE_TYPE_LENGTH = 60
_MAX_PROPERTIES_DEPTH = 100
_MIN_SERVICE_TIMEOUT = 1
_MAX_SERVICE_TIMEOUT = 3600

_GENERIC_RESOURCE_TYPE = "AWS::CloudFormation::CustomResource"
_RESOURCE_TYPE = re.compile(r"Custom::[A-Za-z0-9_@:-]+")
_DECIMAL = re.compile(r"\s*[0-9]+(?:\.[0-9]+)?\s*")
_MARKER = re.compile(re.escape(FAILED_CREATE_MARKER_PREFIX) + r"[0-9a-f]{64}")

# Printable ASCII without space and backslash: a pre-signed URL needs nothing else, and
# refusing the rest keeps this parser and the HTTP client's parser in agreement on the host.
_URL_CHARS = re.compile(r"[!-\[\]-~]+")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,15}")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
_REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"
_S3_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?\.)?"  # bucket (virtual-hosted style)
    rf"s3(?:-external-1|[.-]{_REGION}|\.dualstack\.{_REGION})?"
    r"\.amazonaws\.com(?:\.cn)?"
)
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_SECONDS = re.compile(r"[0-9]{1,12}")


class RequestType(enum.Enum):
    """What CloudFormation asks of the custom resource."""

    CREATE = "Create"
    UPDATE = "Update"
    DELETE = "Delete"


class Status(enum.Enum):
    """The outcome a response reports."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


@dataclass(frozen=True, kw_only=True, slots=True)
class Echo:
    """The identifiers every response copies from its request."""

    stack_id: str
    request_id: str
    logical_id: str


@dataclass(frozen=True, kw_only=True)
class Request:
    """A frozen, typed view of a CloudFormation custom-resource event.

    ``properties`` and ``old_properties`` are read-only: nested objects are ``dict``
    subclasses and arrays ``list`` subclasses whose mutating methods raise ``TypeError`` (so
    they still serialise as JSON and pass botocore's parameter checks);
    ``copy.deepcopy(request.properties)`` gives a plain, mutable copy. They are left out of
    ``repr`` because properties may carry NoEcho template parameters, and ``response_url``
    because it is a bearer credential.
    """

    request_type: RequestType
    request_id: str
    stack_id: str
    logical_id: str
    resource_type: str
    physical_id: str | None
    """None on Create; the resource's current id on Update and Delete."""
    properties: Mapping[str, Any] = field(repr=False)
    old_properties: Mapping[str, Any] | None = field(repr=False)
    """The previous properties, on Update only."""
    service_token: str
    service_timeout: float | None
    """ServiceTimeout in seconds (1..3600) when the event carries one."""
    response_url: str = field(repr=False)
    issued_at: float | None
    """Epoch seconds of the URL's X-Amz-Date (SigV4), else None."""
    url_expires_at: float | None
    """Epoch seconds when the URL expires (X-Amz-Date + X-Amz-Expires, or SigV2 Expires)."""

    @property
    def echo(self) -> Echo:
        """The identifiers a response to this request copies."""
        return Echo(stack_id=self.stack_id, request_id=self.request_id, logical_id=self.logical_id)

    @property
    def attempt_digest(self) -> str:
        """Hex SHA-256 of the ResponseURL: names the attempt without storing the credential."""
        return hashlib.sha256(self.response_url.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class Response:
    """What a response reports; ``build_body`` turns it into the wire format."""

    status: Status
    physical_id: str
    reason: str | None = None
    data: Mapping[str, Any] | None = None
    no_echo: bool = False

    def __repr__(self) -> str:
        data: object = self.data
        if self.no_echo and isinstance(data, Mapping):
            data = mask_no_echo(data)
        elif self.no_echo and data is not None:
            data = MASK
        return (
            f"Response(status={self.status!r}, physical_id={self.physical_id!r}, "
            f"reason={self.reason!r}, data={data!r}, no_echo={self.no_echo!r})"
        )


# --- read-only properties ----------------------------------------------------------------


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError("request properties are read-only; copy.deepcopy() gives a mutable copy")


class _ReadOnlyDict(dict[str, Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, object]) -> dict[str, Any]:
        return {key: _thaw(item) for key, item in self.items()}

    def __reduce__(self) -> tuple[type[_ReadOnlyDict], tuple[dict[str, Any]]]:
        return (_ReadOnlyDict, (dict(self),))


class _ReadOnlyList(list[Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, object]) -> list[Any]:
        return [_thaw(item) for item in self]

    def __reduce__(self) -> tuple[type[_ReadOnlyList], tuple[list[Any]]]:
        return (_ReadOnlyList, (list(self),))


class _NotJSON(Exception):
    """A properties value that JSON cannot hold; ``args[0]`` says why."""


def _freeze(value: object, depth: int = 0) -> object:
    """Return a read-only deep copy of a JSON value.

    Raises:
        _NotJSON: a value JSON cannot hold, a non-string key, or nesting too deep.
    """
    if depth > _MAX_PROPERTIES_DEPTH:
        raise _NotJSON(f"is nested more than {_MAX_PROPERTIES_DEPTH} levels deep")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        frozen = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJSON(f"has a key that is not a string ({_json_type(key)})")
            frozen[key] = _freeze(item, depth + 1)
        return _ReadOnlyDict(frozen)
    if isinstance(value, list | tuple):
        return _ReadOnlyList(_freeze(item, depth + 1) for item in value)
    raise _NotJSON(f"holds a value JSON cannot represent ({type(value).__name__})")


def _thaw(value: object) -> object:
    if isinstance(value, dict):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_thaw(item) for item in value]
    return value


# --- request parsing -----------------------------------------------------------------------


def parse_request(event: object, *, allowed_hosts: frozenset[str]) -> Request:
    """Validate a custom-resource event and return its typed view.

    Every problem found is named in the reason (field, what was expected, what came), joined
    by "; ". The reason never contains the ResponseURL. Unknown top-level keys are ignored.

    Raises:
        ResponseURLRefused: ResponseURL is absent, malformed or not allowed (``echo`` is set
            when the identifiers are valid; ``response_url`` is None).
        RequestError: any other field is invalid; ``echo`` and ``response_url`` are set when
            those parts are valid, so a FAILED response can still be posted.
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
        response_url = check_response_url(event.get("ResponseURL"), allowed_hosts=allowed_hosts)
    except ResponseURLRefused as exc:
        url_problem = exc.reason

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
        raise RequestError("; ".join(problems), echo=echo, response_url=response_url)
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
    problem = _physical_id_problem(value)
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


def _signature_times(url: str) -> tuple[float | None, float | None]:
    """Read (issued_at, expires_at) from the URL's query; the URL itself is not changed."""
    params: dict[str, str] = {}
    for part in urlsplit(url).query.split("&"):
        name, _, value = part.partition("=")
        params.setdefault(unquote(name).lower(), unquote(value))
    issued_at: float | None = None
    amz_date = params.get("x-amz-date", "")
    if _AMZ_DATE.fullmatch(amz_date):
        try:
            issued_at = float(calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")))
        except ValueError:
            issued_at = None
    amz_expires = params.get("x-amz-expires", "")
    if issued_at is not None and _SECONDS.fullmatch(amz_expires):
        return issued_at, issued_at + int(amz_expires)
    sigv2_expires = params.get("expires", "")
    if _SECONDS.fullmatch(sigv2_expires):
        return issued_at, float(sigv2_expires)
    return issued_at, None


# --- the response URL ----------------------------------------------------------------------


def allowed_hosts_from_env(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """Hosts (``host`` or ``host:port``) named in ASYNCCFN_ALLOWED_RESPONSE_HOSTS.

    Comma separated; entries are stripped and lowercased, empty ones dropped.
    """
    raw = environ.get(ALLOWED_HOSTS_ENV, "")
    return frozenset(entry.strip().lower() for entry in raw.split(",") if entry.strip())


def check_response_url(url: object, *, allowed_hosts: frozenset[str]) -> str:
    """Return ``url`` if a response may be PUT to it.

    Allowed: https to an S3 endpoint (``s3.amazonaws.com``, ``BUCKET.s3.amazonaws.com``,
    ``[BUCKET.]s3.REGION.amazonaws.com``, ``[BUCKET.]s3-REGION.amazonaws.com``, their
    dualstack and ``.amazonaws.com.cn`` forms) on the default port, and http or https to a
    host listed in ``allowed_hosts`` (as ``host``, any port, or ``host:port``). Link-local and
    instance-metadata addresses are refused even when listed.

    Raises:
        ResponseURLRefused: with a reason that names the host at most, never the URL.
    """
    if url is None:
        _refuse_url("ResponseURL is missing")
    if not isinstance(url, str):
        _refuse_url(f"ResponseURL must be a string; got {_json_type(url)}")
    if not url:
        _refuse_url("ResponseURL is empty")
    if len(url) > MAX_URL_LENGTH:
        _refuse_url(f"ResponseURL is {len(url)} characters; the limit is {MAX_URL_LENGTH}")
    if not _URL_CHARS.fullmatch(url):
        _refuse_url(
            "ResponseURL contains characters a URL cannot hold "
            "(whitespace, control characters, backslash or non-ASCII)"
        )
    scheme, host, port = _url_parts(url)
    shown_host = _bracketed(host)
    ip = _ip_address(host)
    if ip is not None and (ip.is_link_local or ip in _METADATA_ADDRESSES):
        _refuse_url(f"ResponseURL host {shown_host} is a link-local or instance-metadata address")
    if scheme in ("http", "https") and (
        shown_host in allowed_hosts
        or (port is not None and f"{shown_host}:{port}" in allowed_hosts)
    ):
        return url
    if scheme != "https":
        hint = f" (http only to hosts in {ALLOWED_HOSTS_ENV})" if scheme == "http" else ""
        _refuse_url(f"ResponseURL must use https{hint}; got {scheme!r} to host {shown_host}")
    if ip is not None or host == "localhost" or host.endswith(".localhost"):
        _refuse_url(
            f"ResponseURL host {shown_host} is a local or IP-literal address; only S3 hosts "
            f"are allowed unless {ALLOWED_HOSTS_ENV} names it"
        )
    if not _S3_HOST.fullmatch(host):
        _refuse_url(f"ResponseURL host {shown_host} is not an S3 endpoint")
    if port not in (None, 443):
        _refuse_url(f"ResponseURL port {port} is not allowed for S3 host {shown_host}")
    return url


def describe_url(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, safe to log; never the path, query or userinfo."""
    try:
        scheme, host, port = _url_parts(url, userinfo_ok=True)
    except ResponseURLRefused:
        return "<unparseable URL>"
    return f"{scheme}://{_bracketed(host)}" + (f":{port}" if port is not None else "")


def _url_parts(url: str, *, userinfo_ok: bool = False) -> tuple[str, str, int | None]:
    """(lowercased scheme, lowercased host without brackets, explicit port or None).

    Raises:
        ResponseURLRefused: no usable scheme or host, a bad port, or userinfo present
            (unless ``userinfo_ok``).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        _refuse_url("ResponseURL has a malformed host or port")
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme):
        _refuse_url("ResponseURL has no valid scheme")
    if "@" in parts.netloc and not userinfo_ok:
        _refuse_url("ResponseURL carries user information before the host")
    if not host:
        _refuse_url("ResponseURL has no host")
    if _ip_address(host) is None and (len(host) > 253 or not _HOSTNAME.fullmatch(host)):
        _refuse_url("ResponseURL has a malformed host name")
    return scheme, host, port


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _refuse_url(reason: str) -> NoReturn:
    raise ResponseURLRefused(reason)


# --- the response body ---------------------------------------------------------------------


def build_body(response: Response, echo: Echo, *, fallback_physical_id: str | None = None) -> bytes:
    """The exact JSON body CloudFormation expects, at most MAX_BODY_BYTES UTF-8 bytes.

    A response that cannot be sent as given becomes an honest FAILED body instead:

    - Reason too long: it is cut to fit, ending in TRUNCATION_MARKER.
    - Data not a JSON object of string keys, or not serialisable: FAILED saying so (a FAILED
      response just loses its Data).
    - Data too large to fit even without a Reason: FAILED naming the sizes.
    - PhysicalResourceId empty, over MAX_PHYSICAL_ID_BYTES or not valid text: FAILED saying
      so, reporting ``fallback_physical_id`` (the runtime passes ``failure_physical_id``),
      or the failed-create marker when that is absent or unusable too.

    Data keys are sorted, so the same response always gives the same bytes: the outbox can
    re-post a recorded response byte for byte.

    Raises:
        RequestError: only if ``echo`` itself cannot be sent (invalid text, or too long for
            any body), which never happens to an echo from ``parse_request``.
    """
    if any(
        _json_size(value) is None for value in (echo.stack_id, echo.request_id, echo.logical_id)
    ):
        raise RequestError("the request's identifiers are not valid Unicode text")
    fallback = fallback_physical_id
    if fallback is None or _physical_id_problem(fallback) is not None:
        fallback = _marker(echo)
    status = response.status
    reason = _clean_text(response.reason)
    physical_id = response.physical_id
    invalid: list[str] = []

    id_problem = _physical_id_problem(physical_id)
    if id_problem is not None:
        invalid.append(id_problem)
        physical_id = fallback
    data, data_problem = _normalised_data(response.data)
    if data_problem is not None:
        invalid.append(data_problem)
    if status is Status.SUCCESS and invalid:
        status = Status.FAILED
        reason = "the handler succeeded but its response is invalid: " + "; ".join(invalid)
        data = None
    if status is Status.FAILED and not reason:
        reason = "the handler failed without giving a reason"

    def encode(reason: str | None, data: Mapping[str, Any] | None) -> bytes:
        return _encode(status, reason, physical_id, echo, response.no_echo, data)

    if data is not None and len(encode(_shortest(status), data)) > MAX_BODY_BYTES:
        whole = len(encode(_shortest(status), data))
        if status is Status.SUCCESS:
            status = Status.FAILED
            reason = (
                f"the response Data is {_json_size(data)} bytes as JSON, which makes the "
                f"response body at least {whole} bytes; CloudFormation's limit is "
                f"{MAX_BODY_BYTES} bytes"
            )
        data = None
    body = _fit_reason(encode, reason, data)
    if len(body) <= MAX_BODY_BYTES:
        return body

    # Only the id's JSON escaping can still be too large: the echo is bounded by parsing.
    id_size = _json_size(physical_id)
    status = Status.FAILED
    physical_id = fallback
    reason = (
        f"the PhysicalResourceId takes {id_size} bytes as JSON, too many to fit the response "
        f"body in {MAX_BODY_BYTES} bytes"
    )
    body = _fit_reason(encode, reason, None)
    if len(body) > MAX_BODY_BYTES:
        raise RequestError("the request's identifiers are too long to echo in any response")
    return body


def _encode(
    status: Status,
    reason: str | None,
    physical_id: str,
    echo: Echo,
    no_echo: bool,
    data: Mapping[str, Any] | None,
) -> bytes:
    fields: dict[str, Any] = {"Status": status.value}
    if reason is not None:
        fields["Reason"] = reason
    fields["PhysicalResourceId"] = physical_id
    fields["StackId"] = echo.stack_id
    fields["RequestId"] = echo.request_id
    fields["LogicalResourceId"] = echo.logical_id
    fields["NoEcho"] = bool(no_echo)
    if data is not None:
        fields["Data"] = data
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _shortest(status: Status) -> str | None:
    """The shortest Reason a body of this status can have."""
    return TRUNCATION_MARKER.strip() if status is Status.FAILED else None


def _fit_reason(
    encode: Callable[[str | None, Mapping[str, Any] | None], bytes],
    reason: str | None,
    data: Mapping[str, Any] | None,
) -> bytes:
    """The body with ``reason`` whole, or cut to the longest prefix that fits plus a marker.

    A Reason that cannot fit even as the bare marker is kept as the marker (the caller sees
    the body is still too large).
    """
    if reason is None:
        return encode(None, data)
    # Every character takes at least one byte, so a longer reason cannot fit whole.
    reason = reason[: MAX_BODY_BYTES + 1]
    body = encode(reason, data)
    if len(body) <= MAX_BODY_BYTES:
        return body
    low, high = 0, len(reason)  # the answer lies in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if len(encode(reason[:middle] + TRUNCATION_MARKER, data)) <= MAX_BODY_BYTES:
            low = middle
        else:
            high = middle - 1
    return encode((reason[:low] + TRUNCATION_MARKER).lstrip(), data)


def _normalised_data(data: object) -> tuple[Mapping[str, Any] | None, str | None]:
    """(data with keys sorted at every level, None) or (None, why it cannot be sent)."""
    if data is None:
        return None, None
    if not isinstance(data, Mapping):
        return None, f"Data must be a JSON object; got {_json_type(data)}"
    for key in data:
        if not isinstance(key, str):
            return None, f"Data keys must be strings; got {_json_type(key)}"
    try:
        text = json.dumps(dict(data), ensure_ascii=False, sort_keys=True, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        return None, f"Data is not JSON-serialisable: {_short_text(str(exc))}"
    normalised: dict[str, Any] = json.loads(text)
    return normalised, None


def _physical_id_problem(physical_id: object) -> str | None:
    if not isinstance(physical_id, str):
        return f"PhysicalResourceId must be a string; got {_json_type(physical_id)}"
    if not physical_id:
        return "PhysicalResourceId is empty"
    try:
        size = len(physical_id.encode("utf-8"))
    except UnicodeEncodeError:
        return "PhysicalResourceId is not valid Unicode text"
    if size > MAX_PHYSICAL_ID_BYTES:
        return f"PhysicalResourceId is {size} bytes; the limit is {MAX_PHYSICAL_ID_BYTES}"
    return None


def _clean_text(text: object) -> str | None:
    """A Reason as valid Unicode text (lone surrogates replaced), or None."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = str(text)
    return text.encode("utf-8", "replace").decode("utf-8")


# --- failed-create markers -----------------------------------------------------------------


def _marker(echo: Echo) -> str:
    identity = "\x00".join((echo.stack_id, echo.logical_id, echo.request_id))
    digest = hashlib.sha256(identity.encode("utf-8", "replace")).hexdigest()
    return FAILED_CREATE_MARKER_PREFIX + digest


def failed_create_physical_id(request: Request | Echo) -> str:
    """The stable PhysicalResourceId a Create reports when it failed before naming one.

    The same request (any attempt) always gives the same marker; rollback's Delete carries it
    back, and ``is_failed_create_marker`` recognises it so that Delete succeeds at once. An
    ``Echo`` is enough (a malformed event's ``RequestError.echo`` gives the same marker as
    the parsed request would).
    """
    return _marker(request if isinstance(request, Echo) else request.echo)


def is_failed_create_marker(physical_id: str | None) -> bool:
    """Whether ``physical_id`` is a marker from ``failed_create_physical_id``."""
    return isinstance(physical_id, str) and _MARKER.fullmatch(physical_id) is not None


def failure_physical_id(request: Request, ctx_physical_id: str | None) -> str:
    """The PhysicalResourceId a FAILED response to ``request`` reports.

    Update and Delete echo the request's id, so CloudFormation keeps tracking the resource it
    knows. Create reports ``ctx_physical_id`` when the handler set a usable one, so rollback's
    Delete can clean up what was built, and otherwise the failed-create marker.
    """
    if request.request_type is not RequestType.CREATE:
        if request.physical_id is not None and _physical_id_problem(request.physical_id) is None:
            return request.physical_id
    elif ctx_physical_id is not None and _physical_id_problem(ctx_physical_id) is None:
        return ctx_physical_id
    return failed_create_physical_id(request)


# --- redaction and small helpers -----------------------------------------------------------


def mask_no_echo(data: Mapping[str, Any]) -> dict[str, str]:
    """``data`` with every value replaced by a mask, for logs and journal views."""
    return {str(key): MASK for key in data}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _shown(value: object) -> str:
    """A short, safe rendering of a scalar field's value for a reason."""
    if isinstance(value, str):
        return repr(_short_text(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = repr(value)
        return text if len(text) <= 40 else f"a {len(text)}-digit number"
    return _json_type(value)


def _short_text(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _json_size(value: object) -> int | None:
    """Bytes of ``value`` as compact UTF-8 JSON, or None if it is not valid Unicode text."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return len(text.encode("utf-8"))
    except (UnicodeEncodeError, TypeError, ValueError):
        return None
