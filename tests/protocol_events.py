"""CloudFormation custom-resource events for tests: the project's Create, Update and Delete.

``event(kind, **changes)`` returns a fresh copy with top-level keys replaced; a change to
``MISSING`` removes the key. A ResponseURL into CloudFormation's response bucket names its
operation in its object key, so changed identifiers change the fixture URL's key too.
"""

from __future__ import annotations

import copy
from typing import Any, Final
from urllib.parse import quote

STACK_ID: Final = (
    "arn:aws:cloudformation:us-east-1:123456789012:stack/demo-stack/"
    "5b6a1b90-c7a4-11ef-9d3c-0a1b2c3d4e5f"
)
SERVICE_TOKEN: Final = "arn:aws:lambda:us-east-1:123456789012:function:bucket-provider"
RESPONSE_HOST: Final = "cloudformation-custom-resource-response-useast1.s3.amazonaws.com"


def response_url(request_id: str, *, amz_date: str, signature_digit: str) -> str:
    """A SigV4 pre-signed ResponseURL of the shape CloudFormation sends (issued at amz_date)."""
    key = (
        "arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/demo-stack/"
        f"5b6a1b90-c7a4-11ef-9d3c-0a1b2c3d4e5f%7CDemoBucket%7C{request_id}"
    )
    query = (
        f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={amz_date}&X-Amz-SignedHeaders=host"
        "&X-Amz-Expires=7200&X-Amz-Credential=AKIAEXAMPLE%2F20261122%2Fus-east-1%2Fs3"
        f"%2Faws4_request&X-Amz-Signature={signature_digit * 64}"
    )
    return f"https://{RESPONSE_HOST}/{key}?{query}"


CREATE_REQUEST_ID: Final = "0f5f0c1e-0d8e-4c1b-9a53-0c6a2f6f1f11"
UPDATE_REQUEST_ID: Final = "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
DELETE_REQUEST_ID: Final = "e3b0c442-98fc-4c14-9afb-f4c8996fb924"

_PLATFORM_PROPERTIES: Final[dict[str, Any]] = {
    "ServiceToken": SERVICE_TOKEN,
    "BucketName": "demo-bucket",
    "Tags": [{"Key": "team", "Value": "platform"}],
    "Versioning": {"Enabled": "true"},
}
_STORAGE_PROPERTIES: Final[dict[str, Any]] = {
    "ServiceToken": SERVICE_TOKEN,
    "BucketName": "demo-bucket",
    "Tags": [{"Key": "team", "Value": "storage"}],
    "Versioning": {"Enabled": "false"},
}

CREATE: Final[dict[str, Any]] = {
    "RequestType": "Create",
    "ServiceToken": SERVICE_TOKEN,
    "ResponseURL": response_url(
        CREATE_REQUEST_ID, amz_date="20261122T120000Z", signature_digit="0"
    ),
    "StackId": STACK_ID,
    "RequestId": CREATE_REQUEST_ID,
    "ResourceType": "Custom::Bucket",
    "LogicalResourceId": "DemoBucket",
    "ResourceProperties": _PLATFORM_PROPERTIES,
}
UPDATE: Final[dict[str, Any]] = {
    "RequestType": "Update",
    "ServiceToken": SERVICE_TOKEN,
    "ResponseURL": response_url(
        UPDATE_REQUEST_ID, amz_date="20261122T121000Z", signature_digit="1"
    ),
    "StackId": STACK_ID,
    "RequestId": UPDATE_REQUEST_ID,
    "ResourceType": "Custom::Bucket",
    "LogicalResourceId": "DemoBucket",
    "PhysicalResourceId": "demo-bucket",
    "ResourceProperties": _STORAGE_PROPERTIES,
    "OldResourceProperties": _PLATFORM_PROPERTIES,
}
DELETE: Final[dict[str, Any]] = {
    "RequestType": "Delete",
    "ServiceToken": SERVICE_TOKEN,
    "ResponseURL": response_url(
        DELETE_REQUEST_ID, amz_date="20261122T122000Z", signature_digit="2"
    ),
    "StackId": STACK_ID,
    "RequestId": DELETE_REQUEST_ID,
    "ResourceType": "Custom::Bucket",
    "LogicalResourceId": "DemoBucket",
    "PhysicalResourceId": "demo-bucket",
    "ResourceProperties": _STORAGE_PROPERTIES,
}

EVENTS: Final[dict[str, dict[str, Any]]] = {"create": CREATE, "update": UPDATE, "delete": DELETE}


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


_IDENTIFIERS: Final = ("StackId", "LogicalResourceId", "RequestId")


def event(kind: str = "create", **changes: object) -> dict[str, Any]:
    """A deep copy of the ``kind`` event with top-level ``changes`` (MISSING deletes a key)."""
    result = copy.deepcopy(EVENTS[kind])
    for key, value in changes.items():
        if value is MISSING:
            result.pop(key, None)
        else:
            result[key] = value
    identifiers = [result.get(key) for key in _IDENTIFIERS]
    if (
        "ResponseURL" not in changes
        and any(key in changes for key in _IDENTIFIERS)
        and all(
            isinstance(value, str) and 0 < len(value) <= limit
            for value, limit in zip(identifiers, (1024, 256, 256), strict=True)
        )
    ):
        result["ResponseURL"] = rekeyed(result["ResponseURL"], *identifiers)
    return result


def rekeyed(url: str, stack_id: str, logical_id: str, request_id: str) -> str:
    """``url`` with its object key naming (stack_id, logical_id, request_id), as CloudFormation
    keys its response objects."""
    base, _, query = url.partition("?")
    host = base.split("/", 3)[2]
    key = "|".join((stack_id, logical_id, request_id))
    return f"https://{host}/{quote(key, safe='/')}?{query}"


def url_secrets(url: str) -> list[str]:
    """Pieces of ``url`` that must never appear in a log line or an error message."""
    path_and_query = url.split("://", 1)[1].split("/", 1)[1]
    path, _, query = path_and_query.partition("?")
    pieces = [url, path_and_query, path]
    if query:
        pieces.append(query)
        pieces.extend(
            value for _, _, value in (part.partition("=") for part in query.split("&")) if value
        )
    # Short values (algorithm names, "host") are not secret and occur in ordinary text.
    return [piece for piece in pieces if len(piece) >= 16]
