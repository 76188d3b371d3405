"""A fault-injection seam for the reliability suite: kill the process at a named point.

Off unless ``ASYNCCFN_CRASH_AT`` is set when the module is imported (read once, so a call site
costs one boolean test). The value is ``point`` or ``point@N`` (the N-th time the point is
reached in this process, default 1); each crash leaves a marker file in
``ASYNCCFN_CRASH_MARKERS`` (if set) so a point crashes once per run, as a real crash would, and
the redelivered invocation goes on.
"""

from __future__ import annotations

import os

POINTS = (
    "after-claim",
    "after-replay-load",
    "after-step-recorded",
    "after-handover-recorded",
    "after-handover-invoked",
    "after-response-recorded",
    "after-response-put",
    "after-response-marked",
)

_SPEC = os.environ.get("ASYNCCFN_CRASH_AT", "")
ACTIVE = bool(_SPEC)
_point, _, _nth = _SPEC.partition("@")
_wanted = int(_nth) if _nth.isdigit() else 1
_seen = 0


def crash_point(name: str) -> None:
    """SIGKILL this process if ``name`` is the configured crash point (once per run)."""
    global _seen
    if name != _point:
        return
    _seen += 1
    if _seen != _wanted:
        return
    import signal
    from pathlib import Path

    markers = os.environ.get("ASYNCCFN_CRASH_MARKERS")
    if markers:
        marker = Path(markers) / f"crashed-{name}"
        if marker.exists():
            return
        marker.write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
