"""Retry policies for steps: how many attempts, how long between them, which errors."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ._errors import ConfigurationError


def _any_exception(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Retry a failed step: ``max_attempts`` in all, delays growing by ``backoff`` from
    ``initial_delay`` up to ``max_delay`` seconds, each scaled by a random factor in
    ``[1 - jitter, 1]``. ``retry_on`` decides which exceptions are worth another attempt.

    Delays are durable: the wake time is journaled, so a delay that outlasts the invocation
    continues in the next one.
    """

    max_attempts: int = 3
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.5
    retry_on: Callable[[BaseException], bool] = _any_exception

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ConfigurationError("retry delays must be >= 0 seconds")
        if self.backoff < 1:
            raise ConfigurationError(f"backoff must be >= 1, got {self.backoff}")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"jitter must be within [0, 1], got {self.jitter}")

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """True when attempt number ``attempt`` (1-based) failed with ``exc`` and another is due."""
        return attempt < self.max_attempts and self.retry_on(exc)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt``."""
        base = min(self.max_delay, self.initial_delay * self.backoff ** (attempt - 1))
        return base * (1 - self.jitter * random.random())
