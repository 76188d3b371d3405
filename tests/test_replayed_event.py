"""The journal's "replayed N steps" event speaks English for one step too."""

from __future__ import annotations

from asynccfn.journal.store import replayed_event


def test_one_replayed_step_is_singular() -> None:
    assert replayed_event(1, 2).what == "replayed 1 step"
    assert replayed_event(3, 2).what == "replayed 3 steps"
