"""A Provider of two typed resources for the local stack tests: a queue, and a subscription
whose ``QueueArn`` property is the queue's ``Arn`` (a ``Fn::GetAtt`` in the stack)."""

from __future__ import annotations

import dataclasses

import asynccfn


@dataclasses.dataclass(frozen=True, kw_only=True)
class QueueProps:
    QueueName: str = asynccfn.field(replaces=True)
    Fifo: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class SubscriptionProps:
    QueueArn: str
    MaxMessages: int = 10


queue = asynccfn.Resource("Custom::Queue", properties=QueueProps, update="replace")
subscription = asynccfn.Resource(
    "Custom::Subscription", properties=SubscriptionProps, update="replace"
)


@queue.create
async def create_queue(
    request: asynccfn.Request[QueueProps], ctx: asynccfn.Context
) -> asynccfn.Success:
    props = request.properties
    name = props.QueueName + (".fifo" if props.Fifo else "")
    arn = await ctx.step("queue arn", lambda: f"arn:aws:sqs:us-east-1:123456789012:{name}")
    return asynccfn.Success(physical_id=name, data={"Arn": arn, "Fifo": str(props.Fifo).lower()})


@queue.delete
async def delete_queue(
    request: asynccfn.Request[QueueProps], ctx: asynccfn.Context
) -> asynccfn.Success:
    return asynccfn.Success()


@subscription.create
async def create_subscription(
    request: asynccfn.Request[SubscriptionProps], ctx: asynccfn.Context
) -> asynccfn.Success:
    props = request.properties
    if not props.QueueArn.startswith("arn:aws:sqs:"):
        raise asynccfn.Failed(f"QueueArn must be a queue's ARN, got {props.QueueArn}")
    return asynccfn.Success(
        physical_id=f"sub-{props.QueueArn.rpartition(':')[2]}",
        data={"Subscribed": props.QueueArn, "MaxMessages": str(props.MaxMessages * 2)},
    )


@subscription.delete
async def delete_subscription(
    request: asynccfn.Request[SubscriptionProps], ctx: asynccfn.Context
) -> asynccfn.Success:
    return asynccfn.Success()


provider = asynccfn.Provider(queue, subscription)
