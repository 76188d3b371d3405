"""The trace header that carries an invocation chain's length, for the recursive-loop cut.

Lambda follows a chain of invocations through the X-Ray trace header: the runtime client puts
``Lambda-Runtime-Trace-Id`` in the handler's ``_X_AMZN_TRACE_ID`` variable, and botocore sends
that variable as ``X-Amzn-Trace-Id`` on every call made from inside a function (its recursion
detection header). The local service hands out a trace header whose ``Lineage`` field ends
with the number of invocations in the chain so far, and reads it back on Invoke calls::

    Root=1-6745a1b2-0123456789abcdef01234567;Parent=89abcdef01234567;Sampled=0;Lineage=5d41402a:3
"""

from __future__ import annotations

import secrets
import time
import zlib
from dataclasses import dataclass

__all__ = ["MAX_HOPS", "Lineage"]

MAX_HOPS = 16
"""Lambda stops a recursive chain after about this many invocations."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Lineage:
    """An invocation's place in its chain: the trace root and the number of hops so far."""

    root: str
    hops: int

    @classmethod
    def after(cls, header: str | None) -> Lineage:
        """The lineage of an invocation requested with trace ``header`` (``None`` if absent).

        A call from outside any function starts a chain at hop 1; a call carrying a lineage
        continues that chain one hop further. Raises nothing: a malformed header starts a
        new chain.
        """
        fields = _fields(header or "")
        root = fields.get("Root") or _new_root()
        return cls(root=root, hops=_hops(fields.get("Lineage")) + 1)

    def header(self, function: str) -> str:
        """The trace header to hand the function's runtime. Raises nothing."""
        tag = f"{zlib.crc32(function.encode()):08x}"
        parent = secrets.token_hex(8)
        return f"Root={self.root};Parent={parent};Sampled=0;Lineage={tag}:{self.hops}"


def _fields(header: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value
    return fields


def _hops(lineage: str | None) -> int:
    if not lineage:
        return 0
    try:
        return max(0, int(lineage.rsplit(":", 1)[-1]))
    except ValueError:
        return 0


def _new_root() -> str:
    return f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
