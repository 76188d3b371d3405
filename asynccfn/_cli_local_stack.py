"""``asynccfn local PROVIDER --resource ID=MODULE:RESOURCE ...``: several resources of one
Provider in one local stack (see :mod:`asynccfn.local.provider_stack`), each with its own
``--properties ID=JSON``, one's Data feeding another's properties through ``Fn::GetAtt`` and
``Ref``."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .cli import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from .local._runs import OperationRun
    from .local.provider_stack import StackResource
    from .local.stack import LocalStack

_LOGICAL_ID = re.compile(r"^(?P<id>[A-Za-z0-9]{1,255})=(?P<value>.*)$", re.DOTALL)


def keyed(text: str) -> tuple[str, str] | None:
    """``ID=VALUE`` split, or None when ``text`` has no logical id in front (JSON, @FILE)."""
    match = _LOGICAL_ID.match(text)
    return (match["id"], match["value"]) if match else None


def resource_option(text: str) -> tuple[str, str]:
    """``--resource LOGICAL_ID=MODULE:RESOURCE``."""
    found = keyed(text)
    if found is None or not found[1]:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not LOGICAL_ID=MODULE:RESOURCE (a logical id is letters and digits)"
        )
    return found


def stack_resources(
    resources: Sequence[tuple[str, str]], properties: Mapping[str, Mapping[str, Any]]
) -> list[StackResource]:
    """The stack's resources in the order given, each ResourceType read from its Resource.

    Raises:
        CliError: a logical id twice, properties for no such resource, or a spec that is a
            Provider rather than one of its resources.
        ResourceSpecError: a spec that does not name a Resource.
    """
    from ._provider import Provider
    from .local._loader import load_resource
    from .local.provider_stack import StackResource

    ids = [logical_id for logical_id, _ in resources]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise CliError(f"--resource: logical id {', '.join(twice)} given twice", code=EXIT_USAGE)
    unknown = sorted(set(properties) - set(ids))
    if unknown:
        raise CliError(
            f"--properties for {', '.join(unknown)}, which no --resource names "
            f"(resources: {', '.join(ids)})",
            code=EXIT_USAGE,
        )
    found = []
    for logical_id, spec in resources:
        resource = load_resource(spec)
        if isinstance(resource, Provider) or not resource.resource_type:
            raise CliError(
                f"--resource {logical_id}={spec}: name one of the Provider's resources, "
                "a Resource with its ResourceType",
                code=EXIT_USAGE,
            )
        found.append(
            StackResource(
                logical_id=logical_id,
                resource_type=resource.resource_type,
                properties=properties.get(logical_id, {}),
            )
        )
    return found


def stack_plan(resources: list[StackResource]) -> Callable[[LocalStack], list[OperationRun]]:
    """The plan :func:`asynccfn._cli_local.drive` runs: the stack's whole life."""

    def plan(stack: LocalStack) -> list[OperationRun]:
        from .local.provider_stack import stack_lifecycle

        return stack_lifecycle(stack, resources)

    return plan
