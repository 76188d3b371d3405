"""Probes: where tests watch and steer the runtime, passed in as objects, never read from the
environment (DESIGN.md invariant 13: nothing in the package reads test switches).

The runtime calls :meth:`Probe.point` at each named point of :data:`POINTS` and
:meth:`Probe.step_recorded` after it records a finished step. The default, :data:`NO_PROBE`,
does nothing. The reliability suite passes a probe that kills its process at a point; the
local runner's ``--handover-every-step`` passes :data:`HAND_OVER_EVERY_STEP`.
"""

from __future__ import annotations

from typing import Protocol

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
"""The named points, in the order an invocation reaches them."""


class Probe(Protocol):
    def point(self, name: str) -> None:
        """The invocation reached point ``name`` (one of :data:`POINTS`)."""
        ...

    def step_recorded(self) -> bool:
        """A finished step was just recorded: True makes the next durable action hand over,
        exactly as at the soft deadline."""
        ...


class NoProbe:
    """Watches nothing, steers nothing."""

    __slots__ = ()

    def point(self, name: str) -> None:
        return None

    def step_recorded(self) -> bool:
        return False


class HandOverEveryStep(NoProbe):
    """Hand over after every recorded step, so that each step after the first is reached
    through replay in a new invocation."""

    __slots__ = ()

    def step_recorded(self) -> bool:
        return True


NO_PROBE = NoProbe()
HAND_OVER_EVERY_STEP = HandOverEveryStep()
