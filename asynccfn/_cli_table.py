"""``asynccfn table create|template``: provision the journal table, or print a CloudFormation
template with everything a function needs (DESIGN.md §5).

The template's function policy grants exactly the DynamoDB actions the runtime's store calls
(tests/test_cli.py holds the two together), and ``lambda:InvokeFunction`` on the function
itself, which both the hand-over and the on-failure destination need. With ``--kms-key ARN``
it also grants what ``asynccfn.KmsCodec`` calls on that key, and names the key to the function
in ``ASYNCCFN_KMS_KEY``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._env import JOURNAL_TABLE_ENV, KMS_KEY_ENV
from .cli import EXIT_OK, Console, aws_options, group_help, resolve_endpoint, resolve_region
from .journal.models import STACK_INDEX

# What the runtime calls (asynccfn/journal/store.py) and what the `journal` command calls
# (asynccfn/journal/query.py): the tests compare both with the code.
RUNTIME_DYNAMODB_ACTIONS = (
    "dynamodb:GetItem",  # a superseded holder follows the operation (_follow.py)
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
READER_DYNAMODB_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")
# What asynccfn.KmsCodec calls (asynccfn/_kms.py).
CODEC_KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
MAX_EVENT_AGE = 900
MAX_RETRIES = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``table`` and its ``create`` and ``template`` subcommands."""
    table = subparsers.add_parser(
        "table",
        help="create the journal table, or print a CloudFormation template for it",
        description="Create the journal table, or print a CloudFormation template for it.",
    )
    table.set_defaults(run=group_help(table))
    commands = table.add_subparsers(title="commands", metavar="COMMAND")

    create = commands.add_parser(
        "create",
        parents=[aws_options(table=False)],
        help="create the journal table",
        description="Create the journal table: string keys pk/sk, the by-stack index, TTL on "
        "expires_at, on-demand billing.",
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--no-wait", action="store_true", help="return without waiting for it to be ACTIVE"
    )
    create.set_defaults(run=run_create)

    template = commands.add_parser(
        "template",
        help="print a CloudFormation template: table, role, function, async invoke config",
        description="Print a CloudFormation template with the journal table, the function's "
        "role and least-privilege policy, the function (RecursiveLoop: Allow) and its "
        "EventInvokeConfig (the function as its own on-failure destination).",
    )
    template.add_argument(
        "--format", choices=("yaml", "json"), default="yaml", help="output format (yaml)"
    )
    template.add_argument(
        "--kms-key",
        type=_kms_key_arn,
        metavar="ARN",
        help="the KMS key of the journal's payload codec (asynccfn.KmsCodec): grant the "
        "function kms:GenerateDataKey and kms:Decrypt on it, and set ASYNCCFN_KMS_KEY",
    )
    template.set_defaults(run=run_template)


def _kms_key_arn(text: str) -> str:
    if not _KMS_KEY_ARN.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)"
        )
    return text


def run_create(args: argparse.Namespace, console: Console) -> int:
    from .journal.query import Journal

    journal = Journal(args.name, region=resolve_region(args), endpoint_url=resolve_endpoint(args))
    journal.create_table(wait=not args.no_wait)
    console.print(f"created journal {journal.where}")
    console.note(
        f"functions find it with {JOURNAL_TABLE_ENV}={args.name} "
        f"(or lambda_entry(..., journal={args.name!r}))"
    )
    return EXIT_OK


def run_template(args: argparse.Namespace, console: Console) -> int:
    document = template(kms_key=args.kms_key)
    if args.format == "json":
        console.print(json.dumps(_long_form(document), indent=2))
    else:
        console.print(to_yaml(document, header=_YAML_HEADER))
    return EXIT_OK


# -- the template -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fn:
    """A CloudFormation intrinsic: ``Fn("Ref", "X")`` is ``!Ref X`` / ``{"Ref": "X"}``."""

    name: str
    value: Any


def _ref(name: str) -> Fn:
    return Fn("Ref", name)


def _att(resource: str, attribute: str) -> Fn:
    return Fn("GetAtt", f"{resource}.{attribute}")


def _sub(text: str) -> Fn:
    return Fn("Sub", text)


