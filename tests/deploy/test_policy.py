"""``asynccfn policy`` and ``asynccfn template``: the policy derived from the code covers every
call the resource's real local runs journaled; a call whose action the source cannot tell is
warned about and found in the journal; every template the command emits passes cfn-lint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import asynccfn
from asynccfn import cli
from asynccfn._policy import allows, iam_actions
from asynccfn.journal.models import StepKind
from asynccfn.local.demo import CREATE_PROPERTIES, UPDATE_PROPERTIES
from asynccfn.testing import run_resource
from tests.support import FakeLambdaContext, closing_handler, create_journal_table, event_for

ROOT = Path(__file__).resolve().parents[2]
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


class Ran:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(ROOT)  # MODULE is imported from the working directory

    def run(*argv: str) -> Ran:
        capsys.readouterr()
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


def _examples(name: str) -> Any:
    return json.loads((ROOT / "asynccfn" / "examples" / name).read_text())


LIVES: dict[str, dict[str, Any]] = {
    "asynccfn.local.demo:demo": {
        "properties": {**CREATE_PROPERTIES, "SecondsPerReport": 0},
        "update_properties": {**UPDATE_PROPERTIES, "SecondsPerReport": 0},
    },
    "asynccfn.examples.dynamodb_table:table": {
        "properties": _examples("dynamodb_table.json"),
        "update_properties": _examples("dynamodb_table.update.json"),
    },
    "asynccfn.examples.backfill:backfill": {
        "properties": {**_examples("backfill.json"), "Seed": 30, "PauseSeconds": 0},
    },
}


@pytest.mark.parametrize("spec", sorted(LIVES))
def test_the_policy_covers_every_call_a_local_run_journaled(run: Any, spec: str) -> None:
    policy = run("policy", spec)
    assert policy.code == 0, policy.err
    statements = policy.json["Statement"]
    assert all(s["Resource"] == "*" and s["Effect"] == "Allow" for s in statements)
    assert "warning" not in policy.err

    life = run_resource(spec, echo=False, **LIVES[spec])
    assert life.ok, life.failures
    journaled = {step.name for op in life for step in op.steps if step.kind is StepKind.CALL}
    assert journaled, "the life made no call"
    for action in journaled:
        for needed in iam_actions(action):
            assert allows(statements, needed), (action, needed, statements)
    # each journaled call is one the source names, and stderr says where
    for action in journaled:
        assert f"  {action} " in policy.err and "ctx.call" in policy.err


def test_the_policy_includes_client_calls_made_inside_steps(run: Any) -> None:
    """The demo's reports are written by s3.put_object inside a step, and its existence check
    lists buckets: production denies both unless the policy grants them."""
    actions = {
        a for s in run("policy", "asynccfn.local.demo:demo").json["Statement"] for a in s["Action"]
    }
    assert {"s3:PutObject", "s3:ListAllMyBuckets"} <= actions
    # API names that are not IAM actions are mapped to the IAM ones
    assert "s3:ListBucket" in actions and "s3:ListObjectsV2" not in actions
    assert "s3:DeleteObject" in actions and "s3:DeleteObjects" not in actions
    backfill = {
        a
        for s in run("policy", "asynccfn.examples.backfill:backfill").json["Statement"]
        for a in s["Action"]
    }
    # Scan and BatchWriteItem in steps; the table_exists waiter's DescribeTable
    assert {"dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:DescribeTable"} <= backfill


def test_a_call_whose_action_is_no_literal_is_warned_about_and_read_from_the_journal(
    run: Any,
    dynamodb_endpoint: str,
    moto_endpoint: str,
    presigned_response_url: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from urllib.parse import urlsplit

    from tests.deploy.resources import dynamic

    spec = "tests.deploy.resources:dynamic"
    static = run("policy", spec)
    assert static.code == 0
    assert static.json["Statement"] == []
    assert "tests/deploy/resources.py:15: ctx.call whose action is not a literal" in static.err

    table = create_journal_table(dynamodb_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("ASYNCCFN_ALLOWED_RESPONSE_HOSTS", urlsplit(moto_endpoint).netloc)
    url, _ = presigned_response_url()
    event = event_for("create", url, Operation="ListBuckets")
    event["ResourceType"] = "Custom::Dynamic"
    handler = asynccfn.lambda_entry(dynamic, journal=table)
    with closing_handler(handler):
        assert handler(event, FakeLambdaContext())["outcome"] == "SUCCESS"

    found = run("policy", spec, "--from-journal", table, "--endpoint-url", dynamodb_endpoint)
    assert found.code == 0, found.err
    (statement,) = found.json["Statement"]
    assert statement["Action"] == ["s3:ListAllMyBuckets"]
    assert "s3:ListBuckets" in found.err and "journal" in found.err


def _lint(text: str) -> list[str]:
    from cfnlint.api import lint

    return [str(match) for match in lint(text)]


@pytest.mark.parametrize("spec", sorted(LIVES))
def test_every_template_passes_cfn_lint(run: Any, spec: str) -> None:
    from cfnlint.decode import cfn_yaml

    for extra in ([], ["--kms-key", KEY_ARN, "--python", "3.12", "--arch", "arm64"]):
        as_yaml = run("template", spec, *extra)
        as_json = run("template", spec, *extra, "--format", "json")
        assert as_yaml.code == as_json.code == 0, as_yaml.err + as_json.err
        for text in (as_yaml.out, as_json.out):
            assert _lint(text) == []
        assert json.loads(json.dumps(cfn_yaml.loads(as_yaml.out))) == as_json.json
        assert "ServiceTimeout: 3600" in as_yaml.err


def test_the_template_holds_the_handlers_policy_and_the_packaged_code(run: Any) -> None:
    document = run("template", "asynccfn.examples.dynamodb_table:table", "--format", "json").json
    resources = document["Resources"]
    function = resources["Function"]["Properties"]
    assert function["Code"] == "provider.zip"  # aws cloudformation package uploads it
    assert "CodeS3Bucket" not in document["Parameters"]
    assert document["Parameters"]["Handler"]["Default"] == "asynccfn_handler.handler"
    statements = resources["FunctionPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    sids = [s["Sid"] for s in statements]
    assert sids == ["Journal", "InvokeItself", "Logs", "HandlerDynamodb"]
    assert "dynamodb:CreateTable" in statements[-1]["Action"]
    # The ServiceToken is the unqualified ARN, which invokes $LATEST: the asynchronous
    # settings (max event age, on-failure destination) must be on that qualifier.
    token = document["Outputs"]["FunctionArn"]["Value"]
    assert token == {"Fn::GetAtt": ["Function", "Arn"]}
    invoke = resources["FunctionEventInvokeConfig"]["Properties"]
    assert invoke["Qualifier"] == "$LATEST"
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == token


def test_table_template_is_unchanged_by_the_packaged_form(run: Any) -> None:
    resources = run("table", "template", "--format", "json").json
    assert set(resources["Parameters"]) >= {"CodeS3Bucket", "CodeS3Key"}
    assert "Metadata" not in resources["Resources"]["Function"]
