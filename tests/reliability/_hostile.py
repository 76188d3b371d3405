"""Hostile and malformed CloudFormation events, as hypothesis strategies.

An event starts from a fixture (tests/fixtures/cfn) and each field is kept, dropped, or
replaced by something wrong: another JSON type, an empty or oversized value, odd Unicode (lone
surrogates, NUL, bidirectional marks), deep nesting, huge properties, a ResponseURL aimed where
no response may go. Extra fields are added; Data may be anything (the handler answers with it);
the raw JSON may repeat keys, a decoy value first (the JSON parser keeps the last); the event
may come inside Lambda's on-failure record (Lambda gave up on it: answer FAILED).

Each :class:`Case` says what a correct runtime must do with it: answer the issued URL once
(``deliverable``, whatever the identifiers), FAILED when the event is malformed, or post
nothing and log one line.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.reliability._endpoint import IssuedURL
from tests.reliability._tally import SECRETS
from tests.support import fixture_event

ODD_TEXT = st.sampled_from(
    [
        "naïve-Ünïcödé",
        "emoji-\U0001f4a5-\U0001f9ea",
        "rtl-\u202eevil\u202c",
        "zero\u200bwidth",
        "nul-\u0000-inside",
        "tab\tand\nnewline",
        'quote"back\\slash',
        "\ufeffbom",
        "汉字カタカナ",
    ]
)
LONE_SURROGATE = st.sampled_from(["\ud800", "a\udfffb", "\udbff\udc00\ud800"])
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.lists(JSON_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=3),
)

_MISSING = object()
LAMBDA_ERROR = {"errorType": "Runtime.ExitError", "errorMessage": "signal: killed"}

# ResponseURLs no response may go to: each refused with a reason naming the host at most
REFUSED_URLS = {
    "ftp": "ftp://bucket.s3.amazonaws.com/r",
    "metadata": "https://169.254.169.254/latest/meta-data",
    "link-local-v6": "https://[fe80::1]/r",
    "mapped-metadata": "https://[::ffff:169.254.169.254]/r",
    "loopback": "http://127.0.0.1:9/r",
    "not-s3": "https://responses.example.com/r",
    "s3-port": "https://s3.amazonaws.com:8443/r",
    "userinfo": "https://user@s3.amazonaws.com/r",
    "spaces": "https://s3.amazonaws.com/a b",
    "unicode": "https://s3.amazonaws.com/\u00e9",
}


@dataclass
class Case:
    """One hostile event and what the runtime must do with it."""

    event: Any
    url: IssuedURL | None  # the issued URL the event carries, if any
    decoys: list[IssuedURL] = field(default_factory=list)  # URLs that must get nothing
    identifiers_valid: bool = True
    malformed: list[str] = field(default_factory=list)  # why a valid parser must refuse it
    gave_up: bool = False  # the event comes inside Lambda's on-failure record

    @property
    def request(self) -> Any:
        """The CloudFormation event (inside the on-failure record, if any)."""
        return self.event["requestPayload"] if self.gave_up else self.event

    @property
    def deliverable(self) -> bool:
        """The event carries an issued URL: it must be answered exactly once, whatever its
        identifiers (CloudFormation fails an invalid answer at once, and waits an hour for
        none)."""
        return self.url is not None and isinstance(self.request, dict)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "x"}
    for _ in range(depth):
        value = {"n": value}
    return value


def _signed(base: str) -> str:
    query = "X-Amz-Date=20260101T000000Z&X-Amz-Expires=7200"
    url = f"{base}?{query}&X-Amz-Signature={secrets.token_hex(32)}"
    SECRETS.register_url(url)
    return url


@st.composite
def identifier(draw: st.DrawFn, name: str, limit: int, *, broken: bool) -> tuple[Any, bool]:
    """(value, valid) for StackId/RequestId/LogicalResourceId (unique per example)."""
    fresh = uuid.uuid4().hex[:12]
    if broken:
        kind = draw(st.sampled_from(["fresh", "missing", "type", "empty", "long", "lone"]))
    else:
        kind = draw(st.sampled_from(["fresh", "fresh", "odd"]))
    if kind == "fresh":
        return f"{name}-{fresh}", True
    if kind == "odd":
        return f"{draw(ODD_TEXT)}-{fresh}", True
    if kind == "missing":
        return _MISSING, False
    if kind == "type":
        return draw(WRONG_TYPES), False
    if kind == "empty":
        return "", False
    if kind == "long":
        return "x" * (limit + 1), False
    return f"{draw(LONE_SURROGATE)}-{fresh}", False


@st.composite
def response_url(draw: st.DrawFn, issue: Any) -> tuple[Any, IssuedURL | None, str | None]:
    """(value, the issued URL if deliverable, why refused)."""
    refused = [*REFUSED_URLS, "missing", "type", "empty"]
    kind = draw(st.sampled_from(["issued"] * len(refused) + refused))
    if kind == "issued":
        url = issue()
        return url.url, url, None
    if kind == "missing":
        return _MISSING, None, "missing"
    if kind == "type":
        return draw(WRONG_TYPES), None, "type"
    if kind == "empty":
        return "", None, "empty"
    return _signed(REFUSED_URLS[kind]), None, kind


@st.composite
def properties(draw: st.DrawFn) -> tuple[Any, str | None]:
    """(ResourceProperties, why malformed) — missing is allowed (an empty object)."""
    kind = draw(
        st.sampled_from(["json", "json", "json", "missing", "type", "deep", "huge", "odd", "lone"])
    )
    if kind == "missing":
        return _MISSING, None
    if kind == "type":
        return draw(st.one_of(st.lists(JSON_SCALARS, max_size=2), st.text(max_size=5))), "type"
    if kind == "deep":
        return nested(draw(st.integers(min_value=101, max_value=400))), "deep"
    props: dict[str, Any] = draw(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5))
    if kind == "huge":
        props["Huge"] = "h" * draw(st.integers(min_value=50_000, max_value=150_000))
    if kind == "odd":
        props[draw(ODD_TEXT)] = draw(ODD_TEXT)
    if kind == "lone":
        props["Lone"] = draw(LONE_SURROGATE)
    return props, None


@st.composite
def hostile_events(draw: st.DrawFn, issue: Any) -> Case:
    """A hostile event; ``issue(expect_answer=...)`` makes response URLs."""
    event: dict[str, Any] = fixture_event(draw(st.sampled_from(["create", "update", "delete"])))
    shape = draw(st.sampled_from(["object"] * 4 + ["duplicates", "other", "gave-up"]))
    malformed: list[str] = []
    valid_ids = True
    # mostly answerable identifiers, so that most examples test what is answered and how
    broken = draw(st.integers(0, 3)) == 0
    for name, limit in (("StackId", 1024), ("RequestId", 256), ("LogicalResourceId", 256)):
        value, ok = draw(identifier(name, limit, broken=broken))
        event[name] = value
        valid_ids = valid_ids and ok
    if not valid_ids:
        malformed.append("identifiers")

    answerable = shape != "other"
    value, url, refused = draw(response_url(lambda: issue(expect_answer=answerable)))
    event["ResponseURL"] = value
    if refused:
        malformed.append(f"ResponseURL {refused}")

    request_type = draw(
        st.sampled_from(["keep", "keep", "keep", "missing", "type", "Replace", "create"])
    )
    if request_type != "keep":
        event["RequestType"] = draw(WRONG_TYPES) if request_type == "type" else request_type
        if request_type == "missing":
            event["RequestType"] = _MISSING
        malformed.append("RequestType")
    kind = event.get("RequestType")

    resource_type = draw(st.sampled_from(["keep", "keep", "generic", "missing", "long", "bad"]))
    if resource_type == "generic":
        event["ResourceType"] = "AWS::CloudFormation::CustomResource"
    elif resource_type != "keep":
        event["ResourceType"] = {
            "missing": _MISSING,
            "long": "Custom::" + "x" * 60,
            "bad": "AWS::S3::Bucket",
        }[resource_type]
        malformed.append("ResourceType")

    if draw(st.integers(0, 9)) == 0:
        event["ServiceToken"] = draw(st.sampled_from([_MISSING, "", 7]))
        malformed.append("ServiceToken")

    props, why = draw(properties())
    event["ResourceProperties"] = props
    if why:
        malformed.append(f"ResourceProperties {why}")
    if isinstance(props, dict) and draw(st.booleans()):
        props["Data"] = draw(JSON_VALUES)  # the handler answers with it as Data
    if isinstance(props, dict) and draw(st.integers(0, 4)) == 0:
        props["NoEchoSecret"] = f"noecho-{secrets.token_hex(12)}"
        SECRETS.register(props["NoEchoSecret"])

    if kind in ("Update", "Delete"):
        physical = draw(st.sampled_from(["keep", "keep", "missing", "empty", "long", "type"]))
        if physical != "keep":
            event["PhysicalResourceId"] = {
                "missing": _MISSING,
                "empty": "",
                "long": "p" * 1025,
                "type": 12,
            }[physical]
            malformed.append("PhysicalResourceId")
    if kind == "Update" and draw(st.integers(0, 4)) == 0:
        event["OldResourceProperties"] = draw(st.sampled_from([_MISSING, [], "old"]))
        malformed.append("OldResourceProperties")

    timeouts = {"ok": "30", "zero": 0, "huge": 99999, "text": "soon", "bool": True}
    timeout = draw(st.sampled_from(["none"] * 3 + list(timeouts)))
    if timeout != "none":
        event["ServiceTimeout"] = timeouts[timeout]
        if timeout != "ok":
            malformed.append("ServiceTimeout")

    for _ in range(draw(st.integers(0, 3))):
        event[draw(st.text(min_size=1, max_size=12))] = draw(JSON_VALUES)

    event = {k: v for k, v in event.items() if v is not _MISSING}
    case = Case(event=event, url=url, identifiers_valid=valid_ids, malformed=malformed)
    if shape == "other":
        case.event = draw(
            st.one_of(WRONG_TYPES.filter(lambda v: not isinstance(v, dict)), ODD_TEXT)
        )
        case.url = None
        case.malformed.append("not an object")
    elif shape == "duplicates" and "ResponseURL" in event and "RequestType" in event:
        decoy = issue(expect_answer=False)
        case.decoys.append(decoy)
        raw = with_decoys(event, {"ResponseURL": decoy.url, "RequestType": "Drop"})
        case.event = json.loads(raw)  # as Lambda's runtime parses it: the last value wins
    elif shape == "gave-up":
        case.event = {
            "version": "1.0",
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "condition": draw(st.sampled_from(["RetriesExhausted", "EventAgeExceeded"])),
                "approximateInvokeCount": draw(st.integers(0, 3)),
            },
            "requestPayload": event,
            "responsePayload": draw(st.one_of(st.just(LAMBDA_ERROR), JSON_VALUES)),
        }
        case.gave_up = True
    return case


def with_decoys(event: dict[str, Any], decoys: dict[str, Any]) -> str:
    """``event`` as raw JSON in which each decoy key appears first with the decoy value."""
    head = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in decoys.items())
    body = json.dumps(event)
    return "{" + head + (", " + body[1:] if len(body) > 2 else "}")
