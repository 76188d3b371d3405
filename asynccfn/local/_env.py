"""What every local server shares: the fake account, its credentials, free loopback ports.

DynamoDB Local refuses credentials with anything but letters and digits, so the local
credentials are plain words. The account id and region are the ones the local Lambda service
puts in its ARNs.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Self

from asynccfn._errors import AsyncCfnError

__all__ = [
    "ACCOUNT_ID",
    "LOCAL_AWS_ENV",
    "LOOPBACK",
    "REGION",
    "LocalServerError",
    "bound_socket",
    "free_port",
]

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

LOCAL_AWS_ENV: Mapping[str, str] = MappingProxyType(
    {
        "AWS_ACCESS_KEY_ID": "asynccfnlocal",
        "AWS_SECRET_ACCESS_KEY": "asynccfnlocal",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
)
"""Environment variables that point an AWS SDK at the local account (read-only)."""


class LocalServerError(AsyncCfnError):
    """A local server could not be installed, started or reached."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that the OS reported free a moment ago.

    Another process may take it before the caller binds it; callers that can, bind a socket
    with :func:`bound_socket` instead. Raises ``OSError`` if no port can be bound.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def bound_socket(host: str = LOOPBACK) -> socket.socket:
    """Return a TCP socket bound to a free port on ``host``, ready to listen (no port race).

    Raises ``OSError`` if no port can be bound.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
    except OSError:
        sock.close()
        raise
    return sock


class StartStop:
    """``with server:`` starts it and always stops it; subclasses define start() and stop()."""

    def start(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
