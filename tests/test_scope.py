"""Step positions: program order per scope, children per parallel branch, one step at a time."""

from __future__ import annotations

import pytest

from asynccfn._errors import ConcurrentStepError
from asynccfn._scope import Scope


def test_positions_follow_program_order_and_peek_does_not_take_one() -> None:
    scope = Scope("0")
    assert scope.peek() == "0#00001"
    first = scope.begin("a")
    scope.end()
    assert (first, scope.peek(), scope.begin("b")) == ("0#00001", "0#00002", "0#00002")


def test_children_are_numbered_and_have_positions_of_their_own() -> None:
    root = Scope("0")
    one, two = root.child(), root.child()
    assert (one.path, two.path) == ("0.1", "0.2")
    assert one.begin("x") == "0.1#00001" and two.begin("x") == "0.2#00001"
    assert one.child().path == "0.1.1"


def test_a_second_step_while_one_runs_is_refused_by_name() -> None:
    scope = Scope("0")
    scope.begin("slow")
    with pytest.raises(ConcurrentStepError, match="step 'fast' started while step 'slow'"):
        scope.begin("fast")
    scope.end()
    assert scope.begin("fast") == "0#00002"
