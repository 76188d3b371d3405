"""The operation item's UpdateItem requests, as expression text."""

from __future__ import annotations

import pytest

from asynccfn.journal._update import Update, wire

CLAIMED = {"L": [{"M": {"at": {"N": "1.0"}, "what": {"S": "claimed"}}}]}


def test_every_clause_and_placeholder() -> None:
    request = (
        Update()
        .add(fence=1)
        .set(owner="me", lease_until=12.5, reason=None)
        .set_new(attempt_no=1)
        .append("events", CLAIMED)
        .remove("handover_token")
        .request(condition="#fence = :seen", values={":seen": 3}, ReturnValues="ALL_NEW")
    )
    assert request["UpdateExpression"] == (
        "SET #owner = :owner, #lease_until = :lease_until, "
        "#attempt_no = if_not_exists(#attempt_no, :attempt_no), "
        "#events = list_append(if_not_exists(#events, :no_events), :events) "
        "REMOVE #reason, #handover_token ADD #fence :add_fence"
    )
    assert request["ConditionExpression"] == "#fence = :seen"
    assert request["ExpressionAttributeNames"] == {
        f"#{n}": n
        for n in (
            "owner",
            "lease_until",
            "attempt_no",
            "events",
            "reason",
            "handover_token",
            "fence",
        )
    }
    assert request["ExpressionAttributeValues"] == {
        ":add_fence": {"N": "1"},
        ":owner": {"S": "me"},
        ":lease_until": {"N": "12.5"},
        ":attempt_no": {"N": "1"},
        ":no_events": {"L": []},
        ":events": CLAIMED,
        ":seen": {"N": "3"},
    }
    assert request["ReturnValues"] == "ALL_NEW"


def test_a_placeholder_with_two_values_is_refused() -> None:
    with pytest.raises(ValueError, match=":status given two values"):
        Update().set(status="RUNNING").request(
            condition="#status = :status", values={":status": "FAILED"}
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("x", {"S": "x"}), (7, {"N": "7"}), (0.1, {"N": "0.1"}), (-2.5e-07, {"N": "-2.5e-07"})],
)
def test_scalars(value: object, expected: dict) -> None:
    assert wire(value) == expected


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}])
def test_other_types_are_refused(value: object) -> None:
    with pytest.raises(TypeError, match="no DynamoDB scalar"):
        wire(value)
