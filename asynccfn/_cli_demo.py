"""``asynccfn demo [EXAMPLE]``: the life of an example resource installed with asynccfn, run
on this machine with a short Lambda timeout so that its invocations hand over. The bundled demo
(``asynccfn/local/demo.py``) by default; any other example runs as the ``asynccfn local``
command it prints first (see :mod:`asynccfn.examples`).
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._cli_local import LOCAL_LAMBDA_TIMEOUT, drive, run_local, run_options
from .cli import EXIT_OK, EXIT_USAGE, Console, Tone

if TYPE_CHECKING:
    from .examples import Example
    from .local.stack import LocalStack, OperationRun

DEMO_RESOURCE = "asynccfn.local.demo:demo"
DEMO_LAMBDA_TIMEOUT = 5.0
DEMO_NAME = "reports"  # asynccfn demo's default: the demo in asynccfn/local/demo.py
DEMO_SUMMARY = (
    "an S3 bucket of reports rendered in steps, more than one invocation has time for; the "
    "Update renders the reports added and removes those dropped"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .examples import EXAMPLES

    names = [DEMO_NAME, *EXAMPLES]
    demo = subparsers.add_parser(
        "demo",
        help="run an example resource's whole life, with hand-overs (--list names them)",
        description="Run an example resource's whole life on this machine with a "
        f"{DEMO_LAMBDA_TIMEOUT:g}-second Lambda timeout, so that its invocations hand over. "
        f"The examples are installed with asynccfn: {', '.join(names)}; --list says what "
        f"each is. Each but {DEMO_NAME} is `asynccfn local` with the example's properties, "
        "a command it prints first.",
    )
    demo.add_argument(
        "example",
        nargs="?",
        default=DEMO_NAME,
        choices=names,
        metavar="EXAMPLE",
        help=f"which one: {', '.join(names)} (default: {DEMO_NAME})",
    )
    demo.add_argument(
        "--list",
        action="store_true",
        help="say what each example is, with its resource, and exit",
    )
    run_options(demo, lambda_timeout=DEMO_LAMBDA_TIMEOUT)
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace, console: Console) -> int:
    from .examples import EXAMPLES

    if args.list:
        return _list_examples(console)
    if args.example in EXAMPLES:
        return _run_example(EXAMPLES[args.example], args, console)
    return _run_reports_demo(args, console)


def _run_reports_demo(args: argparse.Namespace, console: Console) -> int:
    from .local import demo
    from .local.stack import StackConfig

    config = StackConfig(
        resource=DEMO_RESOURCE,
        lambda_timeout=args.lambda_timeout,
        dynamodb=args.dynamodb,
        table=args.table,
        environment=dict(args.env),
        handover_after_step=args.handover_every_step,
        stack_name="asynccfn-demo",
        keep_table=args.keep,
        kms_key=args.kms_key,
        raw_properties=args.raw_properties,
    )
    console.print(
        console.paint("asynccfn demo", Tone.BOLD)
        + f": the life of the resource in {demo.__file__}, with a "
        f"{args.lambda_timeout:g}-second Lambda timeout"
    )

    def plan(stack: LocalStack) -> list[OperationRun]:
        return stack.lifecycle(demo.CREATE_PROPERTIES, demo.UPDATE_PROPERTIES, replay=args.replay)

    return drive(config, plan, console, keep=args.keep)


def _run_example(example: Example, args: argparse.Namespace, console: Console) -> int:
    """``asynccfn local`` with the example's arguments, printed first: what runs is that
    command line, parsed by ``asynccfn local``'s own parser."""
    from .cli import build_parser

    argv = example_arguments(example, args)
    spec = importlib.util.find_spec(example.resource.partition(":")[0])
    where = spec.origin if spec is not None else example.resource
    console.print(
        console.paint(f"asynccfn demo {example.name}", Tone.BOLD)
        + f": the life of the resource in {where}, run as"
    )
    console.print("  asynccfn local " + shlex.join(argv))
    try:
        local = build_parser().parse_args(["local", *argv])
    except SystemExit as exc:  # said on stderr already (a property file missing, say)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run_local(local, console)


def example_arguments(example: Example, args: argparse.Namespace) -> list[str]:
    """The arguments of ``asynccfn local`` that run ``example`` with ``asynccfn demo``'s run
    options ``args``: its resource and property files, then each run option whose value is
    not ``asynccfn local``'s default, spelled as on a command line."""
    argv = [example.resource, "--properties", f"@{example.properties}"]
    if example.update_properties is not None:
        argv += ["--update-properties", f"@{example.update_properties}"]
    if example.handover_every_step:
        argv.append("--handover-every-step")
    local_defaults = argparse.ArgumentParser()
    for action in run_options(local_defaults, lambda_timeout=LOCAL_LAMBDA_TIMEOUT):
        option, value = action.option_strings[0], getattr(args, action.dest)
        if value != action.default and option not in argv:
            argv += _spelled(option, value)
    return argv


def _spelled(option: str, value: Any) -> list[str]:
    """``option`` given ``value`` on a command line: a flag alone, a repeated option once per
    item (``--env NAME=VALUE``), a number as typed (``5``, not ``5.0``)."""
    if value is True:
        return [option]
    if isinstance(value, list):
        return [word for item in value for word in _spelled(option, item)]
    if isinstance(value, tuple):
        return [option, "=".join(value)]
    if isinstance(value, float):
        return [option, str(value).removesuffix(".0")]
    return [option, str(value)]


def _list_examples(console: Console) -> int:
    from . import examples
    from .examples import EXAMPLES

    listed = [(DEMO_NAME, DEMO_RESOURCE, DEMO_SUMMARY + " (the default)")]
    listed += [(e.name, e.resource, e.summary) for e in EXAMPLES.values()]
    width = max(len(name) for name, _, _ in listed)
    for name, resource, summary in listed:
        console.print(f"{console.paint(name.ljust(width), Tone.BOLD)}  {resource}")
        for line in textwrap.wrap(summary, width=88 - width):
            console.print(" " * (width + 2) + console.paint(line, Tone.DIM))
    folder = Path(examples.__file__).parent
    console.print()
    console.print("asynccfn demo EXAMPLE runs one, and prints the asynccfn local command it is.")
    console.print(f"Their code and properties: {folder}")
    console.print(f"  ({DEMO_NAME}: {folder.parent / 'local' / 'demo.py'})")
    return EXIT_OK
