"""The ResponseURL: which URLs a response may be PUT to, what of one is safe to log, and the
signature times it carries.

Everything here is pure (no I/O). The ResponseURL is a bearer credential: it never appears in
a reason written here; ``describe_url`` gives what is safe to log (scheme and host).
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import NoReturn
from urllib.parse import unquote, urlsplit

from asynccfn._errors import ResponseURLRefused
from asynccfn._json_values import _json_type

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "MAX_URL_LENGTH",
    "allowed_hosts_from_env",
    "check_response_url",
    "describe_url",
    "is_cloudformation_url",
    "url_key_identifiers",
    "url_secrets",
]

MAX_URL_LENGTH = 8192
"""A pre-signed S3 URL with a session token is a few hundred characters; longer is refused."""

ALLOWED_HOSTS_ENV = "ASYNCCFN_ALLOWED_RESPONSE_HOSTS"

# Printable ASCII without space and backslash: a pre-signed URL needs nothing else, and
# refusing the rest keeps this parser and the HTTP client's parser in agreement on the host.
_URL_CHARS = re.compile(r"[!-\[\]-~]+")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,15}")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
# Regions of every partition: us-east-1, cn-north-1, us-gov-west-1, us-iso-east-1,
# eusc-de-east-1, ...
_REGION = r"[a-z]{2,4}(?:-[a-z]+)+-[0-9]{1,2}"
# The S3 endpoints' domains of the AWS partitions: aws, aws-cn, aws-eusc, aws-iso, aws-iso-b,
# aws-iso-f, aws-iso-e.
_PARTITION_DOMAIN = (
    r"(?:amazonaws\.com|amazonaws\.com\.cn|amazonaws\.eu|c2s\.ic\.gov|sc2s\.sgov\.gov"
    r"|csp\.hci\.ic\.gov|cloud\.adc-e\.uk)"
)
_S3_ENDPOINT = rf"s3(?:-external-1|[.-]{_REGION}|\.dualstack\.{_REGION})?\.{_PARTITION_DOMAIN}"
# CloudFormation's own response buckets: one per region, the region without its dashes.
_RESPONSE_BUCKET = r"cloudformation-custom-resource-response-[a-z0-9]{4,30}"
_VIRTUAL_HOSTED = re.compile(rf"{_RESPONSE_BUCKET}\.{_S3_ENDPOINT}")
_PATH_STYLE = re.compile(_S3_ENDPOINT)
_PATH_STYLE_BUCKET = re.compile(rf"/{_RESPONSE_BUCKET}/")
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_SECONDS = re.compile(r"[0-9]{1,12}")


def allowed_hosts_from_env(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """Hosts (``host`` or ``host:port``) named in ASYNCCFN_ALLOWED_RESPONSE_HOSTS.

    Comma separated; entries are stripped and lowercased, empty ones dropped.
    """
    raw = environ.get(ALLOWED_HOSTS_ENV, "")
    return frozenset(entry.strip().lower() for entry in raw.split(",") if entry.strip())


def check_response_url(
    url: object,
    *,
    allowed_hosts: frozenset[str],
    identifiers: tuple[str, str, str] | None = None,
) -> str:
    """Return ``url`` if a response may be PUT to it.

    Allowed by default: https, on the default port, to one of CloudFormation's own response
    buckets (``cloudformation-custom-resource-response-<region>``) on the S3 endpoint of any AWS
    partition, virtual-hosted or path style. Such a URL's object key is
    ``StackId|LogicalResourceId|RequestId``: given the event's ``identifiers`` (in that order),
    a key that names another operation is refused, so an event cannot aim the answer to one
    operation at another's URL. Any other host only when ``allowed_hosts`` lists it (as
    ``host``, any port, or ``host:port``; http or https), for a user's own receiver or a local
    server. Link-local and instance-metadata addresses are refused even when listed.

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
            f"ResponseURL host {shown_host} is a local or IP-literal address; only "
            f"CloudFormation response buckets are allowed unless {ALLOWED_HOSTS_ENV} or "
            "lambda_entry(response_hosts=...) names it"
        )
    key = _response_bucket_key(url, host)
    if key is None:
        _refuse_url(
            f"ResponseURL host {shown_host} is not a CloudFormation response bucket; "
            f"other hosts must be allowed by lambda_entry(response_hosts=...) or "
            f"{ALLOWED_HOSTS_ENV}"
        )
    if port not in (None, 443):
        _refuse_url(f"ResponseURL port {port} is not allowed for S3 host {shown_host}")
    if identifiers is not None and key != "|".join(identifiers):
        _refuse_url(
            "ResponseURL names another operation: its object key is not this event's "
            "StackId|LogicalResourceId|RequestId"
        )
    return url


def is_cloudformation_url(url: str) -> bool:
    """Whether ``url`` (already checked) points into a CloudFormation response bucket, which
    only CloudFormation can sign: the mark of a genuine new attempt of a request."""
    try:
        scheme, host, _port = _url_parts(url)
    except ResponseURLRefused:
        return False
    return scheme == "https" and _response_bucket_key(url, host) is not None


