"""Scenario steps of the in-process secrets tests (``test_secrets_kept``,
``test_sealed_journal``): a Create request answered to moto's S3, the journal items it left in
DynamoDB Local, and clients of moto's other services."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.session

import asynccfn
from asynccfn.local import LOCAL_AWS_ENV
from tests.support import event_for, event_op_id, journal_items

REGION = LOCAL_AWS_ENV["AWS_REGION"]


def client(service: str, endpoint: str) -> Any:
    return botocore.session.get_session().create_client(
        service, endpoint_url=endpoint, region_name=REGION
    )


def journal_item(endpoint: str, table: str, op_id: str, name: str | None = None) -> dict[str, Any]:
    """The operation item of ``op_id`` in the journal ``table``, or its step ``name``'s."""
    [item] = [
        i
        for i in journal_items(endpoint, table)
        if i["pk"]["S"] == f"op#{op_id}"
        and (i.get("name", {}).get("S") == name if name else i["sk"]["S"] == "op")
    ]
    return item


@dataclass
class Create:
    """A Create request answering to a fresh response URL of ``presigned_response_url``."""

    event: dict[str, Any]
    read: Callable[[], bytes | None]

    @classmethod
    def new(cls, presigned_response_url: Any) -> Create:
        url, read = presigned_response_url()
        return cls(event_for("create", url), read)

    @property
    def op_id(self) -> str:
        return event_op_id(self.event)

    def retried(self, presigned_response_url: Any) -> Create:
        """The same request sent again to a new response URL (a retried deployment)."""
        url, read = presigned_response_url()
        return Create({**self.event, "ResponseURL": url}, read)

    def answer(self) -> dict[str, Any]:
        """The body PUT to the response URL."""
        answer: dict[str, Any] = json.loads(self.read() or b"")
        return answer


def sealing_password(
    resource: asynccfn.Resource, journal: str, kms_key: str, **options: Any
) -> Any:
    """``resource``'s Lambda handler, journaled in ``journal`` and sealed with ``kms_key``, the
    EventState's "password" key listed in ``sensitive_state``."""
    return asynccfn.lambda_entry(
        resource,
        journal=journal,
        codec=asynccfn.KmsCodec(kms_key),
        sensitive_state=["password"],
        **options,
    )
