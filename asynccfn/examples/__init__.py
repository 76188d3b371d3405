"""Example custom resources, installed with the package: ``asynccfn demo --list`` names them,
and ``asynccfn demo NAME`` runs one's whole life on this machine as ``asynccfn local`` with
the example's properties (the JSON files beside its module), printing that command first.

Nothing here is imported by the Lambda runtime, and ``asynccfn package`` leaves this folder
out of a zip; an example that is the packaged resource is copied as the user's own module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["EXAMPLES", "Example"]

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True, kw_only=True, slots=True)
class Example:
    """What ``asynccfn demo NAME`` runs: ``asynccfn local RESOURCE`` with these properties."""

    name: str
    resource: str  # MODULE:RESOURCE
    summary: str
    properties: Path
    update_properties: Path | None = None
    handover_every_step: bool = False


EXAMPLES: dict[str, Example] = {
    example.name: example
    for example in (
        Example(
            name="dynamodb-table",
            resource="asynccfn.examples.dynamodb_table:table",
            summary="a DynamoDB table made through ctx.call, answered once it is ACTIVE; the "
            "Update changes its tags and time to live; a hand-over after every step",
            properties=_HERE / "dynamodb_table.json",
            update_properties=_HERE / "dynamodb_table.update.json",
            handover_every_step=True,
        ),
        Example(
            name="backfill",
            resource="asynccfn.examples.backfill:backfill",
            summary="copies one DynamoDB table into another a page at a time, across as "
            "many invocations as it takes, its cursor in ctx.state",
            properties=_HERE / "backfill.json",
        ),
    )
}