def _response_bucket_key(url: str, host: str) -> str | None:
    """The decoded object key when ``url`` addresses a CloudFormation response bucket."""
    path = urlsplit(url).path
    if _VIRTUAL_HOSTED.fullmatch(host):
        return unquote(path[1:])
    if _PATH_STYLE.fullmatch(host):
        bucket = _PATH_STYLE_BUCKET.match(path)
        return unquote(path[bucket.end() :]) if bucket is not None else None
    return None


def url_key_identifiers(response_url: str) -> tuple[str, str, str] | None:
    """(StackId, LogicalResourceId, RequestId) from a CloudFormation ResponseURL's object key
    (``/arn%3Aaws%3Acloudformation%3A...%3Astack/NAME/ID%7CLogicalId%7CRequestId``, after the
    bucket in a path-style URL), or None when the key has another shape."""
    try:
        path = unquote(urlsplit(response_url).path, errors="strict")
    except (ValueError, UnicodeDecodeError):
        return None
    return _key_identifiers(path)


def _key_identifiers(path: str) -> tuple[str, str, str] | None:
    """(StackId, LogicalResourceId, RequestId) when ``path`` ends in CloudFormation's object
    key ``StackId|LogicalResourceId|RequestId``, else None.

    Accepted: a RequestId after the last ``|`` and a LogicalResourceId between the last two,
    each non-empty and without ``/``; before them, a StackId without ``|`` that starts the
    path or follows a ``/``, begins with ``arn:`` and holds ``:stack/`` after that, followed
    by at least one character. When several ``arn:`` qualify, the StackId is the longest.
    Linear in ``len(path)``: a hostile key must not cost seconds of CPU.
    """
    rest, bar, request_id = path.rpartition("|")
    head, bar_before, logical_id = rest.rpartition("|")
    if not (bar and bar_before and request_id and logical_id):
        return None
    if "/" in request_id or "/" in logical_id:
        return None
    # The StackId holds no "|", so it lies after any "|" left in head; it starts there only
    # if that is the start of the path, else just after a "/".
    _, bar, stack_part = head.rpartition("|")
    if not bar and stack_part.startswith("arn:"):
        stack_id = stack_part
    else:
        slash = stack_part.find("/arn:")
        if slash == -1:
            return None
        stack_id = stack_part[slash + 1 :]
    marker = stack_id.find(":stack/", len("arn:"))
    if marker == -1 or marker + len(":stack/") == len(stack_id):
        return None
    return stack_id, logical_id, request_id


def url_secrets(url: str) -> list[str]:
    """What of ``url`` must never be shown: the URL itself and its signatures
    (``X-Amz-Signature``, SigV2's ``Signature``, their names matched percent-decoded as S3
    reads them), raw and percent-decoded: the signature is what makes the URL a credential.
    A fragment is no part of the last value. Raises nothing."""
    found = [url]
    query = url.partition("#")[0].partition("?")[2]
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if value and unquote(name).lower() in ("x-amz-signature", "signature"):
            found += [value, unquote(value)]
    return found


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


@functools.lru_cache(maxsize=128)  # host names: cheap to keep, never a URL's secret part
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


# --- signature times -----------------------------------------------------------------------


def _amz_time(amz_date: str) -> float | None:
    """Seconds since the epoch of a SigV4 date (``20261122T120000Z``, its digits checked); None
    for no such time. Read by hand: ``time.strptime`` costs a cold start about a millisecond
    the first time (it imports ``_strptime`` and builds its locale tables)."""
    try:
        at = datetime.datetime(
            int(amz_date[0:4]),
            int(amz_date[4:6]),
            int(amz_date[6:8]),
            int(amz_date[9:11]),
            int(amz_date[11:13]),
            int(amz_date[13:15]),
            tzinfo=datetime.UTC,
        )
    except ValueError:
        return None
    return at.timestamp()


def _signature_times(url: str) -> tuple[float | None, float | None]:
    """Read (issued_at, expires_at) from the URL's query; the URL itself is not changed."""
    params: dict[str, str] = {}
    for part in urlsplit(url).query.split("&"):
        name, _, value = part.partition("=")
        params.setdefault(unquote(name).lower(), unquote(value))
    issued_at: float | None = None
    amz_date = params.get("x-amz-date", "")
    if _AMZ_DATE.fullmatch(amz_date):
        issued_at = _amz_time(amz_date)
    amz_expires = params.get("x-amz-expires", "")
    if issued_at is not None and _SECONDS.fullmatch(amz_expires):
        return issued_at, issued_at + int(amz_expires)
    sigv2_expires = params.get("expires", "")
    if _SECONDS.fullmatch(sigv2_expires):
        return issued_at, float(sigv2_expires)
    return issued_at, None
