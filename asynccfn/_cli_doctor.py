"""``asynccfn doctor --function NAME``: check a deployed function against what asynccfn needs
(DESIGN.md §5), each line OK, FIX (what to change) or ?? (could not check, and why).

- its subnets reach S3 (a function in a VPC needs an S3 gateway endpoint or a NAT gateway on
  their route tables, or every response PUT hangs until the stack gives up);
- RecursiveLoop is Allow (Lambda cuts a long chain of hand-overs otherwise);
- the EventInvokeConfig of the invoked qualifier keeps events at most 900 s and sends the
  on-failure record to the function itself;
- reserved concurrency is not 0 (every invocation, hand-overs included, is throttled);
- the journal table ``ASYNCCFN_JOURNAL_TABLE`` names exists and has asynccfn's keys.

Read-only: it calls ``lambda:Get*``, ``ec2:Describe*`` and ``dynamodb:DescribeTable``.
"""

from __future__ import annotations

import argparse
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._aws import error_code, error_message
from ._env import JOURNAL_TABLE_ENV
from .cli import EXIT_OK, EXIT_UNSUCCESSFUL, CliError, Console, Tone, resolve_region

MAX_EVENT_AGE = 900


class Verdict(enum.Enum):
    OK = "OK"
    FIX = "FIX"
    UNKNOWN = "??"


@dataclass(frozen=True, kw_only=True, slots=True)
class Check:
    """One line of the report: ``what`` was checked, the verdict and what it found."""

    what: str
    verdict: Verdict
    detail: str


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``doctor``."""
    doctor = subparsers.add_parser(
        "doctor",
        help="check a deployed function: route to S3, RecursiveLoop, async config, journal",
        description="Check a deployed asynccfn function: its VPC subnets' route to S3, its "
        "RecursiveLoop, EventInvokeConfig and reserved concurrency, and its journal table. "
        "Exits 3 when something needs changing.",
    )
    doctor.add_argument("--function", required=True, metavar="NAME", help="name or ARN")
    doctor.add_argument(
        "--qualifier", default="$LATEST", help="the qualifier CloudFormation invokes ($LATEST)"
    )
    doctor.add_argument("--region", metavar="REGION", help="AWS region (default: $AWS_REGION)")
    doctor.add_argument(
        "--endpoint-url", metavar="URL", help="one endpoint for every AWS API (e.g. moto)"
    )
    doctor.set_defaults(run=run_doctor)


def run_doctor(args: argparse.Namespace, console: Console) -> int:
    checks = diagnose(
        args.function,
        qualifier=args.qualifier,
        region=resolve_region(args),
        endpoint_url=args.endpoint_url,
    )
    tones = {Verdict.OK: Tone.GOOD, Verdict.FIX: Tone.BAD, Verdict.UNKNOWN: Tone.WARN}
    for check in checks:
        verdict = console.paint(f"{check.verdict.value:<3}", tones[check.verdict])
        console.print(f"{verdict}  {check.what:<20} {check.detail}")
    return EXIT_UNSUCCESSFUL if any(c.verdict is Verdict.FIX for c in checks) else EXIT_OK


def diagnose(
    function: str, *, qualifier: str, region: str, endpoint_url: str | None
) -> list[Check]:
    """Every check of the function, in the order printed.

    Raises:
        CliError: the function cannot be read at all (missing, no permission, no network).
    """
    import botocore.session
    from botocore.exceptions import BotoCoreError, ClientError

    session = botocore.session.get_session()

    def client(service: str) -> Any:
        return session.create_client(service, region_name=region, endpoint_url=endpoint_url)

    lam = client("lambda")
    try:
        config = lam.get_function_configuration(FunctionName=function)
    except (ClientError, BotoCoreError) as exc:
        raise CliError(f"cannot read function {function!r}: {exc}") from None
    checks = [
        _guarded("route to S3", lambda: _route_to_s3(client("ec2"), config, region)),
        _guarded("RecursiveLoop", lambda: _recursive_loop(lam, function)),
        _guarded("EventInvokeConfig", lambda: _invoke_config(lam, config, qualifier)),
        _guarded("concurrency", lambda: _concurrency(lam, function)),
        _guarded("journal table", lambda: _journal(client("dynamodb"), config)),
    ]
    return checks


def _guarded(what: str, check: Callable[[], tuple[Verdict, str]]) -> Check:
    """Run one check; an API this account (or endpoint) cannot answer is "could not check"."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        verdict, detail = check()
    except ClientError as exc:
        message = error_message(exc)
        # An endpoint that does not serve the API answers with an HTML page, not a message.
        if message.startswith("<") or len(message) > 200:
            message = ""
        detail = f"could not check: {exc.operation_name} answered {error_code(exc) or '?'}"
        detail += f" ({message})" if message else ""
        return Check(what=what, verdict=Verdict.UNKNOWN, detail=detail)
    except BotoCoreError as exc:
        return Check(what=what, verdict=Verdict.UNKNOWN, detail=f"could not check: {exc}")
    return Check(what=what, verdict=verdict, detail=detail)


