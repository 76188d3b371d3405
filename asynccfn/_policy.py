"""The IAM actions a resource's handlers need, read from its code and from its journals.

``ctx.call(action, method, ...)`` names each AWS call by its action, so the policy a resource
needs is mostly in its source. :func:`analyse` parses the modules that define the resource's
handlers (``ast``, nothing is run) and finds:

- every ``ctx.call("service:Action", ...)`` whose action is a string literal;
- every direct call of a client method (``s3.put_object(...)``, inside a step, say) whose
  name is an operation of a service the module asks ``ctx.client("service")`` for, and each
  ``get_waiter("name")`` / ``get_paginator("name")`` of such a client, by the operation it
  calls; botocore's service models say which names are operations;
- a warning for each ``ctx.call`` or ``ctx.client`` whose argument is not a literal.

:func:`journal_actions` adds what the journal recorded: the names of the ``call`` steps of a
resource type's operations, as ``asynccfn local``, ``asynccfn.testing`` or production wrote
them. :func:`statements` turns the actions into IAM policy statements, one per service,
mapping the API operations whose IAM action has another name (``s3:ListObjectsV2`` is
``s3:ListBucket``). Resources are ``*``: the code names the calls, not the ARNs they reach.
"""

from __future__ import annotations

import ast
import fnmatch
import inspect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._resource import Resource
    from .journal.query import Journal

__all__ = [
    "Analysis",
    "Finding",
    "Unknown",
    "allows",
    "analyse",
    "iam_actions",
    "journal_actions",
    "statements",
]

ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")

# API operations whose IAM action is named otherwise (the IAM service authorization
# reference); every other operation is authorized by the action of its own name.
_IAM_NAMES: Mapping[str, tuple[str, ...]] = {
    "s3:ListObjectsV2": ("s3:ListBucket",),
    "s3:ListObjects": ("s3:ListBucket",),
    "s3:HeadBucket": ("s3:ListBucket",),
    "s3:ListObjectVersions": ("s3:ListBucketVersions",),
    "s3:ListBuckets": ("s3:ListAllMyBuckets",),
    "s3:DeleteObjects": ("s3:DeleteObject",),
    "s3:HeadObject": ("s3:GetObject",),
    "s3:CopyObject": ("s3:GetObject", "s3:PutObject"),
    "s3:CreateMultipartUpload": ("s3:PutObject",),
    "s3:UploadPart": ("s3:PutObject",),
    "s3:CompleteMultipartUpload": ("s3:PutObject",),
    "s3:UploadPartCopy": ("s3:GetObject", "s3:PutObject"),
    "s3:ListParts": ("s3:ListMultipartUploadParts",),
    "s3:PutBucketLifecycleConfiguration": ("s3:PutLifecycleConfiguration",),
    "s3:GetBucketLifecycleConfiguration": ("s3:GetLifecycleConfiguration",),
    "lambda:Invoke": ("lambda:InvokeFunction",),
    "lambda:InvokeAsync": ("lambda:InvokeFunction",),
}
# Client names a module may use for a service whose botocore name differs from its prefix.
_PREFIX_OF_SERVICE: Mapping[str, str] = {
    "stepfunctions": "states",
    "elbv2": "elasticloadbalancing",
    "elb": "elasticloadbalancing",
    "opensearch": "es",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """An action the code needs: ``how`` it was found (``ctx.call``, ``client method``,
    ``waiter``, ``paginator``, ``journal``) and ``where`` (``file:line`` or the journal)."""

    action: str
    how: str
    where: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Unknown:
    """A call whose action could not be determined from the code, and why."""

    where: str
    what: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Analysis:
    """What :func:`analyse` found: the actions, the services the code makes clients for, and
    the calls it could not read."""

    findings: tuple[Finding, ...]
    services: frozenset[str]
    unknown: tuple[Unknown, ...]
    files: tuple[str, ...]

    @property
    def actions(self) -> tuple[str, ...]:
        """The IAM actions, sorted, each API operation mapped to its IAM name(s)."""
        return tuple(sorted({a for f in self.findings for a in iam_actions(f.action)}))

    def with_findings(self, more: Iterable[Finding]) -> Analysis:
        """This analysis with ``more`` findings (from a journal) added."""
        return Analysis(
            findings=(*self.findings, *more),
            services=self.services,
            unknown=self.unknown,
            files=self.files,
        )


def iam_actions(action: str) -> tuple[str, ...]:
    """The IAM actions that authorize ``action`` (an API operation in ``service:Operation``
    form, or already an IAM action). Raises nothing."""
    return _IAM_NAMES.get(action, (action,))


def analyse(resource: Resource) -> Analysis:
    """Read the modules defining ``resource``'s handlers for the AWS calls they make.

    Raises:
        OSError: a module's source cannot be read.
        SyntaxError: a module's source does not parse.
    """
    files: list[str] = []
    for handler in resource._handlers.values():
        path = inspect.getsourcefile(inspect.unwrap(handler))
        if path and path not in files:
            files.append(path)
    findings: list[Finding] = []
    unknown: list[Unknown] = []
    services: set[str] = set()
    trees = []
    for path in files:
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read(), filename=path)
        trees.append((path, tree))
        services |= _client_services(tree, path, unknown)
    operations = _operations(frozenset(services))
    for path, tree in trees:
        findings += _calls(tree, path, operations, unknown)
    return Analysis(
        findings=tuple(findings),
        services=frozenset(services),
        unknown=tuple(unknown),
        files=tuple(files),
    )


