"""What the reliability suite tried and what survived, per test process, and the secrets it
must never find in any output.

Each pytest-xdist worker keeps its own :data:`TALLY`; the controller adds them up (see
conftest.py) and prints one summary line at the end of the session.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

from tests.support import url_signatures


@dataclass
class Tally:
    crash_points_total: int = 0
    crash_points_survived: int = 0
    ddb_faults_injected: int = 0
    ddb_faults_survived: int = 0
    bad_events: int = 0
    responses_expected: int = 0
    responses_lost: int = 0
    secrets_planted: int = 0
    forged_events_total: int = 0
    forged_events_refused: int = 0
    overlaps_total: int = 0
    overlaps_one_body: int = 0
    secrets_checked: int = 0
    secrets_leaked: int = 0

    def add(self, other: dict[str, int]) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + int(other.get(f.name, 0)))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"asynccfn reliability: crash points survived {self.crash_points_survived}/"
            f"{self.crash_points_total}; DynamoDB faults injected {self.ddb_faults_injected}, "
            f"survived {self.ddb_faults_survived}; bad events tried {self.bad_events}; "
            f"responses lost {self.responses_lost} (of {self.responses_expected} expected); "
            f"forged events refused {self.forged_events_refused}/{self.forged_events_total}; "
            f"overlaps with one body run {self.overlaps_one_body}/{self.overlaps_total}; "
            f"secrets planted {self.secrets_planted}, leaked {self.secrets_leaked} (over "
            f"{self.secrets_checked} texts checked: responses, logs, journal items, CLI output)"
        )


TALLY = Tally()
_lock = threading.Lock()


def count(**increments: int) -> None:
    """Add to the process's tally (thread-safe)."""
    with _lock:
        for name, value in increments.items():
            setattr(TALLY, name, getattr(TALLY, name) + value)


class Secrets:
    """Strings that must never appear in a log line, CLI output or a journal item: every
    ResponseURL the suite issues, its signature, and NoEcho values."""

    _MIN_LENGTH = 16  # shorter strings could turn up by chance

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def register(self, *values: str) -> None:
        with self._lock:
            new = {v for v in values if len(v) >= self._MIN_LENGTH} - self._values
            self._values.update(new)
        count(secrets_planted=len(new))

    def register_url(self, url: str) -> None:
        """The URL, its path with query, and each signature parameter's value."""
        _, _, rest = url.partition("://")
        _, _, path = rest.partition("/")
        self.register(url, "/" + path)
        self.register(*url_signatures(url))

    def found_in(self, texts: Iterable[str]) -> list[str]:
        """The registered secrets that occur in any of ``texts`` (each named by a prefix)."""
        with self._lock:
            values = list(self._values)
        leaked = []
        checked = 0
        for text in texts:
            if not text:
                continue
            checked += 1
            leaked.extend(f"{value[:12]}..." for value in values if value in text)
        count(secrets_checked=checked, secrets_leaked=len(leaked))
        return leaked


SECRETS = Secrets()
