"""``asynccfn local MODULE:RESOURCE``: a custom resource's whole life on this machine, through
the same code path as in AWS (see :mod:`asynccfn.local.stack`); ``asynccfn demo`` runs the
examples through it (:mod:`asynccfn._cli_demo`).

While it runs it shows each request, then what the journal records as it happens (claims,
steps, hand-overs, the response) and what only the Lambda service sees (an invocation that
timed out, crashed or failed to start), and the handler's own output. At the end it prints
each response as CloudFormation would have received it, and each operation's journal timeline
as ``asynccfn journal show`` does. It exits 0 when every response was SUCCESS, 3 when one was
FAILED (or a replay differed), 1 on an error, 130 on Ctrl-C; whatever it started is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ._cli_local_stack import keyed, resource_option, stack_plan, stack_resources
from ._cli_progress import LOG_STREAM, ProgressPrinter, print_summary
from ._protocol import RequestType
from .cli import (
    EXIT_OK,
    EXIT_UNSUCCESSFUL,
    EXIT_USAGE,
    CliError,
    Console,
    Tone,
)

if TYPE_CHECKING:
    from .local.stack import LocalStack, OperationRun, StackConfig

LOCAL_LAMBDA_TIMEOUT = 900.0


Plan = Callable[["LocalStack"], list["OperationRun"]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``local`` and ``demo``."""
    local = subparsers.add_parser(
        "local",
        help="run a custom resource's whole life on this machine",
        description="Run a custom resource's whole life on this machine: Create (then Update "
        "with --update-properties), then Delete, or one --request-type. It starts moto's "
        "server (S3 for the responses, DynamoDB for the journal unless "
        "$AWS_ENDPOINT_URL_DYNAMODB or --dynamodb names another, every other AWS API the "
        "handler calls) and the local Lambda service, which runs the handler under "
        "awslambdaric in worker processes with real deadlines.",
    )
    local.add_argument(
        "resource",
        metavar="MODULE:RESOURCE",
        help="the asynccfn.Resource (or the handler lambda_entry made of it), e.g. "
        "asynccfn.examples.dynamodb_table:table; MODULE is imported from the working directory",
    )
    requests = local.add_argument_group("requests")
    requests.add_argument(
        "--properties",
        type=_properties_option,
        action="append",
        default=[],
        metavar="[ID=]JSON|@FILE",
        help="ResourceProperties of the Create (default: {}); ID=JSON gives those of the "
        '--resource ID, and may refer to resources before it: {"Fn::GetAtt": ["A", '
        '"Arn"]}, {"Ref": "A"}',
    )
    requests.add_argument(
        "--resource",
        dest="resources",
        type=resource_option,
        action="append",
        default=[],
        metavar="ID=MODULE:RESOURCE",
        help="run a stack of the Provider's resources instead of one: each --resource in "
        "turn (repeat it), Created in order and Deleted in reverse, as CloudFormation does",
    )
    requests.add_argument(
        "--update-properties",
        type=_json_object,
        metavar="JSON|@FILE",
        help="send an Update to these properties between Create and Delete",
    )
    requests.add_argument(
        "--request-type",
        type=_request_type,
        metavar="TYPE",
        help="send only this request (Create, Update or Delete) instead of the whole life; "
        "an Update goes from --properties to --update-properties",
    )
    requests.add_argument(
        "--physical-id",
        metavar="ID",
        help="PhysicalResourceId of a single Update or Delete (default: <LogicalId>-local)",
    )
    requests.add_argument(
        "--service-timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="the requests' ServiceTimeout, CloudFormation's wait for a response (1-3600; "
        "default 3600)",
    )
    requests.add_argument("--logical-id", metavar="ID", help="LogicalResourceId")
    requests.add_argument(
        "--resource-type",
        metavar="TYPE",
        help="ResourceType (default: the Resource's own, else Custom::<LogicalId>)",
    )
    requests.add_argument(
        "--stack-name", default="asynccfn-local", metavar="NAME", help="the stack's name"
    )
    run_options(local, lambda_timeout=LOCAL_LAMBDA_TIMEOUT)
    local.set_defaults(run=run_local)


def run_options(parser: argparse.ArgumentParser, *, lambda_timeout: float) -> list[argparse.Action]:
    """Add the options of the local run (``asynccfn local``'s and ``asynccfn demo``'s); return
    them."""
    group = parser.add_argument_group("the local run")
    actions: list[argparse.Action] = []

    def add(*names: str, **options: Any) -> None:
        actions.append(group.add_argument(*names, **options))

    add(
        "--lambda-timeout",
        type=_positive_float,
        default=lambda_timeout,
        metavar="SECONDS",
        help=f"the function's timeout (at most 900; default {lambda_timeout:g}); small values "
        "make invocations hand over",
    )
    add(
        "--dynamodb",
        metavar="URL",
        help="DynamoDB endpoint for the journal, e.g. DynamoDB Local's, or 'dynamodb-local' "
        "to start Amazon's DynamoDB Local (Java); default: $AWS_ENDPOINT_URL_DYNAMODB, else "
        "moto's server",
    )
    add(
        "--table",
        metavar="NAME",
        help="the journal table, created when missing (default: asynccfn-journal on moto)",
    )
    add(
        "--keep",
        action="store_true",
        help="keep the journal queryable afterwards: print its endpoint and table (a server "
        "this command started keeps running until Ctrl-C)",
    )
    add(
        "--env",
        action="append",
        default=[],
        type=_env_pair,
        metavar="NAME=VALUE",
        help="add a variable to the function's environment (repeatable)",
    )
    add(
        "--handover-every-step",
        action="store_true",
        help="hand over after every recorded step, so every step is reached through replay",
    )
    add(
        "--replay",
        action="store_true",
        help="run every operation once more from its journal and report any difference",
    )
    add(
        "--raw-properties",
        action="store_true",
        help="send the properties with their JSON types; by default they go as CloudFormation "
        "sends them, every number and boolean a string",
    )
    add(
        "--kms-key",
        action="store_true",
        help="encrypt the journal's secrets with asynccfn.KmsCodec, under a key this command "
        "creates in moto's KMS (the function gets ASYNCCFN_KMS_KEY)",
    )
    return actions


# -- running ----------------------------------------------------------------------------------


def run_local(args: argparse.Namespace, console: Console) -> int:
    from .local.stack import StackConfig

    _importable_from_cwd()
    config = StackConfig(
        resource=args.resource,
        lambda_timeout=args.lambda_timeout,
        dynamodb=args.dynamodb,
        table=args.table,
        environment=dict(args.env),
        handover_after_step=args.handover_every_step,
        stack_name=args.stack_name,
        logical_id=args.logical_id,
        resource_type=args.resource_type,
        service_timeout=args.service_timeout,
        keep_table=args.keep,
        kms_key=args.kms_key,
        raw_properties=args.raw_properties,
    )
    request_type: RequestType | None = args.request_type
    plain = [value for logical_id, value in args.properties if logical_id is None]
    properties: Mapping[str, Any] = plain[-1] if plain else {}
    update: Mapping[str, Any] | None = args.update_properties
    if args.resources:
        return drive(config, _stack_plan(args, config), console, keep=args.keep)
    if len(plain) < len(args.properties):
        raise CliError(
            "--properties ID=JSON is for a stack of --resource ID=MODULE:RESOURCE",
            code=EXIT_USAGE,
        )

    def plan(stack: LocalStack) -> list[OperationRun]:
        if request_type is None:
            return stack.lifecycle(properties, update, replay=args.replay)
        if request_type is RequestType.UPDATE:
            run = stack.send(
                request_type,
                update if update is not None else properties,
                old_properties=properties,
                physical_id=args.physical_id,
            )
        else:
            run = stack.send(request_type, properties, physical_id=args.physical_id)
        return [stack.replay(run) if args.replay else run]

    return drive(config, plan, console, keep=args.keep)


def _stack_plan(args: argparse.Namespace, config: StackConfig) -> Plan:
    """The plan of ``--resource``: a stack of the Provider's resources.

    Raises:
        CliError: an option that speaks of one resource only, or a bad --resource.
    """
    single = {
        "--request-type": args.request_type,
        "--update-properties": args.update_properties,
        "--physical-id": args.physical_id,
        "--logical-id": args.logical_id,
        "--resource-type": args.resource_type,
        "--replay": args.replay or None,
    }
    given = [option for option, value in single.items() if value is not None]
    if given:
        raise CliError(
            f"--resource runs a stack's whole life: {given[0]} is for one resource",
            code=EXIT_USAGE,
        )
    if any(logical_id is None for logical_id, _ in args.properties):
        raise CliError(
            "with --resource, give each resource's properties as --properties ID=JSON",
            code=EXIT_USAGE,
        )
    keyed_properties = {logical_id: value for logical_id, value in args.properties}
    return stack_plan(stack_resources(args.resources, keyed_properties))


def drive(config: StackConfig, plan: Plan, console: Console, *, keep: bool) -> int:
    """Start a local stack, run ``plan`` on it, print the results; stop everything after,
    whatever happens (Ctrl-C and SIGTERM included). Returns the exit code.

    Raises:
        ResourceSpecError, LocalServerError, JournalError, NoResponse: one line each.
    """
    from .local.stack import LocalStack

    with _stop_signals_interrupt():
        stack = LocalStack(config, watcher=ProgressPrinter(console))
        try:
            stack.start()
            print_setup(stack, console)
            runs = plan(stack)
            print_summary(runs, console)
            code = _report(runs, console)
            if keep:
                stack.stop_lambda()
                _keep(stack, console)
            return code
        finally:
            with _interrupts_held():
                stack.close()


def _report(runs: Sequence[OperationRun], console: Console) -> int:
    failed = [run for run in runs if not run.ok]
    diverged = [run for run in runs if run.replay is not None and run.replay.problems]
    for run in failed:
        reason = LOG_STREAM.sub("", run.reason or "no reason given")
        console.note(f"asynccfn: {run.label} answered FAILED: {' '.join(reason.split())}")
    for run in diverged:
        assert run.replay is not None
        console.note(f"asynccfn: {run.label} replayed differently: {run.replay.problems[0]}")
    if failed or diverged:
        return EXIT_UNSUCCESSFUL
    shown = ", ".join(f"{run.label} {run.status}" for run in runs)
    console.print(console.paint(shown, Tone.GOOD))
    return EXIT_OK


def _keep(stack: LocalStack, console: Console) -> None:
    from .local._env import LOCAL_AWS_ENV, REGION

    console.print()
    console.print(
        console.paint("The journal is kept", Tone.BOLD)
        + f": table {stack.table} at {stack.dynamodb_endpoint} (region {REGION})"
    )
    credentials = (
        f"AWS_ACCESS_KEY_ID={LOCAL_AWS_ENV['AWS_ACCESS_KEY_ID']} "
        f"AWS_SECRET_ACCESS_KEY={LOCAL_AWS_ENV['AWS_SECRET_ACCESS_KEY']} "
    )
    where = f"--table {stack.table} --endpoint-url {stack.dynamodb_endpoint} --region {REGION}"
    console.print(f"  {credentials}asynccfn journal list {where}")
    if not stack.journal_server_started:
        return
    console.print("Serving it until Ctrl-C.")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


# -- what it prints ---------------------------------------------------------------------------


def print_setup(stack: LocalStack, console: Console) -> None:
    config = stack.config
    dim = Tone.DIM
    console.print(
        f"{console.paint('resource ', dim)} {config.resource}  "
        f"({stack.resource_type}, logical id {stack.logical_id})"
    )
    console.print(
        f"{console.paint('journal  ', dim)} table {stack.table} on {stack.dynamodb_kind} at "
        f"{stack.dynamodb_endpoint}"
    )
    extra = ", hands over after every step" if config.handover_after_step else ""
    console.print(
        f"{console.paint('lambda   ', dim)} function {stack.function_name} at "
        f"{stack.lambda_endpoint}, timeout {config.lambda_timeout:g} s, awslambdaric workers"
        f"{extra}"
    )
    console.print(
        f"{console.paint('aws      ', dim)} moto's server at {stack.moto_endpoint} (S3 response "
        "URLs, and every AWS API the handler calls)"
    )
    if stack.kms_key is not None:
        console.print(
            f"{console.paint('kms      ', dim)} journal secrets encrypted under {stack.kms_key}"
        )


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the run through the clean-up, wherever it was started.

    SIGINT is installed, not inherited: a process started from a background job of a
    non-interactive shell (or by a supervisor that ignores it) begins with SIGINT ignored,
    and Python then leaves it ignored, so Ctrl-C would be lost and the servers left running.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.SIGTERM: signal.signal(signal.SIGTERM, interrupt),
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """A second Ctrl-C must not cut the clean-up short and leave workers running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- parsing and formatting -------------------------------------------------------------------


def _importable_from_cwd() -> None:
    """``MODULE`` is found in the working directory, as ``python -m`` would find it."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def _properties_option(text: str) -> tuple[str | None, dict[str, Any]]:
    """``JSON``, ``@FILE``, or either after ``ID=`` (a --resource's properties)."""
    found = keyed(text)
    if found is not None:
        return found[0], _json_object(found[1])
    return None, _json_object(text)


def _json_object(text: str) -> dict[str, Any]:
    """``JSON`` or ``@FILE``: a JSON object."""
    where = ""
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None
        where = f"{path}: "
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{where}not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"{where}must be a JSON object of properties, not {type(value).__name__}"
        )
    return value


def _request_type(text: str) -> RequestType:
    for request_type in RequestType:
        if text.lower() == request_type.value.lower():
            return request_type
    raise argparse.ArgumentTypeError(f"{text!r} is not Create, Update or Delete")


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value
