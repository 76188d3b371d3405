"""CloudFormation's side of the wire, answered: the response, its body, and what to redact.

Everything here is pure (no I/O). ``build_body`` turns a ``Response`` into the bytes
CloudFormation accepts, or into an honest FAILED body when the response cannot be accepted as
given. A Create that failed before naming a resource reports a stable marker id
(``failed_create_physical_id``); ``mask_no_echo`` hides NoEcho Data in logs and views.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from asynccfn._errors import RequestError
from asynccfn._json_values import _json_size, _json_type, _short_text
from asynccfn._record import Record

if TYPE_CHECKING:
    from asynccfn._protocol import Request

__all__ = [
    "FAILED_CREATE_MARKER_PREFIX",
    "MASK",
    "MAX_BODY_BYTES",
    "MAX_PHYSICAL_ID_BYTES",
    "TRUNCATION_MARKER",
    "Echo",
    "Response",
    "Status",
    "Body",
    "build_body",
    "built_body",
    "failed_create_physical_id",
    "is_failed_create_marker",
    "mask_no_echo",
    "masked_body",
]

MAX_BODY_BYTES = 4096
"""CloudFormation rejects a response body larger than this many UTF-8 bytes."""

MAX_PHYSICAL_ID_BYTES = 1024
"""CloudFormation's limit on PhysicalResourceId, in UTF-8 bytes."""

FAILED_CREATE_MARKER_PREFIX = "asynccfn-failed-create:"

TRUNCATION_MARKER = " [truncated]"

MASK = "****"

# Data nested deeper than this is refused: json's encoder and decoder (the body, the outbox's
# record, the journal's codec) recurse through it, and no Fn::GetAtt needs more.
MAX_DATA_DEPTH = 32

_MARKER = re.compile(re.escape(FAILED_CREATE_MARKER_PREFIX) + r"[0-9a-f]{64}")


