"""The reliability suite's summary line, as pytest hooks.

tests/conftest.py imports these hooks, so the line is printed whichever folder pytest is run on;
with pytest-xdist the workers' tallies are added up in the controller.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.reliability._tally import TALLY, Tally

_TALLY_KEY = "asynccfn_reliability_tally"


_controller_tally = pytest.StashKey[Tally]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_controller_tally] = Tally()


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the tally to the controller
        workeroutput[_TALLY_KEY] = json.dumps(TALLY.as_dict())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    raw = getattr(node, "workeroutput", {}).get(_TALLY_KEY)
    if raw:
        node.config.stash.setdefault(_controller_tally, Tally()).add(json.loads(raw))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workeroutput"):
        return
    total = config.stash.setdefault(_controller_tally, Tally())
    total.add(TALLY.as_dict())  # in-process runs (no xdist) tallied here
    if total == Tally():
        return
    terminalreporter.write_sep("=", "reliability summary")
    terminalreporter.write_line(total.summary())
    if total.responses_lost or total.secrets_leaked:
        terminalreporter.write_line("FAILED: responses were lost or secrets leaked", red=True)