def _route_to_s3(ec2: Any, config: Any, region: str) -> tuple[Verdict, str]:
    vpc = config.get("VpcConfig") or {}
    subnets = vpc.get("SubnetIds") or []
    if not subnets:
        return Verdict.OK, "not in a VPC: Lambda's own network reaches S3"
    # The subnets' own VPC, as EC2 says (not the function's copy of it).
    described = ec2.describe_subnets(SubnetIds=subnets[:1]).get("Subnets", [])
    vpc_id = described[0]["VpcId"] if described else vpc.get("VpcId")
    s3_endpoint = f"com.amazonaws.{region}.s3"
    endpoints = ec2.describe_vpc_endpoints(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "service-name", "Values": [s3_endpoint]},
        ]
    ).get("VpcEndpoints", [])
    gateway_tables = {
        table
        for endpoint in endpoints
        if endpoint.get("VpcEndpointType", "Gateway") == "Gateway"
        for table in endpoint.get("RouteTableIds", [])
    }
    missing = []
    for subnet in subnets:
        table = _route_table(ec2, vpc_id, subnet)
        if table is None:
            missing.append(f"{subnet} (no route table)")
            continue
        table_id = table["RouteTableId"]
        nat = any(
            route.get("NatGatewayId") and route.get("DestinationCidrBlock") == "0.0.0.0/0"
            for route in table.get("Routes", [])
        )
        if table_id not in gateway_tables and not nat:
            missing.append(f"{subnet} ({table_id})")
    if missing:
        return Verdict.FIX, (
            f"in VPC {vpc_id}, subnets without a route to S3: {', '.join(missing)}; the "
            f"response PUT hangs. Add an S3 gateway endpoint ({s3_endpoint}) to their route "
            "tables, or a NAT gateway route for 0.0.0.0/0"
        )
    return Verdict.OK, f"in VPC {vpc_id}: every subnet routes to S3 ({', '.join(subnets)})"


def _route_table(ec2: Any, vpc_id: Any, subnet: str) -> Any:
    """The subnet's route table: its own association, else the VPC's main table."""
    for filters in (
        [{"Name": "association.subnet-id", "Values": [subnet]}],
        [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}],
    ):
        tables = ec2.describe_route_tables(Filters=filters).get("RouteTables", [])
        if tables:
            return tables[0]
    return None


def _recursive_loop(lam: Any, function: str) -> tuple[Verdict, str]:
    loop = lam.get_function_recursion_config(FunctionName=function).get("RecursiveLoop")
    if loop == "Allow":
        return Verdict.OK, "Allow"
    return Verdict.FIX, (
        f"{loop}: Lambda may cut a long chain of hand-overs; set RecursiveLoop: Allow"
    )


def _invoke_config(lam: Any, config: Any, qualifier: str) -> tuple[Verdict, str]:
    from botocore.exceptions import ClientError

    try:
        invoke = lam.get_function_event_invoke_config(
            FunctionName=config["FunctionName"], Qualifier=qualifier
        )
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return Verdict.FIX, (
            f"none on {qualifier}: Lambda keeps a hand-over up to 6 hours and drops it "
            f"silently; add one with MaximumEventAgeInSeconds {MAX_EVENT_AGE} and the "
            "function as on-failure destination"
        )
    problems = list(_invoke_problems(invoke, config["FunctionArn"]))
    if problems:
        return Verdict.FIX, f"on {qualifier}: " + "; ".join(problems)
    age = invoke.get("MaximumEventAgeInSeconds")
    return Verdict.OK, f"on {qualifier}: maximum event age {age} s, on-failure to itself"


def _invoke_problems(invoke: Any, arn: str) -> Iterator[str]:
    age = invoke.get("MaximumEventAgeInSeconds")
    if age is None or age > MAX_EVENT_AGE:
        yield f"MaximumEventAgeInSeconds is {age}: set at most {MAX_EVENT_AGE}"
    destination = ((invoke.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
        "Destination"
    )
    if not destination or not (destination == arn or destination.startswith(arn + ":")):
        yield (
            f"on-failure destination is {destination or 'unset'}: set the function itself "
            "(a function that crashes every time still answers FAILED)"
        )


def _concurrency(lam: Any, function: str) -> tuple[Verdict, str]:
    reserved = lam.get_function_concurrency(FunctionName=function).get(
        "ReservedConcurrentExecutions"
    )
    if reserved == 0:
        return Verdict.FIX, "reserved concurrency is 0: every invocation is throttled"
    if reserved is None:
        return Verdict.OK, "unreserved (the account's pool)"
    return Verdict.OK, f"reserved {reserved}"


def _journal(ddb: Any, config: Any) -> tuple[Verdict, str]:
    from botocore.exceptions import ClientError

    variables = (config.get("Environment") or {}).get("Variables") or {}
    table = variables.get(JOURNAL_TABLE_ENV)
    if not table:
        return Verdict.FIX, (
            f"{JOURNAL_TABLE_ENV} is not set (unless lambda_entry names the table): "
            "without a journal nothing is durable"
        )
    try:
        described = ddb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return Verdict.FIX, f"{table} does not exist: `asynccfn table create {table}`"
    keys = {k["AttributeName"]: k["KeyType"] for k in described.get("KeySchema", [])}
    if keys != {"pk": "HASH", "sk": "RANGE"}:
        return Verdict.FIX, f"{table} has keys {keys}, not asynccfn's pk/sk"
    return Verdict.OK, f"{table} ({described.get('TableStatus', '?')})"
