"""Typed properties: CloudFormation's string encoding converted exactly, the reasons a bad
property gives, and an Update's ``changed`` and ``replacing``.

The property values are the strings CloudFormation really sends: every scalar a string
(``"true"``, ``"10"``, ``"1.5"``), lists and objects as JSON, ServiceToken among them.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import subprocess
import sys
from typing import Annotated, Any, Literal

import msgspec
import pydantic
import pytest

import asynccfn
from asynccfn._properties import schema_for
from asynccfn._protocol import Request, parse_request
from tests.support import event_for

URL = "https://bucket.s3.amazonaws.com/key?X-Amz-Signature=abc"
HOSTS = frozenset({"bucket.s3.amazonaws.com"})
TOKEN = "arn:aws:lambda:us-east-1:123456789012:function:provider"


class Tier(enum.Enum):
    STANDARD = "standard"
    ARCHIVE = "archive"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class Tag:
    Key: str
    Value: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    Port: int
    Weight: float
    Cidrs: list[str]
    Enabled: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class BucketProps:
    BucketName: str = asynccfn.field(replaces=True)
    Versioned: bool = False
    Retries: int = 3
    Ratio: float | None = None
    Tier: Tier = Tier.STANDARD
    Priority: Priority = Priority.LOW
    Region: Annotated[Literal["eu-west-1", "us-east-1"], asynccfn.Replaces] = "us-east-1"
    Tags: list[Tag] = dataclasses.field(default_factory=list)
    Rules: list[Rule] = dataclasses.field(default_factory=list)
    Limits: dict[str, int] = dataclasses.field(default_factory=dict)
    Note: str | None = None


class QueueProps(msgspec.Struct, rename="pascal", frozen=True, forbid_unknown_fields=True):
    queue_name: Annotated[str, asynccfn.Replaces]
    fifo: bool = False
    delay_seconds: Annotated[int, msgspec.Meta(ge=0, le=900)] = 0
    tags: list[Tag] = []


class TableProps(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)

    table_name: Annotated[str, asynccfn.Replaces] = pydantic.Field(alias="TableName")
    stream: bool = pydantic.Field(default=False, alias="Stream")
    read_capacity: int = pydantic.Field(default=5, alias="ReadCapacity", ge=1)
    tags: list[Tag] = pydantic.Field(default_factory=list, alias="Tags")


class Handle:
    """Not a type msgspec converts."""


@dataclasses.dataclass
class Opaque:
    handle: list[Handle]


def convert(cls: type, properties: dict[str, Any]) -> tuple[Any, list[str]]:
    return schema_for(cls).convert({"ServiceToken": TOKEN, **properties})


def request(kind: str, properties: dict[str, Any], old: dict[str, Any] | None = None) -> Request:
    event = event_for(kind, URL)
    event["ResourceProperties"] = {"ServiceToken": TOKEN, **properties}
    if old is not None:
        event["OldResourceProperties"] = {"ServiceToken": TOKEN, **old}
    return parse_request(event, allowed_hosts=HOSTS)


# --- scalars: exactly CloudFormation's encoding --------------------------------------------


@pytest.mark.parametrize(
    ("sent", "expected"),
    [("true", True), ("false", False), ("True", True), ("FALSE", False), ("tRuE", True)],
)
def test_true_and_false_in_any_case_are_booleans(sent: str, expected: bool) -> None:
    props, errors = convert(BucketProps, {"BucketName": "b", "Versioned": sent})
    assert errors == []
    assert props.Versioned is expected


@pytest.mark.parametrize("sent", ["1", "0", "yes", "no", "on", "off", "t", "", " true"])
def test_nothing_else_is_a_boolean(sent: str) -> None:
    props, errors = convert(BucketProps, {"BucketName": "b", "Versioned": sent})
    assert props is None
    assert errors == [f'Versioned: expected true or false, got "{sent}"']


def test_integer_strings_are_ints_and_decimals_are_never_truncated() -> None:
    assert convert(BucketProps, {"BucketName": "b", "Retries": "10"})[0].Retries == 10
    assert convert(BucketProps, {"BucketName": "b", "Retries": "-2"})[0].Retries == -2
    for sent in ["1.5", "1.0", "1e3", "ten", "", "0x10"]:
        props, errors = convert(BucketProps, {"BucketName": "b", "Retries": sent})
        assert props is None
        assert errors == [f'Retries: expected an integer, got "{sent}"']


def test_number_strings_are_floats_but_not_nan_or_infinity() -> None:
    assert convert(BucketProps, {"BucketName": "b", "Ratio": "1.5"})[0].Ratio == 1.5
    assert convert(BucketProps, {"BucketName": "b", "Ratio": "2"})[0].Ratio == 2.0
    assert convert(BucketProps, {"BucketName": "b", "Ratio": "-2.5e-3"})[0].Ratio == -0.0025
    for sent in ["nan", "inf", "-Infinity", "one", ""]:
        assert convert(BucketProps, {"BucketName": "b", "Ratio": sent}) == (
            None,
            [f'Ratio: expected a number, got "{sent}"'],
        )


def test_enums_and_literals_take_their_values_as_strings() -> None:
    props, errors = convert(
        BucketProps, {"BucketName": "b", "Tier": "archive", "Priority": "2", "Region": "eu-west-1"}
    )
    assert errors == []
    assert (props.Tier, props.Priority, props.Region) == (Tier.ARCHIVE, Priority.HIGH, "eu-west-1")
    _, errors = convert(
        BucketProps, {"BucketName": "b", "Tier": "cold", "Priority": "3", "Region": "mars"}
    )
    assert errors == [
        'Tier: expected one of "standard", "archive", got "cold"',
        'Priority: expected one of 1, 2, got "3"',
        'Region: expected one of "eu-west-1", "us-east-1", got "mars"',
    ]


def test_optional_fields_and_defaults() -> None:
    props, errors = convert(BucketProps, {"BucketName": "b"})
    assert errors == []
    assert props == BucketProps(BucketName="b")
    assert props.Note is None and props.Tags == [] and props.Retries == 3


def test_servicetoken_is_ignored_even_where_unknown_keys_are_refused() -> None:
    props, errors = convert(QueueProps, {"QueueName": "q"})
    assert errors == [] and props == QueueProps(queue_name="q")
    _, errors = convert(QueueProps, {"QueueName": "q", "Colour": "red"})
    assert errors == ["Colour: not a property of this resource"]


# --- lists and nested objects ---------------------------------------------------------------


def test_nested_lists_of_objects_with_numbers_as_cloudformation_sends_them() -> None:
    sent = {
        "BucketName": "logs",
        "Tags": [{"Key": "team", "Value": "data"}, {"Key": "cost-centre", "Value": "42"}],
        "Rules": [
            {"Port": "443", "Weight": "0.5", "Cidrs": ["10.0.0.0/8"], "Enabled": "false"},
            {"Port": "80", "Weight": "1", "Cidrs": []},
        ],
        "Limits": {"objects": "1000", "versions": "3"},
    }
    props, errors = convert(BucketProps, sent)
    assert errors == []
    assert props.Tags == [Tag(Key="team", Value="data"), Tag(Key="cost-centre", Value="42")]
    assert props.Rules == [
        Rule(Port=443, Weight=0.5, Cidrs=["10.0.0.0/8"], Enabled=False),
        Rule(Port=80, Weight=1.0, Cidrs=[], Enabled=True),
    ]
    assert props.Limits == {"objects": 1000, "versions": 3}


def test_every_bad_nested_field_is_named_with_its_path() -> None:
    sent = {
        "BucketName": "logs",
        "Tags": [{"Key": "team"}, "oops"],
        "Rules": [{"Port": "https", "Weight": "0.5", "Cidrs": "10.0.0.0/8", "Enabled": "1"}],
        "Limits": {"objects": "many"},
    }
    props, errors = convert(BucketProps, sent)
    assert props is None
    assert errors == [
        "Tags[0].Value: missing (required)",
        'Tags[1]: expected an object, got "oops"',
        'Rules[0].Port: expected an integer, got "https"',
        'Rules[0].Cidrs: expected a list, got "10.0.0.0/8"',
        'Rules[0].Enabled: expected true or false, got "1"',
        'Limits.objects: expected an integer, got "many"',
    ]


def test_msgspec_struct_with_renames_and_constraints() -> None:
    props, errors = convert(
        QueueProps,
        {
            "QueueName": "q",
            "Fifo": "TRUE",
            "DelaySeconds": "30",
            "Tags": [{"Key": "a", "Value": "1"}],
        },
    )
    assert errors == []
    assert props == QueueProps(
        queue_name="q", fifo=True, delay_seconds=30, tags=[Tag(Key="a", Value="1")]
    )
    _, errors = convert(QueueProps, {"QueueName": "q", "DelaySeconds": "901"})
    assert errors == ["DelaySeconds: expected `int` <= 900"]
    _, errors = convert(QueueProps, {"Fifo": "yes", "DelaySeconds": "0.5"})
    assert errors == [
        "QueueName: missing (required)",
        'Fifo: expected true or false, got "yes"',
        'DelaySeconds: expected an integer, got "0.5"',
    ]


def test_pydantic_model_by_alias_with_cloudformation_booleans_only() -> None:
    props, errors = convert(
        TableProps, {"TableName": "t", "Stream": "True", "ReadCapacity": "10", "Tags": []}
    )
    assert errors == []
    assert props == TableProps(TableName="t", Stream=True, ReadCapacity=10)
    # pydantic's lax mode takes "yes", "on" and "1" for true: CloudFormation's rule does not.
    _, errors = convert(TableProps, {"TableName": "t", "Stream": "yes", "ReadCapacity": "2.5"})
    assert errors == [
        'Stream: expected true or false, got "yes"',
        'ReadCapacity: expected an integer, got "2.5"',
    ]
    _, errors = convert(TableProps, {"TableName": "t", "ReadCapacity": "0"})
    assert errors == ["ReadCapacity: Input should be greater than or equal to 1"]


# --- the request's typed view ---------------------------------------------------------------


def test_a_create_gets_typed_properties_and_keeps_the_raw_mapping() -> None:
    raw = request("create", {"BucketName": "b", "Versioned": "true"})
    typed = schema_for(BucketProps).view(raw)
    assert isinstance(typed, Request)
    assert typed.properties == BucketProps(BucketName="b", Versioned=True)
    assert typed.raw_properties == {"ServiceToken": TOKEN, "BucketName": "b", "Versioned": "true"}
    assert typed.old_properties is None and typed.changed == frozenset()
    assert not typed.replacing


def test_an_update_names_the_changed_fields_and_whether_they_replace() -> None:
    schema = schema_for(BucketProps)
    old = {"BucketName": "b", "Versioned": "false", "Tags": [{"Key": "t", "Value": "1"}]}
    in_place = schema.view(request("update", {**old, "Versioned": "TRUE", "Retries": "3"}, old))
    assert isinstance(in_place, Request)
    # "Retries": "3" equals the default the old properties got: not a change.
    assert in_place.changed == {"Versioned"}
    assert not in_place.replacing
    assert in_place.old_properties == BucketProps(BucketName="b", Tags=[Tag(Key="t", Value="1")])
    renamed = schema.view(request("update", {**old, "BucketName": "c"}, old))
    assert isinstance(renamed, Request)
    assert renamed.changed == {"BucketName"} and renamed.replacing
    moved = schema.view(request("update", {**old, "Region": "eu-west-1"}, old))
    assert isinstance(moved, Request) and moved.replacing  # Annotated[..., Replaces]


def test_msgspec_and_pydantic_fields_marked_replaces() -> None:
    queue = schema_for(QueueProps).view(
        request("update", {"QueueName": "b", "Fifo": "true"}, {"QueueName": "a"})
    )
    assert isinstance(queue, Request)
    assert queue.changed == {"queue_name", "fifo"} and queue.replacing
    table = schema_for(TableProps).view(
        request("update", {"TableName": "t", "Stream": "true"}, {"TableName": "t"})
    )
    assert isinstance(table, Request)
    assert table.changed == {"stream"} and not table.replacing


def test_an_update_checks_only_the_new_properties() -> None:
    schema = schema_for(BucketProps)
    # The old properties no longer convert (a field became an int): best effort, compared raw.
    typed = schema.view(
        request(
            "update", {"BucketName": "b", "Retries": "4"}, {"BucketName": "b", "Retries": "four"}
        )
    )
    assert isinstance(typed, Request)
    assert typed.old_properties is None
    assert typed.raw_old_properties == {"ServiceToken": TOKEN, "BucketName": "b", "Retries": "four"}
    assert typed.changed == {"Retries"}
    reason = schema.view(
        request("update", {"BucketName": "b", "Retries": "ten"}, {"BucketName": "b"})
    )
    assert (
        reason
        == 'the properties do not convert to BucketProps: Retries: expected an integer, got "ten"'
    )


def test_a_delete_with_properties_that_no_longer_convert_keeps_the_raw_mapping() -> None:
    typed = schema_for(BucketProps).view(
        request("delete", {"BucketName": "b", "Versioned": "maybe"})
    )
    assert isinstance(typed, Request)
    assert typed.properties == {"ServiceToken": TOKEN, "BucketName": "b", "Versioned": "maybe"}
    assert typed.property_errors == (
        "the properties do not convert to BucketProps: "
        'Versioned: expected true or false, got "maybe"'
    )


def test_the_reason_stays_within_its_budget_and_counts_what_it_leaves_out() -> None:
    schema = schema_for(BucketProps)
    limits = {f"limit{i:03}": f"value-{i}" for i in range(200)}
    _, errors = schema.convert({"BucketName": "b", "Limits": limits})
    assert len(errors) == 200
    reason = schema.reason(errors)
    assert len(reason) <= 1024
    assert 'Limits.limit000: expected an integer, got "value-0"' in reason
    shown = reason.count("expected an integer")
    assert reason.endswith(f"; and {200 - shown} more")


def test_untyped_requests_are_unchanged_and_name_changed_keys() -> None:
    untyped = request("update", {"A": "1", "B": "x"}, {"A": "1", "B": "y", "C": "z"})
    assert untyped.properties == {"ServiceToken": TOKEN, "A": "1", "B": "x"}
    assert untyped.raw_properties is untyped.properties
    assert untyped.raw_old_properties is untyped.old_properties
    assert untyped.changed == {"B", "C"} and not untyped.replacing
    assert request("create", {"A": "1"}).changed == frozenset()
    assert copy.deepcopy(untyped.properties) == untyped.properties


# --- declaring a typed resource --------------------------------------------------------------


def test_a_properties_type_that_is_not_a_record_is_refused_at_definition() -> None:
    with pytest.raises(asynccfn.ConfigurationError, match=r"takes a dataclass, a msgspec\.Struct"):
        asynccfn.Resource("Custom::X", properties=dict)

    with pytest.raises(asynccfn.ConfigurationError, match=r"Opaque.*Handle is not one msgspec"):
        asynccfn.Resource("Custom::X", properties=Opaque)


def test_the_conversion_library_is_imported_only_for_a_typed_resource() -> None:
    code = (
        "import sys, asynccfn\n"
        "r = asynccfn.Resource('Custom::X', update='replace', delete='nothing')\n"
        "@r.create\n"
        "async def create(request, ctx): return asynccfn.Success()\n"
        "asynccfn.lambda_entry(r)\n"
        "assert 'msgspec' not in sys.modules and 'pydantic' not in sys.modules, sys.modules\n"
        "assert 'asynccfn._properties' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
