"""Shared aiobotocore clients, created once per container on the persistent loop."""

from __future__ import annotations

import asyncio
import importlib
from contextlib import AsyncExitStack
from typing import Any

# botocore's standard retry mode absorbs short transient errors (throttling, 5xx, resets).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "dynamodb": {"connect_timeout": 2, "read_timeout": 5, "max_attempts": 5},
    "lambda": {"connect_timeout": 2, "read_timeout": 5, "max_attempts": 5},
}
_GENERIC = {"connect_timeout": 5, "read_timeout": 30, "max_attempts": 5}


def import_sdk() -> None:
    """Import what creating a client needs (aiobotocore, and aiohttp through it)."""
    for module in ("aiobotocore.config", "aiobotocore.session"):
        importlib.import_module(module)


# (service, whether botocore validates parameters, create_client's options)
_Key = tuple[str, bool, tuple[tuple[str, Any], ...]]


class ClientPool:
    """Lazily created aiobotocore clients, one per (service, options), closed together.

    The journal's requests go through a client of their own (:meth:`own`), never the one a
    handler gets, so that a setting made for one never reaches the other."""

    __slots__ = ("_clients", "_locks", "_session", "_stack")

    def __init__(self) -> None:
        self._clients: dict[_Key, Any] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._session: Any = None
        self._stack = AsyncExitStack()

    async def get(self, service: str, **options: Any) -> Any:
        """The shared client for ``service``; ``options`` go to ``create_client``."""
        return await self._get((service, True, tuple(sorted(options.items()))), options)

    async def own(self, service: str) -> Any:
        """The client for the requests asynccfn's own code builds (the journal's): botocore's
        client-side parameter validation is off for it, as those requests are made by code and
        the service checks them again; handlers' clients (:meth:`get`) keep it."""
        return await self._get((service, False, ()), {})

    def services(self) -> set[str]:
        """The services a client has been made for so far."""
        return {service for service, _, _ in self._clients}

    async def _get(self, key: _Key, options: dict[str, Any]) -> Any:
        client = self._clients.get(key)
        if client is not None:
            return client
        service, validated, _ = key
        lock = self._locks.setdefault(service, asyncio.Lock())
        async with lock:
            client = self._clients.get(key)
            if client is None:
                client = await self._create(service, options, validated=validated)
                self._clients[key] = client
        return client

    async def _create(self, service: str, options: dict[str, Any], *, validated: bool) -> Any:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        if self._session is None:
            from ._service_loader import use_service_loader

            self._session = get_session()
            use_service_loader(self._session)
        tuning = _DEFAULTS.get(service, _GENERIC)
        config = AioConfig(
            # One operation an invocation needs few; many operations in one process (the
            # testing helper, a local run) should not queue behind botocore's default of 10.
            max_pool_connections=64,
            connect_timeout=tuning["connect_timeout"],
            read_timeout=tuning["read_timeout"],
            retries={"mode": "standard", "total_max_attempts": tuning["max_attempts"]},
            parameter_validation=validated,
        )
        options = {"config": config, **options}
        return await self._stack.enter_async_context(
            self._session.create_client(service, **options)
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._clients.clear()
