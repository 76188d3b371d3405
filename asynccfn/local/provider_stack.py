"""Several resources of one Provider in one local stack, as CloudFormation orders them: each
Create in turn, with references to resources created before it resolved
(``{"Fn::GetAtt": ["Queue", "Arn"]}`` to that resource's Data, ``{"Ref": "Queue"}`` to its
physical id), then each Delete in reverse order. A failed Create rolls the stack back: its own
Delete, then the Deletes of those made before it, newest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from asynccfn._errors import ConfigurationError
from asynccfn._protocol import RequestType

if TYPE_CHECKING:
    from asynccfn.local._runs import OperationRun
    from asynccfn.local.stack import LocalStack

__all__ = ["StackResource", "resolve", "stack_lifecycle"]


@dataclass(frozen=True, kw_only=True, slots=True)
class StackResource:
    """One resource of the stack: its logical id, its ResourceType (one the Provider serves)
    and its properties, which may refer to resources listed before it."""

    logical_id: str
    resource_type: str
    properties: Mapping[str, Any] = field(default_factory=dict)


def resolve(value: Any, made: Mapping[str, OperationRun]) -> Any:
    """``value`` with every ``Fn::GetAtt`` and ``Ref`` of a created resource replaced by its
    Data attribute or physical id, as CloudFormation resolves them (strings).

    Raises:
        ConfigurationError: a reference to a resource not created before, or to an
            attribute its Data does not have.
    """
    if isinstance(value, list):
        return [resolve(item, made) for item in value]
    if not isinstance(value, Mapping):
        return value
    if len(value) == 1 and "Ref" in value:
        return _made(made, value["Ref"]).physical_id
    if len(value) == 1 and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        if not (isinstance(target, list) and len(target) == 2):
            raise ConfigurationError(f"Fn::GetAtt takes [LogicalId, Attribute], got {target!r}")
        data = _made(made, target[0]).response.get("Data") or {}
        if target[1] not in data:
            raise ConfigurationError(
                f"{target[0]} has no attribute {target[1]!r} in its Data ({sorted(data)})"
            )
        return data[target[1]]
    return {key: resolve(item, made) for key, item in value.items()}


def _made(made: Mapping[str, OperationRun], logical_id: object) -> OperationRun:
    if not isinstance(logical_id, str) or logical_id not in made:
        raise ConfigurationError(
            f"a reference to {logical_id!r}, which is not a resource created before it "
            f"(created: {', '.join(made) or 'none'})"
        )
    return made[logical_id]


def stack_lifecycle(stack: LocalStack, resources: Sequence[StackResource]) -> list[OperationRun]:
    """Create each resource in order, then delete them in reverse (see the module docstring).

    Raises:
        ConfigurationError: two resources share a logical id, or a reference does not resolve.
        NoResponse: a request was never answered.
    """
    ids = [r.logical_id for r in resources]
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f"logical ids must be unique, got {ids}")
    runs: list[OperationRun] = []
    made: dict[str, OperationRun] = {}
    sent: dict[str, Mapping[str, Any]] = {}
    for resource in resources:
        properties = resolve(dict(resource.properties), made)
        run = stack.send(
            RequestType.CREATE,
            properties,
            label=f"Create {resource.logical_id}",
            logical_id=resource.logical_id,
            resource_type=resource.resource_type,
        )
        runs.append(run)
        made[resource.logical_id] = run
        sent[resource.logical_id] = properties
        if not run.ok:  # CloudFormation rolls the stack back
            break
    failed = not runs[-1].ok
    for resource in reversed([r for r in resources if r.logical_id in made]):
        run = made[resource.logical_id]
        label = f"Delete {resource.logical_id}" + (" (rollback)" if failed else "")
        runs.append(
            stack.send(
                RequestType.DELETE,
                sent[resource.logical_id],
                physical_id=run.physical_id,
                label=label,
                logical_id=resource.logical_id,
                resource_type=resource.resource_type,
            )
        )
    return runs
