"""``MODULE:RESOURCE``: naming a user's Resource so that another process can import it.

The local runner imports the resource in its own process first (so that a bad name is one
clear error before anything starts), then the Lambda workers import it again by the same name.
"""

from __future__ import annotations

import importlib
import re
import sys
import traceback
from typing import Any

from asynccfn._entry import LambdaHandler, lambda_entry
from asynccfn._errors import ConfigurationError
from asynccfn._probe import Probe
from asynccfn._provider import Provider
from asynccfn._resource import Resource
from asynccfn._runtime import Runtime, RuntimeConfig

__all__ = [
    "HANDLER",
    "HANDLER_EVERY_STEP",
    "LOCAL_LEASE",
    "RESOURCE_ENV",
    "ResourceSpecError",
    "journal_table_of",
    "lease_of",
    "load_handler",
    "load_resource",
    "locate",
    "own_config",
]

HANDLER = "asynccfn.local._handler.handler"
"""The Lambda handler of a locally run resource (see :mod:`asynccfn.local._handler`)."""
HANDLER_EVERY_STEP = "asynccfn.local._handler_every_step.handler"
"""The same, handing over after every recorded step (``--handover-every-step``)."""
RESOURCE_ENV = "ASYNCCFN_LOCAL_RESOURCE"
"""The function's environment variable that names its resource, ``MODULE:RESOURCE``."""
LOCAL_LEASE = (4.0, 1.0)
"""``(lease, lease_skew)`` in seconds of a resource the module did not wrap itself, run locally:
the local runner shortens Lambda's retries, and a retry of an attempt that crashed or timed out
must still come after that attempt's lease has run out (see ``_deployment``)."""

_SPEC = re.compile(r"^(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_][\w.]*)$")


class ResourceSpecError(ConfigurationError):
    """``MODULE:RESOURCE`` does not name an importable :class:`asynccfn.Resource`."""


def load_resource(spec: str) -> Resource | Provider:
    """Import ``MODULE`` and return the :class:`~asynccfn.Resource` its attribute ``RESOURCE``
    names (dots reach into objects): the Resource (or Provider) itself, or the handler
    ``lambda_entry`` made of one.

    Raises:
        ResourceSpecError: the spec is malformed, the module cannot be imported (or raised
            while importing), or the attribute is missing or not a Resource.
    """
    found = _load(spec)
    return found if isinstance(found, Resource | Provider) else found.runtime.config.resource


def load_handler(
    spec: str, *, probe: Probe | None = None, lease: tuple[float, float] | None = None
) -> LambdaHandler:
    """The Lambda handler for ``spec``: the one the module built with ``lambda_entry`` (its
    options kept), or ``lambda_entry(resource)`` with the journal from the environment and
    ``lease`` (``(lease, lease_skew)``, when given); ``probe``, when given, replaces the
    handler's.

    Raises:
        ResourceSpecError: as :func:`load_resource`.
    """
    found = _load(spec)
    if isinstance(found, LambdaHandler):
        if probe is None:
            return found
        config = found.runtime.config._replace(probe=probe)
        return LambdaHandler(Runtime(config))
    if lease is None:
        handler = lambda_entry(found, probe=probe)
    else:
        handler = lambda_entry(found, probe=probe, lease=lease[0], lease_skew=lease[1])
    assert isinstance(handler, LambdaHandler)
    return handler


def own_config(spec: str) -> RuntimeConfig | None:
    """The options of the module's own ``lambda_entry`` handler, if it built one.

    Raises:
        ResourceSpecError: as :func:`load_resource`.
    """
    found = _load(spec)
    return found.runtime.config if isinstance(found, LambdaHandler) else None


def lease_of(spec: str) -> tuple[float, float] | None:
    """``(lease, lease_skew)`` of the module's own ``lambda_entry``, if it built one.

    Raises:
        ResourceSpecError: as :func:`load_resource`.
    """
    found = _load(spec)
    if isinstance(found, LambdaHandler):
        return found.runtime.config.lease, found.runtime.config.lease_skew
    return None


def journal_table_of(spec: str) -> str | None:
    """The journal table the module's own ``lambda_entry(..., journal=NAME)`` names, if any.

    Raises:
        ResourceSpecError: as :func:`load_resource`.
    """
    found = _load(spec)
    return found.runtime.config.journal if isinstance(found, LambdaHandler) else None


def _load(spec: str) -> Resource | Provider | LambdaHandler:
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ResourceSpecError(
            f"{spec!r} is not MODULE:RESOURCE (e.g. asynccfn.examples.dynamodb_table:table)"
        )
    module_name, attr = match["module"], match["attr"]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            where = "" if exc.name == module_name else f" (no module {exc.name!r})"
            raise ResourceSpecError(
                f"cannot import module {module_name!r}{where}: run from the folder that "
                "holds it, or put that folder on PYTHONPATH"
            ) from None
        raise ResourceSpecError(f"importing {module_name!r} failed: {_describe(exc)}") from exc
    except Exception as exc:  # the user's module raised while importing
        raise ResourceSpecError(f"importing {module_name!r} failed: {_describe(exc)}") from exc
    found: Any = module
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ResourceSpecError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(found, Resource | Provider | LambdaHandler):
        raise ResourceSpecError(
            f"{module_name}:{attr} is a {type(found).__name__}, not an asynccfn.Resource"
        )
    return found


def locate(resource: Resource | Provider) -> str:
    """The ``MODULE:RESOURCE`` name under which ``resource`` can be imported again.

    Raises:
        ResourceSpecError: no imported module holds it at its top level, or only ``__main__``
            (which another process cannot import by name).
    """
    for name, module in list(sys.modules.items()):
        if name == "__main__" or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is resource or _as_resource(value) is resource:
                return f"{name}:{attr}"
    raise ResourceSpecError(
        f"{resource!r} is not a top-level name of an importable module; define it at the top "
        "level of a module (not __main__), or pass 'MODULE:RESOURCE'"
    )


def _as_resource(value: object) -> Resource | Provider | None:
    if isinstance(value, Resource | Provider):
        return value
    if isinstance(value, LambdaHandler):  # what lambda_entry made of a Resource
        return value.runtime.config.resource
    return None


def _describe(exc: BaseException) -> str:
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        where = f" ({last.filename}, line {last.lineno})"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"