class Status(enum.Enum):
    """The outcome a response reports."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class Echo(NamedTuple):
    """The identifiers every response copies from its request."""

    stack_id: str
    request_id: str
    logical_id: str


class Response(Record):
    """What a response reports; ``build_body`` turns it into the wire format.

    A record, not a tuple: its repr masks NoEcho Data, and ``json.dumps`` (a log field, with
    ``default=str``) reaches that repr rather than writing the fields out one by one."""

    __slots__ = ("data", "no_echo", "physical_id", "reason", "status")

    def __init__(
        self,
        *,
        status: Status,
        physical_id: str,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
        no_echo: bool = False,
    ) -> None:
        self.status = status
        self.physical_id = physical_id
        self.reason = reason
        self.data = data
        self.no_echo = no_echo

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


# --- the response body ---------------------------------------------------------------------


class Body(NamedTuple):
    """A response body and what it says, so that nobody parses it back to learn it."""

    body: bytes
    status: Status
    physical_id: str
    reason: str | None
    no_echo: bool


def build_body(response: Response, echo: Echo, *, fallback_physical_id: str | None = None) -> bytes:
    """:func:`built_body`'s bytes.

    Raises:
        RequestError: as :func:`built_body`.
    """
    return built_body(response, echo, fallback_physical_id=fallback_physical_id).body


def built_body(response: Response, echo: Echo, *, fallback_physical_id: str | None = None) -> Body:
    """The exact JSON body CloudFormation expects, at most MAX_BODY_BYTES UTF-8 bytes.

    A response that cannot be sent as given becomes an honest FAILED body instead:

    - Reason too long: it is cut to fit, ending in TRUNCATION_MARKER.
    - Data not a JSON object of string keys, or not serialisable: FAILED saying so (a FAILED
      response just loses its Data).
    - Data too large to fit even without a Reason: FAILED naming the sizes.
    - PhysicalResourceId empty, over MAX_PHYSICAL_ID_BYTES or not valid text: FAILED saying
      so, reporting ``fallback_physical_id`` (the runtime passes ``failure_physical_id``),
      or the failed-create marker when that is absent or unusable too.
    - NoEcho: no value of Data appears in the Reason (masked).
    - Inside an invocation (``_redact.masking``), its ResponseURL appears nowhere in the body:
      not in the Reason, the Data or the PhysicalResourceId (masked).

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
    # The running invocation's secrets (its ResponseURL, whatever code repeated it) are masked
    # here, the one place a body is built (_redact imports this module, hence imported here).
    from asynccfn._redact import Redactor, masked, masked_value

    fallback = fallback_physical_id
    if fallback is None or physical_id_problem(fallback) is not None:
        fallback = _marker(echo)
    status = response.status
    reason = _clean_text(response.reason)
    physical_id = response.physical_id
    invalid: list[str] = []

    id_problem = physical_id_problem(physical_id)
    if id_problem is not None:
        invalid.append(id_problem)
        physical_id = fallback
    else:  # an answer given on purpose: masked as Data is (a sensitive value kept in text
        # only must not become "****" where CloudFormation keeps the resource's identity)
        physical_id = masked_value(physical_id)
    data, data_problem = _normalised_data(response.data)
    data = masked_value(data)
    if data_problem is not None:
        invalid.append(data_problem)
    if status is Status.SUCCESS and invalid:
        status = Status.FAILED
        reason = "the handler succeeded but its response is invalid: " + "; ".join(invalid)
        data = None
    if status is Status.FAILED and not reason:
        reason = "the handler failed without giving a reason"
    if reason:
        # The one redaction point of a Reason, which the console, the journal and the logs
        # show: the invocation's secrets, and NoEcho Data, which is for Fn::GetAtt alone.
        reason = masked(reason)
        if response.no_echo and response.data is not None:
            reason = Redactor([response.data]).text(reason)

    sent_reason: str | None = None  # the reason of the last body encoded: the one returned

    def encode(reason: str | None, data: Mapping[str, Any] | None) -> bytes:
        nonlocal sent_reason
        sent_reason = reason
        return _encode(status, reason, physical_id, echo, response.no_echo, data)

    def built(body: bytes) -> Body:
        return Body(
            body=body,
            status=status,
            physical_id=physical_id,
            reason=sent_reason,
            no_echo=bool(response.no_echo),
        )

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
        return built(body)

    # Only the id's JSON escaping can still be too large: the echo is bounded by parsing.
    # The fallback (a request's own id, which parsing bounds in bytes, not as JSON) may be
    # too large as well: then the failed-create marker, which always fits.
    id_size = _json_size(physical_id)
    status = Status.FAILED
    reason = (
        f"the PhysicalResourceId takes {id_size} bytes as JSON, too many to fit the response "
        f"body in {MAX_BODY_BYTES} bytes"
    )
    physical_id = fallback
    body = _fit_reason(encode, reason, None)
    if len(body) > MAX_BODY_BYTES:
        physical_id = _marker(echo)
        body = _fit_reason(encode, reason, None)
    if len(body) > MAX_BODY_BYTES:
        raise RequestError("the request's identifiers are too long to echo in any response")
    return built(body)


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
    depth = _depth(normalised)
    if depth > MAX_DATA_DEPTH:
        return None, f"Data is nested {depth} levels deep; the limit is {MAX_DATA_DEPTH}"
    return normalised, None


def _depth(value: Any) -> int:
    """How deeply a JSON value's objects and arrays nest (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((member, level + 1) for member in item)
    return deepest


def physical_id_problem(physical_id: object) -> str | None:
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


# --- redaction -----------------------------------------------------------------------------


def mask_no_echo(data: Mapping[str, Any]) -> dict[str, str]:
    """``data`` with every value replaced by a mask, for logs and journal views."""
    return {str(key): MASK for key in data}


def masked_body(body: bytes | str) -> str | None:
    """A response body as the journal keeps it once posted: Data values masked when the body
    says NoEcho, else None (the body is kept as sent). Raises nothing."""
    try:
        fields = json.loads(body)
    except ValueError:
        return None
    if not isinstance(fields, dict) or fields.get("NoEcho") is not True:
        return None
    data = fields.get("Data")
    if isinstance(data, Mapping):
        fields["Data"] = mask_no_echo(data)
    elif data is not None:
        fields["Data"] = MASK
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
