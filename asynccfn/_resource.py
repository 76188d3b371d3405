"""Resource: routes each CloudFormation request type to the user's handler."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import ConfigurationError
from ._protocol import RequestType

if TYPE_CHECKING:
    from ._context import Context
    from ._properties import PropertiesSchema
    from ._protocol import Request
    from ._result import Success

Handler = Callable[["Request", "Context"], Awaitable["Success | None"]]
H = TypeVar("H", bound=Callable[..., Any])


class Resource:
    """One custom resource type and its ``create``, ``update`` and ``delete`` handlers.

    ``resource_type`` (e.g. ``"Custom::Bucket"``), when given, is checked against each request's
    ResourceType so a function serving several types cannot run the wrong handlers.

    ``errors`` lists the handler's own exception types that a journaled step failure may be
    rebuilt as on replay (built-in exceptions, botocore's ClientError and asynccfn's errors
    always are); a failure of any other type replays as :class:`asynccfn.StepFailed`.

    ``properties`` (a dataclass, a ``msgspec.Struct`` or a pydantic model class) makes the
    handlers' ``request.properties`` an instance of it, converted from CloudFormation's
    strings (see ``asynccfn._properties``); properties that do not convert answer FAILED
    before any handler runs, except on Delete.

    Raises:
        ConfigurationError: an entry of ``errors`` is not an Exception subclass, or
            ``properties`` is not a supported class (or its library is not installed).
    """

    __slots__ = ("_handlers", "error_types", "resource_type", "schema")

    def __init__(
        self,
        resource_type: str | None = None,
        *,
        errors: Iterable[type[Exception]] = (),
        properties: type | None = None,
    ) -> None:
        self.resource_type = resource_type
        self.schema: PropertiesSchema | None = None
        """How ``properties`` are converted; None for an untyped resource."""
        if properties is not None:
            from ._properties import schema_for  # msgspec/pydantic: typed resources only

            self.schema = schema_for(properties)
        self._handlers: dict[RequestType, Handler] = {}
        self.error_types: Mapping[str, type[Exception]] = MappingProxyType(_error_types(errors))
        """The registered error types by the ``module:QualName`` a journal item names."""

    def __repr__(self) -> str:
        kinds = ", ".join(t.value for t in self._handlers)
        return f"Resource({self.resource_type!r}, handlers=[{kinds}])"

    def _register(self, request_type: RequestType, fn: H) -> H:
        if not inspect.iscoroutinefunction(fn):
            raise ConfigurationError(
                f"the {request_type.value} handler {getattr(fn, '__qualname__', fn)!r} must be "
                "an 'async def' function taking (request, ctx)"
            )
        if request_type in self._handlers:
            raise ConfigurationError(f"{self!r} already has a {request_type.value} handler")
        self._handlers[request_type] = fn
        return fn

    def create(self, fn: H) -> H:
        """Decorator: the handler for Create requests.

        Raises:
            ConfigurationError: ``fn`` is not a coroutine function, or one is already set.
        """
        return self._register(RequestType.CREATE, fn)

    def update(self, fn: H) -> H:
        """Decorator: the handler for Update requests (raises as :meth:`create`)."""
        return self._register(RequestType.UPDATE, fn)

    def delete(self, fn: H) -> H:
        """Decorator: the handler for Delete requests (raises as :meth:`create`)."""
        return self._register(RequestType.DELETE, fn)

    def handler_for(self, request_type: RequestType) -> Handler | None:
        """The registered handler, or None when the resource has none for this type."""
        return self._handlers.get(request_type)


def _error_types(errors: Iterable[type[Exception]]) -> dict[str, type[Exception]]:
    if isinstance(errors, type | str):  # one type (or a name) where a list was meant
        raise ConfigurationError(
            f"Resource(errors=...) takes a list of exception types, got {errors!r}"
        )
    types: dict[str, type[Exception]] = {}
    for cls in errors:
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise ConfigurationError(
                f"Resource(errors=...) takes Exception subclasses, got {cls!r}"
            )
        types[f"{cls.__module__}:{cls.__qualname__}"] = cls
    return types