_YAML_HEADER = """\
# An asynccfn custom-resource provider: the journal table, the function, its role with a
# least-privilege policy, and its asynchronous invocation settings. Deploy with e.g.
#   aws cloudformation deploy --template-file provider.yaml --stack-name my-provider \\
#     --capabilities CAPABILITY_IAM \\
#     --parameter-overrides CodeS3Bucket=my-bucket CodeS3Key=provider.zip Handler=app.handler
# Custom resources use the FunctionArn output as their ServiceToken."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FunctionSpec:
    """What ``asynccfn template`` knows of the function beyond ``table template``: its code
    as a local zip (``aws cloudformation package`` uploads it), handler, runtime,
    architecture, and the IAM statements its own AWS calls need."""

    code: str
    handler: str
    runtime: str = "python3.11"
    architecture: str = "x86_64"
    statements: tuple[Mapping[str, Any], ...] = ()


def template(*, kms_key: str | None = None, function: FunctionSpec | None = None) -> dict[str, Any]:
    """The provider's CloudFormation template, intrinsics as :class:`Fn`; ``kms_key`` is the
    ARN of the payload codec's key, if any; ``function`` the packaged function (without it,
    the code is an S3 object named by parameters). Raises nothing."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "asynccfn custom-resource provider: function, journal table, "
        "least-privilege role, async invoke config",
        "Parameters": _parameters(function),
        "Resources": {
            "JournalTable": _table(),
            "FunctionRole": _role(),
            "Function": _function(kms_key, function),
            "FunctionLogGroup": {
                "Type": "AWS::Logs::LogGroup",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "LogGroupName": _sub("/aws/lambda/${Function}"),
                    "RetentionInDays": 30,
                },
            },
            "FunctionPolicy": _function_policy(kms_key, function),
            "FunctionEventInvokeConfig": {
                "Type": "AWS::Lambda::EventInvokeConfig",
                # Lambda checks at creation that the role may invoke the destination.
                "DependsOn": "FunctionPolicy",
                "Properties": {
                    "FunctionName": _ref("Function"),
                    "Qualifier": "$LATEST",
                    "MaximumEventAgeInSeconds": MAX_EVENT_AGE,
                    "MaximumRetryAttempts": MAX_RETRIES,
                    "DestinationConfig": {
                        "OnFailure": {"Destination": _att("Function", "Arn")},
                    },
                },
            },
            "JournalReaderPolicy": _reader_policy(),
        },
        "Outputs": {
            "FunctionArn": {
                "Description": "the ServiceToken of the custom resources this function serves",
                "Value": _att("Function", "Arn"),
            },
            "JournalTableName": {
                "Description": f"{JOURNAL_TABLE_ENV} for `asynccfn journal`",
                "Value": _ref("JournalTable"),
            },
            "JournalReaderPolicyArn": {
                "Description": "attach to whoever runs `asynccfn journal`",
                "Value": _ref("JournalReaderPolicy"),
            },
        },
    }


def _parameters(function: FunctionSpec | None) -> dict[str, Any]:
    code: dict[str, Any] = {
        "CodeS3Bucket": {"Type": "String", "Description": "S3 bucket of the function's zip"},
        "CodeS3Key": {"Type": "String", "Description": "S3 key of the function's zip"},
    }
    return {
        **(code if function is None else {}),
        "Handler": {
            "Type": "String",
            "Default": "app.handler" if function is None else function.handler,
            "Description": "module.attribute of the asynccfn.lambda_entry(...) handler",
        },
        "Runtime": {
            "Type": "String",
            "Default": "python3.11" if function is None else function.runtime,
            "AllowedValues": ["python3.11", "python3.12", "python3.13"],
        },
        "Timeout": {
            "Type": "Number",
            "Default": 900,
            "MinValue": 30,
            "MaxValue": 900,
            "Description": "seconds per invocation; longer operations hand over",
        },
        "MemorySize": {"Type": "Number", "Default": 512, "MinValue": 128, "MaxValue": 10240},
    }


def _table() -> dict[str, Any]:
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "stack_id", "AttributeType": "S"},
                {"AttributeName": "created_at", "AttributeType": "N"},
            ],
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": STACK_INDEX,
                    "KeySchema": [
                        {"AttributeName": "stack_id", "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    }


def _role() -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
        },
    }


def _function(kms_key: str | None, function: FunctionSpec | None) -> dict[str, Any]:
    variables: dict[str, Any] = {JOURNAL_TABLE_ENV: _ref("JournalTable")}
    if kms_key is not None:
        variables[KMS_KEY_ENV] = kms_key
    if function is not None:
        return _packaged(_function(kms_key, None), function)
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"S3Bucket": _ref("CodeS3Bucket"), "S3Key": _ref("CodeS3Key")},
            "Handler": _ref("Handler"),
            "Runtime": _ref("Runtime"),
            "Timeout": _ref("Timeout"),
            "MemorySize": _ref("MemorySize"),
            "Role": _att("FunctionRole", "Arn"),
            # A long operation is a long chain of self-invocations: Lambda must not cut it.
            "RecursiveLoop": "Allow",
            "Environment": {"Variables": variables},
        },
    }


