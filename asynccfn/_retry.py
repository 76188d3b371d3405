"""Retry policies for steps: how many attempts, how long between them, which errors."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeGuard

from ._errors import ConfigurationError

RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
"""Which failures to retry: an exception type, a tuple of them, or a predicate."""


def _any_exception(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


def _exception_type(value: object) -> TypeGuard[type[BaseException]]:
    return isinstance(value, type) and issubclass(value, BaseException)


def _predicate(retry_on: object) -> Callable[[BaseException], bool]:
    """``retry_on`` as a predicate, checked now: a wrong value would otherwise surface only
    at a step's first failure, in production, as a TypeError instead of the step's error.

    Raises:
        ConfigurationError: ``retry_on`` is none of the accepted forms.
    """
    if _exception_type(retry_on):
        kind = retry_on
        return lambda exc: isinstance(exc, kind)
    if isinstance(retry_on, tuple):
        if not retry_on:
            raise ConfigurationError(
                "retry_on is an empty tuple: name the exception types to retry "
                "(max_attempts=1 retries nothing)"
            )
        wrong = [item for item in retry_on if not _exception_type(item)]
        if wrong:
            raise ConfigurationError(
                f"retry_on's tuple must hold only exception types, got {wrong[0]!r} in {retry_on!r}"
            )
        kinds = retry_on
        return lambda exc: isinstance(exc, kinds)
    if isinstance(retry_on, type):
        raise ConfigurationError(
            f"retry_on must be an exception type, got the class {retry_on.__qualname__}"
        )
    if callable(retry_on):
        return retry_on
    raise ConfigurationError(
        "retry_on must be an exception type, a tuple of exception types or a predicate "
        f"taking the exception, got {type(retry_on).__name__} {retry_on!r}"
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Retry a failed step: ``max_attempts`` in all, delays growing by ``backoff`` from
    ``initial_delay`` up to ``max_delay`` seconds, each scaled by a random factor in
    ``[1 - jitter, 1]``. ``retry_on`` decides which exceptions are worth another attempt: an
    exception type, a tuple of them, or a predicate taking the exception (default: any
    ``Exception``).

    Delays are durable: the wake time is journaled, so a delay that outlasts the invocation
    continues in the next one.
    """

    max_attempts: int = 3
    initial_delay: float = 1.0
    backoff: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.5
    retry_on: RetryOn = _any_exception
    _retries: Callable[[BaseException], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_retries", _predicate(self.retry_on))
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
        return attempt < self.max_attempts and self._retries(exc)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt``."""
        base = min(self.max_delay, self.initial_delay * self.backoff ** (attempt - 1))
        return base * (1 - self.jitter * random.random())
