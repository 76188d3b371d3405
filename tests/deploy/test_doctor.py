"""``asynccfn doctor`` against moto's server: a function in a VPC whose subnet has no route to
S3, reserved concurrency 0, no async config and no journal table is told what to change; the
same function fixed is OK. What moto cannot answer is reported as "could not check"."""

from __future__ import annotations

import io
import uuid
import zipfile
from typing import Any

import botocore.session
import pytest

from asynccfn import cli


def _client(service: str, endpoint: str) -> Any:
    return botocore.session.get_session().create_client(
        service, region_name="us-east-1", endpoint_url=endpoint
    )


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def _doctor(capsys: pytest.CaptureFixture[str], endpoint: str, name: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(
        ["doctor", "--function", name, "--region", "us-east-1", "--endpoint-url", endpoint]
    )
    captured = capsys.readouterr()
    assert not captured.err, captured.err
    return code, captured.out


def test_doctor_names_what_to_change_then_passes(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ec2, lam, iam = (_client(s, moto_endpoint) for s in ("ec2", "lambda", "iam"))
    ddb = _client("dynamodb", moto_endpoint)
    suffix = uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    table_id = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet)
    group = ec2.create_security_group(GroupName=f"g{suffix}", Description="f", VpcId=vpc)
    role = iam.create_role(
        RoleName=f"role-{suffix}",
        AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
    )["Role"]["Arn"]
    name = f"provider-{suffix}"
    journal = f"journal-{suffix}"
    arn = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip()},
        VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group["GroupId"]]},
        Environment={"Variables": {"ASYNCCFN_JOURNAL_TABLE": journal}},
    )["FunctionArn"]
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)

    code, out = _doctor(capsys, moto_endpoint, name)
    assert code == 3, out
    lines = {line.split()[1]: line for line in out.splitlines() if line.strip()}
    assert lines["route"].startswith("FIX") and f"{subnet} ({table_id})" in lines["route"]
    assert "S3 gateway endpoint (com.amazonaws.us-east-1.s3)" in lines["route"]
    assert lines["concurrency"].startswith("FIX") and "is 0" in lines["concurrency"]
    assert lines["EventInvokeConfig"].startswith("FIX") and "none on $LATEST" in out
    assert lines["journal"].startswith("FIX") and f"{journal} does not exist" in out
    # moto 5 serves no GetFunctionRecursionConfig: the doctor says so rather than guess
    assert lines["RecursiveLoop"].split(None, 2)[2].strip() == (
        "could not check: GetFunctionRecursionConfig answered 404"
    )

    ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName="com.amazonaws.us-east-1.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[table_id],
    )
    lam.delete_function_concurrency(FunctionName=name)
    lam.put_function_event_invoke_config(
        FunctionName=name,
        Qualifier="$LATEST",
        MaximumEventAgeInSeconds=900,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    ddb.create_table(
        TableName=journal,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    code, out = _doctor(capsys, moto_endpoint, name)
    lines = {line.split()[1]: line for line in out.splitlines() if line.strip()}
    for what in ("route", "EventInvokeConfig", "concurrency", "journal"):
        assert lines[what].startswith("OK"), out
    assert lines["RecursiveLoop"].startswith("??")
    assert code == 0, out  # nothing to change that could be checked