def _packaged(resource: dict[str, Any], function: FunctionSpec) -> dict[str, Any]:
    """The function with its code as a local zip, which ``aws cloudformation package`` (or
    ``sam deploy``) uploads and replaces with its S3 location."""
    properties = dict(resource["Properties"])
    properties["Code"] = function.code
    properties["Architectures"] = [function.architecture]
    return {
        **resource,
        # cfn-lint warns (W3002) that a local Code path needs `package`: that is the intent.
        "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W3002"]}}},
        "Properties": properties,
    }


def _function_policy(kms_key: str | None, function: FunctionSpec | None = None) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Journal",
            "Effect": "Allow",
            "Action": list(RUNTIME_DYNAMODB_ACTIONS),
            "Resource": _att("JournalTable", "Arn"),
        },
        {
            # The hand-over invokes context.invoked_function_arn (maybe qualified), and
            # Lambda delivers the on-failure record with the same permission.
            "Sid": "InvokeItself",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": [_att("Function", "Arn"), _sub("${Function.Arn}:*")],
        },
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": _att("FunctionLogGroup", "Arn"),
        },
    ]
    if kms_key is not None:
        # One data key per operation, unwrapped again by later invocations (asynccfn/_kms.py).
        statements.append(
            {
                "Sid": "JournalPayloadKey",
                "Effect": "Allow",
                "Action": list(CODEC_KMS_ACTIONS),
                "Resource": kms_key,
            }
        )
    if function is not None:
        # The handler's own AWS calls, as `asynccfn policy` derives them from its code.
        statements.extend(dict(statement) for statement in function.statements)
    # A separate policy resource: the role cannot name the function that names the role.
    return {
        "Type": "AWS::IAM::RolePolicy",
        "Properties": {
            "RoleName": _ref("FunctionRole"),
            "PolicyName": "asynccfn-function",
            "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
        },
    }


def _reader_policy() -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "Description": "read the asynccfn journal (asynccfn journal list/show/tail)",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadJournal",
                        "Effect": "Allow",
                        "Action": list(READER_DYNAMODB_ACTIONS),
                        "Resource": [
                            _att("JournalTable", "Arn"),
                            _sub("${JournalTable.Arn}/index/" + STACK_INDEX),
                        ],
                    }
                ],
            },
        },
    }


# -- output -----------------------------------------------------------------------------------


def _long_form(node: Any) -> Any:
    """The template as JSON: ``Fn`` as ``{"Ref": …}`` / ``{"Fn::GetAtt": [r, a]}`` / …"""
    if isinstance(node, Fn):
        if node.name == "Ref":
            return {"Ref": node.value}
        if node.name == "GetAtt":
            return {"Fn::GetAtt": node.value.split(".", 1)}
        return {f"Fn::{node.name}": _long_form(node.value)}
    if isinstance(node, dict):
        return {key: _long_form(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_long_form(value) for value in node]
    return node


_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_.:/-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def to_yaml(document: dict[str, Any], *, header: str = "") -> str:
    """The template as YAML, intrinsics in their short form (``!Ref X``). Handles exactly
    what templates hold: mappings, lists, strings, numbers, booleans. Raises nothing."""
    lines = [header] if header else []
    lines.extend(_yaml_mapping(document, 0))
    return "\n".join(lines)


def _yaml_mapping(mapping: dict[str, Any], indent: int) -> Iterator[str]:
    pad = " " * indent
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            yield f"{pad}{key}:"
            yield from _yaml_mapping(value, indent + 2)
        elif isinstance(value, list) and value:
            yield f"{pad}{key}:"
            yield from _yaml_list(value, indent + 2)
        else:
            yield f"{pad}{key}: {_yaml_scalar(value)}"


def _yaml_list(items: list[Any], indent: int) -> Iterator[str]:
    pad = " " * indent
    for item in items:
        if isinstance(item, dict) and item:
            nested = list(_yaml_mapping(item, indent + 2))
            yield f"{pad}- {nested[0].lstrip()}"
            yield from nested[1:]
        else:
            yield f"{pad}- {_yaml_scalar(item)}"


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, Fn):
        return f"!{value.name} {_yaml_scalar(value.value)}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value)  # empty: {} or []
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)  # a double-quoted YAML scalar is a JSON string
