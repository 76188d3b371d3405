"""Refusal: what a function serves inside Lambda when a resource lacks an answer for a request
type (``Resource.unanswered``).

Off Lambda, ``lambda_entry`` raises for such a resource. Inside Lambda, raising at init would
answer nothing at all (the module fails to load, and so does Lambda's on-failure record), and
the stack would wait out its ServiceTimeout. So the function loads and refuses instead: every
request answers FAILED saying why, through the runtime's usual path (claim, journal, outbox).

A refused Create names no resource, so its FAILED response reports the failed-create marker
(``failed_create_physical_id``). The Delete CloudFormation sends to roll that Create back
carries the marker back and answers SUCCESS, as it does for any Create that failed before it
made anything: a first deploy of a broken function rolls back cleanly. Every other Update and
Delete answers FAILED.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._errors import Failed
from ._outcomes import nothing_was_created
from ._provider import Route, nothing_created

if TYPE_CHECKING:
    from ._context import Context
    from ._protocol import Request
    from ._result import Success

__all__ = ["Refusal"]


class Refusal:
    """Why a function refuses every request: ``unanswered`` is what its resources cannot
    answer, one sentence each, naming the user's file and line."""

    __slots__ = ("reason", "unanswered")

    def __init__(self, unanswered: Sequence[str]) -> None:
        self.unanswered = tuple(unanswered)
        self.reason = (
            "this function refuses every request until its resources are fixed and deployed "
            "again: " + "; ".join(self.unanswered)
        )
        """FAILED's Reason (``build_body`` cuts it to the body's budget)."""

    def __repr__(self) -> str:
        return f"Refusal({list(self.unanswered)!r})"

    def route(self, request: Request) -> Route:
        """Where ``request`` goes instead of its resource's handler: the Delete that rolls back
        a refused (or otherwise failed) Create succeeds without user code; any other request
        is refused."""
        if nothing_created(request):
            return Route(handler=nothing_was_created, request=request, error_types={})
        return Route(handler=self._refuse, request=request, error_types={})

    async def _refuse(self, request: Request, ctx: Context) -> Success:
        raise Failed(self.reason)
