"""Resource: routes each CloudFormation request type to the user's handler."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._errors import ConfigurationError
from ._protocol import RequestType
from ._traceback import definition_site, shown_path

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

    Every request type must have an answer (:meth:`unanswered`): a Create handler; an Update
    handler, or ``update="replace"`` (an Update runs the Create handler for a replacement with
    a new physical id, and CloudFormation then deletes the old one); a Delete handler, or
    ``delete="nothing"`` (a Delete answers SUCCESS without user code, for a resource that
    leaves nothing behind).

    ``properties`` (a dataclass, a ``msgspec.Struct`` or a pydantic model class) makes the
    handlers' ``request.properties`` an instance of it, converted from CloudFormation's
    strings (see ``asynccfn._properties``); properties that do not convert answer FAILED
    before any handler runs, except on Delete.

    Raises:
        ConfigurationError: an entry of ``errors`` is not an Exception subclass, ``update``
            or ``delete`` is not one of the values above, or ``properties`` is not a
            supported class (or its library is not installed).
    """

    __slots__ = (
        "_handlers",
        "defined_at",
        "delete_policy",
        "error_types",
        "resource_type",
        "schema",
        "update_policy",
    )

    def __init__(
        self,
        resource_type: str | None = None,
        *,
        errors: Iterable[type[Exception]] = (),
        update: Literal["replace"] | None = None,
        delete: Literal["nothing"] | None = None,
        properties: type | None = None,
    ) -> None:
        caller = sys._getframe(1)  # cheap, and what a definition error points at
        self.defined_at = f"{shown_path(caller.f_code.co_filename)}:{caller.f_lineno}"
        """``FILE:LINE`` of the ``Resource(...)`` call."""
        if update not in (None, "replace"):
            raise ConfigurationError(
                f"Resource(update=...) takes 'replace' (or no value), got {update!r} "
                f"({self.defined_at})"
            )
        if delete not in (None, "nothing"):
            raise ConfigurationError(
                f"Resource(delete=...) takes 'nothing' (or no value), got {delete!r} "
                f"({self.defined_at})"
            )
        self.resource_type = resource_type
        self.update_policy = update
        self.delete_policy = delete
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
                f"the {request_type.value} handler {getattr(fn, '__qualname__', fn)!r} "
                f"({definition_site(fn)}) must be an 'async def' function taking (request, ctx)"
            )
        if request_type in self._handlers:
            raise ConfigurationError(
                f"{self!r} ({self.defined_at}) already has a {request_type.value} handler; "
                f"{getattr(fn, '__qualname__', fn)!r} ({definition_site(fn)}) would be a second"
            )
        self._handlers[request_type] = fn
        return fn

    def unanswered(self) -> list[str]:
        """What the resource cannot answer, one sentence per request type (empty when every
        request type has a handler, or a declared answer)."""
        where = f"{self.resource_type or 'the resource'} defined at {self.defined_at}"
        missing = []
        if RequestType.CREATE not in self._handlers:
            missing.append(f"{where} has no Create handler: add @<resource>.create")
        if RequestType.UPDATE not in self._handlers and self.update_policy is None:
            missing.append(
                f"{where} has no Update handler: add @<resource>.update, or declare "
                'Resource(..., update="replace") to answer an Update by creating a '
                "replacement (CloudFormation then deletes the old one)"
            )
        if RequestType.DELETE not in self._handlers and self.delete_policy is None:
            missing.append(
                f"{where} has no Delete handler: add @<resource>.delete, or declare "
                'Resource(..., delete="nothing") when it leaves nothing behind'
            )
        return missing

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
