"""``asynccfn policy`` and ``asynccfn template``: the IAM a resource's handlers need, and the
whole provider stack with it (DESIGN.md §5).

``policy MODULE:RESOURCE`` prints the policy document :mod:`asynccfn._policy` derives from the
code (and, with ``--from-journal TABLE``, from what its runs journaled); how each action was
found, and each call it could not read, go to stderr. ``template MODULE:RESOURCE`` prints the
stack of ``table template`` with that policy added, the function's Code the local zip
``asynccfn package`` builds, and its handler, runtime and architecture; it recommends the
custom resources' ServiceTimeout on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import TYPE_CHECKING, Any

from .cli import EXIT_OK, CliError, Console, aws_options, open_journal

if TYPE_CHECKING:
    from ._policy import Analysis

ENTRY_MODULE = "asynccfn_handler"
"""The module ``asynccfn package`` writes when MODULE:RESOURCE names a Resource, not a
handler: it makes the handler with ``lambda_entry``."""

DEFAULT_OPERATION_TIMEOUT = 3600.0  # lambda_entry's timeout= default
SERVICE_TIMEOUT_MAX = 3600  # CloudFormation's maximum (and default) ServiceTimeout
RUNTIMES = ("3.11", "3.12", "3.13")
ARCHITECTURES = ("x86_64", "arm64")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``policy`` and ``template``."""
    policy = subparsers.add_parser(
        "policy",
        parents=[_journal_options()],
        help="print the IAM policy a resource's handlers need, from their ctx.call actions",
        description="Print the IAM policy document a resource's handlers need: the actions of "
        "its ctx.call steps and client calls, read from its source, and (--from-journal) the "
        "call steps its runs journaled. Calls whose action cannot be read are warned about.",
    )
    policy.add_argument("spec", metavar="MODULE:RESOURCE")
    policy.set_defaults(run=run_policy)

    template = subparsers.add_parser(
        "template",
        parents=[_journal_options()],
        help="print the provider stack for a resource: function, journal, role with its policy",
        description="Print the CloudFormation template of the provider: the journal table, "
        "the function (Code: the zip `asynccfn package` builds), its role with the journal's, "
        "the self-invoke's and the handler's own IAM, and its EventInvokeConfig.",
    )
    template.add_argument("spec", metavar="MODULE:RESOURCE")
    template.add_argument(
        "--code",
        default="provider.zip",
        metavar="PATH",
        help="the zip of `asynccfn package` (default provider.zip); "
        "`aws cloudformation package` uploads it",
    )
    template.add_argument("--python", choices=RUNTIMES, default="3.11", help="Lambda runtime")
    template.add_argument("--arch", choices=ARCHITECTURES, default="x86_64", help="architecture")
    template.add_argument(
        "--format", choices=("yaml", "json"), default="yaml", help="output format (yaml)"
    )
    template.add_argument(
        "--kms-key", metavar="ARN", help="the KMS key of the journal's payload codec"
    )
    template.set_defaults(run=run_template)


def _journal_options() -> argparse.ArgumentParser:
    parent = aws_options(table=False)
    parent.add_argument(
        "--from-journal",
        metavar="TABLE",
        help="add the call steps journaled for this resource type in TABLE "
        "(asynccfn local --keep, asynccfn.testing, or production)",
    )
    return parent


def run_policy(args: argparse.Namespace, console: Console) -> int:
    analysis = analysis_of(args, console)
    from ._policy import statements

    console.print(
        json.dumps({"Version": "2012-10-17", "Statement": statements(analysis.actions)}, indent=2)
    )
    if not analysis.actions:
        console.note("asynccfn: no AWS call found: the handlers need no IAM of their own")
    return EXIT_OK


def run_template(args: argparse.Namespace, console: Console) -> int:
    from ._cli_table import FunctionSpec, _kms_key_arn, _long_form, template, to_yaml
    from ._policy import statements

    load_deployable(args.spec)
    kms_key = None
    if args.kms_key is not None:
        try:
            kms_key = _kms_key_arn(args.kms_key)
        except argparse.ArgumentTypeError as exc:
            raise CliError(str(exc), code=2) from None
    analysis = analysis_of(args, console)
    spec = FunctionSpec(
        code=args.code,
        handler=handler_name(args.spec),
        runtime=f"python{args.python}",
        architecture=args.arch,
        statements=tuple(statements(analysis.actions)),
    )
    document = template(kms_key=kms_key, function=spec)
    if args.format == "json":
        console.print(json.dumps(_long_form(document), indent=2))
    else:
        console.print(to_yaml(document, header=_packaged_header(args.spec, args.code)))
    seconds = service_timeout(args.spec)
    console.note(
        f"asynccfn: recommended ServiceTimeout: {seconds} on each custom resource of this "
        "provider: the operation's timeout (lambda_entry(timeout=...)), after which the "
        "function answers FAILED; CloudFormation waits no longer for an answer that never "
        f"comes (unset, it waits {SERVICE_TIMEOUT_MAX} s)"
    )
    return EXIT_OK


