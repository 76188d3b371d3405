"""A local stack of two resources served by one Provider function: the second's properties
take the first's Data through a ``Fn::GetAtt``, as CloudFormation resolves it."""

from __future__ import annotations

import pytest

from asynccfn import ConfigurationError
from asynccfn.local.provider_stack import StackResource, resolve, stack_lifecycle
from asynccfn.local.stack import LocalStack, StackConfig
from tests.local_runner.support import ROOT

QUEUE = StackResource(
    logical_id="Orders",
    resource_type="Custom::Queue",
    properties={"QueueName": "orders", "Fifo": "true"},
)


def stack() -> LocalStack:
    config = StackConfig(
        resource="tests.local_runner.provider_resources:provider",
        code_paths=[str(ROOT)],
        lambda_timeout=30,
    )
    return LocalStack(config)


def test_the_second_resource_consumes_the_first_ones_data() -> None:
    subscription = StackResource(
        logical_id="OrdersSubscription",
        resource_type="Custom::Subscription",
        properties={"QueueArn": {"Fn::GetAtt": ["Orders", "Arn"]}, "MaxMessages": "5"},
    )
    with stack() as local:
        runs = stack_lifecycle(local, [QUEUE, subscription])
    assert [(run.label, run.status) for run in runs] == [
        ("Create Orders", "SUCCESS"),
        ("Create OrdersSubscription", "SUCCESS"),
        ("Delete OrdersSubscription", "SUCCESS"),
        ("Delete Orders", "SUCCESS"),
    ]
    queue_arn = "arn:aws:sqs:us-east-1:123456789012:orders.fifo"
    assert runs[0].response["Data"] == {"Arn": queue_arn, "Fifo": "true"}
    assert runs[1].request["ResourceProperties"]["QueueArn"] == queue_arn
    assert runs[1].response["Data"] == {"Subscribed": queue_arn, "MaxMessages": "10"}
    assert runs[1].physical_id == "sub-orders.fifo"
    # One function, one journal: each operation under its own logical id and type.
    assert [
        (run.journal.operation.logical_id, run.journal.operation.resource_type) for run in runs
    ] == [
        ("Orders", "Custom::Queue"),
        ("OrdersSubscription", "Custom::Subscription"),
        ("OrdersSubscription", "Custom::Subscription"),
        ("Orders", "Custom::Queue"),
    ]


def test_a_failed_create_rolls_back_what_was_made_before_it() -> None:
    bad = StackResource(
        logical_id="Broken",
        resource_type="Custom::Subscription",
        properties={"QueueArn": {"Ref": "Orders"}, "MaxMessages": "many"},
    )
    with stack() as local:
        runs = stack_lifecycle(local, [QUEUE, bad])
    assert [(run.label, run.status) for run in runs] == [
        ("Create Orders", "SUCCESS"),
        ("Create Broken", "FAILED"),
        ("Delete Broken (rollback)", "SUCCESS"),
        ("Delete Orders (rollback)", "SUCCESS"),
    ]
    assert runs[1].request["ResourceProperties"]["QueueArn"] == "orders.fifo"  # the Ref
    assert runs[1].response["Reason"] == (
        "the properties do not convert to SubscriptionProps: MaxMessages: expected an integer, "
        'got "many"'
    )


def test_a_reference_to_a_resource_not_made_before_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'Later', which is not a resource created"):
        resolve({"A": [{"Fn::GetAtt": "Later.Arn"}]}, {})