def _where(path: str, node: ast.AST) -> str:
    return f"{path}:{getattr(node, 'lineno', 0)}"


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _method(node: ast.Call) -> str | None:
    return node.func.attr if isinstance(node.func, ast.Attribute) else None


def _first_argument(node: ast.Call, keyword: str) -> ast.expr | None:
    if node.args:
        return node.args[0]
    return next((k.value for k in node.keywords if k.arg == keyword), None)


def _client_services(tree: ast.AST, path: str, unknown: list[Unknown]) -> set[str]:
    """The services of every ``<x>.client("service")`` in ``tree``."""
    services: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _method(node) == "client"):
            continue
        argument = _first_argument(node, "service")
        name = _literal(argument)
        if name is not None:
            services.add(name)
        elif argument is not None:
            unknown.append(
                Unknown(where=_where(path, node), what="a client whose service is not a literal")
            )
    return services


def _calls(
    tree: ast.AST, path: str, operations: Mapping[str, Sequence[str]], unknown: list[Unknown]
) -> list[Finding]:
    found: list[Finding] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        method = _method(node)
        if method == "call" and (len(node.args) >= 2 or _is_ctx(node)):
            argument = _first_argument(node, "action")
            action = _literal(argument)
            if action is not None and ACTION.match(action):
                found.append(Finding(action=action, how="ctx.call", where=_where(path, node)))
            else:
                what = "ctx.call whose action is not a literal 'service:Action'"
                unknown.append(Unknown(where=_where(path, node), what=what))
        elif method in ("get_waiter", "get_paginator"):
            name = _literal(_first_argument(node, "waiter_name"))
            kind = "waiter" if method == "get_waiter" else "paginator"
            hits = _waiter_or_paginator(kind, name, operations) if name else []
            found += [Finding(action=a, how=kind, where=_where(path, node)) for a in hits]
        elif method is not None and method in operations:
            found += [
                Finding(action=a, how="client method", where=_where(path, node))
                for a in operations[method]
            ]
    return found


def _is_ctx(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and (func.value.id == "ctx")
    )


def _prefix(service: str) -> str:
    return _PREFIX_OF_SERVICE.get(service, service)


@cache
def _operations(services: frozenset[str]) -> Mapping[str, Sequence[str]]:
    """``snake_case`` method name -> the ``service:Operation`` actions it may be, for the
    operations of ``services`` (botocore's models; an unknown service is skipped)."""
    from botocore.exceptions import UnknownServiceError

    result: dict[str, list[str]] = {}
    for service in sorted(services):
        try:
            model = _model(service, "service-2")
        except UnknownServiceError:
            continue
        for operation in model["operations"]:
            result.setdefault(_snake(operation), []).append(f"{_prefix(service)}:{operation}")
    return result


def _waiter_or_paginator(
    kind: str, name: str, operations: Mapping[str, Sequence[str]]
) -> list[str]:
    """The actions a waiter (by its snake_case name) or paginator (by its operation) calls."""
    if kind == "paginator":
        return list(operations.get(name, ()))
    found: list[str] = []
    services = {a.split(":", 1)[0] for actions in operations.values() for a in actions}
    for service in sorted(services):
        try:
            waiters = _model(_service_of_prefix(service), "waiters-2")["waiters"]
        except Exception:  # a service without waiters
            continue
        for waiter, config in waiters.items():
            if _snake(waiter) == name:
                found.append(f"{service}:{config['operation']}")
    return found


def _service_of_prefix(prefix: str) -> str:
    return next((s for s, p in _PREFIX_OF_SERVICE.items() if p == prefix), prefix)


@cache
def _model(service: str, kind: str) -> Any:
    from botocore.loaders import Loader

    return Loader().load_service_model(service, kind)


def _snake(name: str) -> str:
    from botocore import xform_name

    return str(xform_name(name))


def journal_actions(journal: Journal, resource_type: str | None) -> list[Finding]:
    """The actions of the ``call`` steps the journal recorded for operations on resources of
    ``resource_type`` (every operation when None).

    Raises:
        TableNotFound, JournalUnreachable, JournalError: DynamoDB failed.
    """
    from .journal.models import StepKind

    found: dict[str, Finding] = {}
    for op in journal.iter_operations():
        if resource_type is not None and op.resource_type != resource_type:
            continue
        for step in journal.get_operation(op.op_id).steps:
            if step.kind is StepKind.CALL and step.name not in found:
                where = f"journal {journal.table}, operation {op.short_id}"
                found[step.name] = Finding(action=step.name, how="journal", where=where)
    return list(found.values())


def statements(actions: Iterable[str]) -> list[dict[str, Any]]:
    """IAM policy statements allowing ``actions`` (IAM names), one per service, on every
    resource. Raises nothing."""
    by_service: dict[str, set[str]] = {}
    for action in actions:
        by_service.setdefault(action.split(":", 1)[0], set()).add(action)
    return [
        {
            "Sid": "Handler" + "".join(part.title() for part in re.split(r"[^a-z0-9]", service)),
            "Effect": "Allow",
            "Action": sorted(by_service[service]),
            "Resource": "*",
        }
        for service in sorted(by_service)
    ]


def allows(policy_statements: Iterable[Mapping[str, Any]], action: str) -> bool:
    """Whether an Allow statement among ``policy_statements`` names ``action`` (IAM action
    names are case-insensitive; ``*`` and ``?`` are wildcards). Raises nothing."""
    for statement in policy_statements:
        if statement.get("Effect") != "Allow":
            continue
        named = statement.get("Action", [])
        for pattern in [named] if isinstance(named, str) else named:
            if fnmatch.fnmatchcase(action.lower(), str(pattern).lower()):
                return True
    return False
