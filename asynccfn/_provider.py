"""Provider: one Lambda function for several custom resource types, and the routing of each
request to its resource, its handler and its (typed) request.

One journal table and one hand-over path serve every resource of a provider: an operation is
named by its stack, logical id and request id whatever its type, and a hand-over re-sends the
same event, which routes the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ._errors import ConfigurationError, Failed
from ._outcomes import nothing_was_created, refusing_handler, replacement_for
from ._protocol import Request, RequestType, is_failed_create_marker
from ._resource import Resource

if TYPE_CHECKING:
    from ._context import Context
    from ._resource import Handler
    from ._result import Success

__all__ = ["GENERIC_RESOURCE_TYPE", "Provider", "Route", "as_target", "nothing_created", "route"]

GENERIC_RESOURCE_TYPE = "AWS::CloudFormation::CustomResource"


class Provider:
    """Several resources served by one function, each request routed by its ResourceType.

    ``Provider(bucket, table, queue, default=bucket)``: each resource declares its own type
    (``Resource("Custom::Bucket")``); ``default``, when given, also serves requests of the
    generic ``AWS::CloudFormation::CustomResource`` type. A request of any other type answers
    FAILED naming the types this function serves.

    Raises:
        ConfigurationError: a resource is not an ``asynccfn.Resource``, declares no type (only
            the default may), or two resources declare the same type.
    """

    __slots__ = ("_by_type", "default", "resources")

    def __init__(self, *resources: Resource, default: Resource | None = None) -> None:
        by_type: dict[str, Resource] = {}
        everything = list(resources)
        if default is not None and all(default is not r for r in everything):
            everything.append(default)
        for resource in everything:
            if not isinstance(resource, Resource):
                raise ConfigurationError(
                    f"Provider takes asynccfn.Resource objects, got {resource!r}"
                )
            kind = resource.resource_type
            if kind is None:
                if resource is default:
                    continue
                raise ConfigurationError(
                    f"{resource!r} declares no resource type: in a Provider each resource "
                    "names its own, Resource('Custom::Name'), or is the default="
                )
            if kind in by_type and by_type[kind] is not resource:
                raise ConfigurationError(
                    f"{by_type[kind]!r} and {resource!r} both declare {kind}: one function "
                    "can route a type to one resource only"
                )
            by_type[kind] = resource
        if default is not None:
            if by_type.get(GENERIC_RESOURCE_TYPE, default) is not default:
                raise ConfigurationError(
                    f"{by_type[GENERIC_RESOURCE_TYPE]!r} declares {GENERIC_RESOURCE_TYPE} and "
                    f"{default!r} is the default: only one may serve it"
                )
            by_type[GENERIC_RESOURCE_TYPE] = default
        if not by_type:
            raise ConfigurationError("a Provider needs at least one resource")
        self._by_type = by_type
        self.resources = tuple(dict.fromkeys(everything))
        self.default = default

    def __repr__(self) -> str:
        return f"Provider({', '.join(self.types)})"

    @property
    def types(self) -> tuple[str, ...]:
        """The resource types this provider serves, sorted."""
        return tuple(sorted(self._by_type))

    def unanswered(self) -> list[str]:
        """What its resources cannot answer (see ``Resource.unanswered``)."""
        return [missing for resource in self.resources for missing in resource.unanswered()]

    def resource_for(self, resource_type: str) -> Resource | None:
        """The resource serving ``resource_type``, or None."""
        return self._by_type.get(resource_type)


def as_target(resource: object) -> Resource | Provider:
    """What ``lambda_entry`` serves: a Resource, a Provider, or a list of resources (made a
    Provider).

    Raises:
        ConfigurationError: anything else, or a list that does not make a Provider.
    """
    if isinstance(resource, Resource | Provider):
        return resource
    if isinstance(resource, list | tuple):
        return Provider(*resource)
    raise ConfigurationError(
        f"lambda_entry needs an asynccfn.Resource, a Provider or a list of resources, got "
        f"{resource!r}"
    )


class Route(NamedTuple):
    """Where one request goes: the handler to run, the request it gets (typed when the
    resource declares properties) and the error types its journal may rebuild."""

    handler: Handler
    request: Request[Any]
    error_types: Mapping[str, type[Exception]]


def route(target: Resource | Provider, request: Request) -> Route:
    """Route ``request`` to its resource's handler, with its properties converted.

    A request that no user handler should see gets a built-in one: a Delete of a Create that
    failed before it made anything (or of a resource without a delete handler) succeeds; a
    type the function does not serve, a missing handler, or properties that do not convert
    answer FAILED with the reason.
    """
    if isinstance(target, Provider):
        resource = target.resource_for(request.resource_type)
        if resource is None:
            if nothing_created(request):
                return Route(handler=nothing_was_created, request=request, error_types={})
            return Route(
                handler=_refusing(_unserved(target, request)), request=request, error_types={}
            )
        matched = True
    else:
        resource = target
        matched = resource.resource_type in (None, request.resource_type)
    errors = resource.error_types
    if nothing_created(request):
        return Route(handler=nothing_was_created, request=request, error_types=errors)
    handler = resource.handler_for(request.request_type)
    if handler is None and request.request_type is RequestType.DELETE:
        return Route(handler=nothing_was_created, request=request, error_types=errors)
    if handler is None or not matched:
        handler = replacement_for(resource, request)  # declared, it gets typed properties too
        if handler is None:
            refuse = refusing_handler(resource, request)
            return Route(handler=refuse, request=request, error_types=errors)
    if resource.schema is not None:
        typed = resource.schema.view(request)
        if isinstance(typed, str):
            return Route(handler=_refusing(typed), request=request, error_types=errors)
        request = typed
    return Route(handler=handler, request=request, error_types=errors)


def nothing_created(request: Request) -> bool:
    """Whether ``request`` is the Delete of a Create that failed before it made anything (it
    carries the failed-create marker that Create reported)."""
    return request.request_type is RequestType.DELETE and is_failed_create_marker(
        request.physical_id
    )


def _unserved(provider: Provider, request: Request) -> str:
    return f"this function serves {', '.join(provider.types)}; not {request.resource_type}"


def _refusing(reason: str) -> Handler:
    async def refuse(request: Request, ctx: Context) -> Success:
        raise Failed(reason)

    return refuse
