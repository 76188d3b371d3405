"""The only module that invokes Lambda: the hand-over's self-invocation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._aws import error_code, error_message
from ._errors import ContinuationError

HANDOVER_KEY = "AsyncCfnHandOver"


def split_handover(event: object) -> tuple[object, str | None]:
    """The original event and the hand-over token it carries, if any."""
    if isinstance(event, Mapping) and HANDOVER_KEY in event:
        marker = event[HANDOVER_KEY]
        rest = {k: v for k, v in event.items() if k != HANDOVER_KEY}
        token = marker.get("token") if isinstance(marker, Mapping) else None
        return rest, token if isinstance(token, str) else None
    return event, None


async def invoke_self(
    client: Any, function_arn: str, event: Mapping[str, Any], *, token: str
) -> None:
    """Invoke ``function_arn`` asynchronously with the original event plus the token.

    botocore's retry mode retries 429 and 5xx answers.

    Raises:
        ContinuationError: Lambda did not accept the invocation.
    """
    await invoke_event(client, function_arn, {**event, HANDOVER_KEY: {"token": token}})


async def invoke_event(client: Any, function_arn: str, event: Mapping[str, Any]) -> None:
    """Invoke ``function_arn`` asynchronously with ``event`` as it is (a JSON object).

    ``invoke_self`` uses it for the hand-over; the journal-less cfn-lambda-handler layer uses
    it directly, its state carried in the event. botocore's retry mode retries 429 and 5xx.

    Raises:
        ContinuationError: Lambda did not accept the invocation.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    payload = json.dumps(event).encode()
    try:
        answer = await client.invoke(
            FunctionName=function_arn, InvocationType="Event", Payload=payload
        )
    except ClientError as exc:
        raise ContinuationError(
            f"Lambda refused the hand-over invocation: {error_code(exc)}: {error_message(exc)}"
        ) from exc
    except BotoCoreError as exc:
        raise ContinuationError(f"Lambda unreachable for the hand-over: {exc}") from exc
    if answer.get("StatusCode") != 202:
        raise ContinuationError(f"Lambda answered {answer.get('StatusCode')} to the hand-over")
