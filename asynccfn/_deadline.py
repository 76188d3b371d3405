"""The deadlines of one invocation, as absolute times on the event loop's clock.

A Lambda invocation knows one fact about time: the milliseconds left when it starts. This module
turns that (and the operation's wall-clock deadline) into absolute loop times once; everything
else compares floats.

::

    start                     soft                  hard   Lambda deadline
      |------- handler work -----|---- reserve --------|-- margin --|
                                 ^ no new step starts; work is cancelled and awaited;
                                   the response or the hand-over happens in the reserve
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

from ._errors import ConfigurationError

# asyncio's loop clock is time.monotonic(): reading it directly works from worker threads too.
_clock = time.monotonic

# Kept back after the hard deadline: the runtime client still has to report the result.
_RUNTIME_MARGIN = 0.1
_MAX_RESERVE = 10.0
_MIN_RESERVE = 0.8


_MAX_DEADLINE_MARGIN = 10.0


def operation_deadline(
    *,
    issued: float,
    timeout: float,
    service_timeout: float | None,
    url_expires_at: float | None,
) -> float:
    """When the operation must have answered (epoch seconds): the earliest of ``timeout`` and
    the ServiceTimeout after CloudFormation issued the request, and the ResponseURL's expiry,
    less a margin (a tenth of the span, at most 10 s) for the PUT and its retries, so the
    answer arrives before CloudFormation gives up (DESIGN.md invariant 10)."""
    ends = [issued + timeout]
    if service_timeout is not None:
        ends.append(issued + service_timeout)
    if url_expires_at is not None:
        ends.append(url_expires_at)
    end = min(ends)
    return end - min(_MAX_DEADLINE_MARGIN, max(0.0, (end - issued) * 0.1))


def default_reserve(remaining: float) -> float:
    """The reserve for an invocation with ``remaining`` seconds: 10 s on Lambda's usual
    timeouts, less for short ones, never below 0.8 s (a journal write, an invoke, and a
    response PUT with a retry must fit in it)."""
    return min(_MAX_RESERVE, max(_MIN_RESERVE, remaining * 0.3))


class Deadlines(NamedTuple):
    """Absolute loop times: ``soft`` (stop starting work), ``hard`` (the last moment to act).

    ``operation`` is the loop time of the operation's own deadline (``math.inf`` when none); it
    is already folded into ``soft``. ``operation_bound`` tells whether it is what set ``soft``.
    """

    soft: float
    hard: float
    operation: float = math.inf

    @classmethod
    def for_invocation(
        cls,
        *,
        remaining_ms: int,
        reserve: float | None,
    ) -> Deadlines:
        """Build the deadlines once from the Lambda context's remaining time.

        Raises:
            ConfigurationError: ``reserve`` is negative.
        """
        loop_now = _clock()
        remaining = max(0.0, remaining_ms / 1000.0)
        if reserve is not None and reserve < 0:
            raise ConfigurationError(f"reserve must be >= 0 seconds, got {reserve!r}")
        chosen = default_reserve(remaining) if reserve is None else reserve
        # A reserve as long as the whole invocation would leave no time for work at all.
        chosen = min(chosen, remaining * 0.5)
        hard = loop_now + max(0.0, remaining - _RUNTIME_MARGIN)
        soft = loop_now + max(0.0, remaining - chosen)
        # The operation's own deadline is folded in by bounded_by once the claim has read it.
        return cls(soft=soft, hard=hard)

    def bounded_by(self, operation_deadline_epoch: float) -> Deadlines:
        """These deadlines with the operation's own (a wall-clock time) folded in; the
        reserve stays the one chosen when the invocation started."""
        operation = self.epoch_to_loop(operation_deadline_epoch)
        return Deadlines(soft=min(self.soft, operation), hard=self.hard, operation=operation)

    @property
    def operation_bound(self) -> bool:
        """True when the operation's deadline, not Lambda's, ends this invocation's work."""
        return self.operation <= self.soft

    def remaining(self) -> float:
        """Seconds until the soft deadline (never negative)."""
        return max(0.0, self.soft - _clock())

    def remaining_hard(self) -> float:
        """Seconds until the hard deadline (never negative)."""
        return max(0.0, self.hard - _clock())

    def soft_passed(self) -> bool:
        return _clock() >= self.soft

    def epoch_to_loop(self, epoch: float) -> float:
        """A wall-clock time (epoch seconds) on this loop's clock."""
        return _clock() + (epoch - time.time())
