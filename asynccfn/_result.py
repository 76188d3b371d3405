"""What a handler returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class Success:
    """A successful outcome.

    ``physical_id`` defaults to ``ctx.physical_id`` (or, for Update and Delete, the request's
    PhysicalResourceId); ``data`` is what ``Fn::GetAtt`` reads; ``no_echo`` masks it in the
    console, in logs and in journal views.
    """

    physical_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    no_echo: bool = False