def _packaged_header(spec: str, code: str) -> str:
    return (
        f"# The asynccfn provider of {spec}: the journal table, the function, its role with a\n"
        "# least-privilege policy (the handler's own calls included), and its asynchronous\n"
        "# invocation settings. Build the code with `asynccfn package`, then deploy with e.g.\n"
        f"#   aws cloudformation package --template-file provider.yaml --s3-bucket BUCKET \\\n"
        f"#     --output-template-file packaged.yaml      # uploads {code}\n"
        "#   aws cloudformation deploy --template-file packaged.yaml --stack-name my-provider "
        "\\\n#     --capabilities CAPABILITY_IAM\n"
        "# Custom resources use the FunctionArn output as their ServiceToken."
    )


def analysis_of(args: argparse.Namespace, console: Console) -> Analysis:
    """The analysis of ``args.spec``, with ``--from-journal``'s findings; how each action was
    found and each warning go to stderr.

    Raises:
        ResourceSpecError: the spec names no importable Resource.
        CliError: a handler's source cannot be read.
    """
    from ._policy import analyse, journal_actions

    resource = _load(args.spec)
    try:
        analysis = analyse(resource)
    except (OSError, SyntaxError) as exc:
        raise CliError(f"cannot read the handlers' source: {exc}") from None
    if args.from_journal:
        args.table = args.from_journal
        analysis = analysis.with_findings(
            journal_actions(open_journal(args), resource.resource_type)
        )
    seen: set[tuple[str, str]] = set()
    for finding in sorted(analysis.findings, key=lambda f: (f.action, f.where)):
        if (finding.action, finding.how) in seen:
            continue
        seen.add((finding.action, finding.how))
        console.note(f"  {finding.action:<32} {finding.how:<14} {_relative(finding.where)}")
    for unknown in analysis.unknown:
        console.note(
            f"asynccfn: warning: {_relative(unknown.where)}: {unknown.what}; its action is not "
            "in the policy (run it locally and add --from-journal, or grant it yourself)"
        )
    return analysis


def handler_name(spec: str) -> str:
    """The Lambda handler setting for ``spec``: ``MODULE.ATTR`` when it names a handler made
    with ``lambda_entry`` at a module's top level, else the entry module ``asynccfn package``
    writes for a Resource.

    Raises:
        ResourceSpecError: the spec names no importable Resource.
    """
    from ._entry import LambdaHandler
    from .local._loader import _load as load_any

    _on_path()
    module, _, attr = spec.strip().partition(":")
    if isinstance(load_any(spec), LambdaHandler) and "." not in attr:
        return f"{module}.{attr}"
    return f"{ENTRY_MODULE}.handler"


def entry_source(spec: str) -> str | None:
    """The source of the entry module for ``spec``, or None when ``spec`` names a handler the
    module itself made (see :func:`handler_name`).

    Raises:
        ResourceSpecError: as :func:`handler_name`.
    """
    if not handler_name(spec).startswith(ENTRY_MODULE + "."):
        return None
    module, _, attr = spec.strip().partition(":")
    return (
        '"""The Lambda handler of the packaged resource (written by asynccfn package)."""\n\n'
        "import asynccfn\n"
        f"import {packaged_module(module)} as _module\n\n"
        f"handler = asynccfn.lambda_entry(_module.{attr})\n"
    )


def packaged_module(module: str) -> str:
    """The name ``module`` has in the package: its own, except a module inside asynccfn
    (the bundled demo, an example), which is packaged as a top-level module of its last name
    because the package leaves out ``asynccfn.local`` and ``asynccfn.examples``."""
    return module.rsplit(".", 1)[-1] if module.split(".")[0] == "asynccfn" else module


def service_timeout(spec: str) -> int:
    """The ServiceTimeout to recommend: the operation's timeout, at most CloudFormation's."""
    from ._entry import LambdaHandler
    from .local._loader import _load as load_any

    found = load_any(spec)
    timeout = (
        found.runtime.config.timeout
        if isinstance(found, LambdaHandler)
        else DEFAULT_OPERATION_TIMEOUT
    )
    return min(SERVICE_TIMEOUT_MAX, math.ceil(timeout))


def _load(spec: str) -> Any:
    from .local._loader import load_resource

    _on_path()
    return load_resource(spec)


def load_deployable(spec: str) -> Any:
    """The resource (or Provider) of ``spec``, refused when a request type has no answer: on
    Lambda, its function would refuse every request (see ``lambda_entry``).

    Raises:
        ResourceSpecError: as :func:`_load`.
        CliError: a request type has no handler and no declared answer.
    """
    resource = _load(spec)
    unanswered = resource.unanswered()
    if unanswered:
        raise CliError(f"{spec}: " + "; ".join(unanswered))
    return resource


def _on_path() -> None:
    """Import MODULE from the working directory, as ``asynccfn local`` does."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def _relative(where: str) -> str:
    cwd = os.getcwd() + os.sep
    return where[len(cwd) :] if where.startswith(cwd) else where
