"""``asynccfn package MODULE[:RESOURCE] -o provider.zip``: the Lambda zip of a resource.

The zip holds the user's code (MODULE's top-level package or module), asynccfn's runtime
(without its local runner, CLI, testing helpers and examples, which the function never
imports), the runtime's dependencies as Lambda's platform wheels, and, when MODULE:RESOURCE
names a Resource rather than a handler, the entry module ``asynccfn_handler`` that makes the
handler with ``lambda_entry``. botocore's service data is cut to the services the function uses:
DynamoDB (the journal), Lambda (the hand-over), STS, those of the handler's clients and
``ctx.call`` actions, and any ``--keep-service``.

Dependencies come from this environment when ``--python`` and ``--arch`` are this
interpreter's on Linux (the installed distributions are the platform's own); otherwise from
``pip install --target --platform manylinux2014_<arch> --only-binary=:all: --python-version
--implementation cp``, no Docker needed (``--plan`` prints that command without running it).
The size of each part is printed; a zip that would unpack past Lambda's 250 MB is refused.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cli import EXIT_OK, CliError, Console, human_duration

UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda's limit on a function's unzipped code
RUNTIME_SERVICES = frozenset({"dynamodb", "lambda", "sts"})
# What the function never imports: the local runner, the command line, the test helpers, the
# examples (an example that is the resource is copied as the user's code, as the demo is).
_LEFT_OUT = ("local", "examples", "cli.py", "testing.py", "py.typed")
_MACHINES = {"x86_64": ("x86_64", "amd64"), "arm64": ("aarch64", "arm64")}


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """The Lambda runtime and architecture a package is built for."""

    python: str
    arch: str

    @property
    def platform_tag(self) -> str:
        return "manylinux2014_" + ("x86_64" if self.arch == "x86_64" else "aarch64")

    def compiles_here(self) -> bool:
        """Whether this interpreter writes the bytecode the target's Python reads (bytecode
        depends on the Python version, not on the architecture)."""
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        return sys.implementation.name == "cpython" and here == self.python

    def is_running_interpreter(self) -> bool:
        """Whether this interpreter's installed wheels are the target's own."""
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        machine = platform.machine().lower()
        return (
            sys.platform == "linux"
            and sys.implementation.name == "cpython"
            and here == self.python
            and machine in _MACHINES[self.arch]
        )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``package``."""
    from ._cli_policy import ARCHITECTURES, RUNTIMES

    package = subparsers.add_parser(
        "package",
        help="build the Lambda zip of a resource: its code, asynccfn's runtime, dependencies",
        description="Build the Lambda zip of a resource for a runtime and architecture: the "
        "code, asynccfn's runtime and its dependencies as Lambda's platform wheels, botocore's "
        "data cut to the services the function uses.",
    )
    package.add_argument("spec", metavar="MODULE:RESOURCE")
    package.add_argument("-o", "--output", default="provider.zip", metavar="ZIP")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    package.add_argument("--python", choices=RUNTIMES, default=here if here in RUNTIMES else "3.11")
    package.add_argument("--arch", choices=ARCHITECTURES, default=_default_arch())
    package.add_argument(
        "--keep-service",
        action="append",
        default=[],
        metavar="SERVICE",
        help="keep botocore's data of this service too (e.g. kms for KmsCodec); repeatable",
    )
    package.add_argument(
        "--with",
        dest="extra_requirements",
        action="append",
        default=[],
        metavar="REQUIREMENT",
        help="a distribution the function needs that its module does not import when loaded "
        "(e.g. one imported inside a handler); repeatable",
    )
    package.add_argument(
        "--pip", action="store_true", help="download the wheels even when this environment fits"
    )
    package.add_argument(
        "--plan", action="store_true", help="print the pip command that would run, and stop"
    )
    package.set_defaults(run=run_package)


def _default_arch() -> str:
    machine = platform.machine().lower()
    return next((arch for arch, names in _MACHINES.items() if machine in names), "x86_64")


def run_package(args: argparse.Namespace, console: Console) -> int:
    import time

    from ._cli_policy import entry_source, handler_name, load_deployable
    from ._policy import analyse

    target = Target(python=args.python, arch=args.arch)
    from_environment = target.is_running_interpreter() and not args.pip
    module = args.spec.partition(":")[0]
    resource = load_deployable(args.spec)
    # What the user's code imports, its function imports on Lambda: typed properties'
    # msgspec or pydantic, a client library. KmsCodec imports cryptography when it is used.
    files = [source for source, _ in user_code(module)]
    needed = imported_requirements(files, own=module.split(".")[0])
    if _has_kms_codec(args.spec):
        needed.append(_pinned("cryptography"))
    requirements = _merged(runtime_requirements(), needed, args.extra_requirements)
    if args.plan:
        if from_environment:
            console.print("copy from this environment: " + " ".join(requirements))
        else:
            console.print(" ".join(pip_command(target, requirements, "TARGET")))
        return EXIT_OK
    started = time.monotonic()
    services = set(RUNTIME_SERVICES | set(args.keep_service))
    analysis = analyse(resource)
    services |= analysis.services | {_botocore_name(a.split(":")[0]) for a in analysis.actions}
    with tempfile.TemporaryDirectory(prefix="asynccfn-package-") as staging:
        root = Path(staging)
        parts: dict[str, int] = {}
        if from_environment:
            for dist in installed_closure(requirements):
                parts[dist.metadata["Name"]] = _copy_distribution(dist, root)
        else:
            _pip(target, requirements, root)
            parts["dependencies"] = _size(root)
        parts["botocore data removed"] = -trim_botocore(root, services)
        parts["asynccfn"] = copy_asynccfn(root)
        parts["your code"] = copy_user_code(module, root)
        entry = entry_source(args.spec)
        if entry is not None:
            (root / f"{handler_name(args.spec).split('.')[0]}.py").write_text(entry)
        if target.compiles_here():
            parts["bytecode"] = compile_tree(root)
        else:
            console.note(
                f"no bytecode: this interpreter cannot compile for python{target.python}, so "
                "each cold start compiles the modules it imports"
            )
        total = _size(root)
        _report(console, parts, total)
        if total > UNZIPPED_LIMIT:
            raise CliError(
                f"the package unzips to {_mb(total)}, past Lambda's {_mb(UNZIPPED_LIMIT)}: "
                "drop dependencies, or deploy it as a container image"
            )
        written = write_zip(root, Path(args.output))
    console.print(
        f"wrote {args.output}: {_mb(written)} zipped, {_mb(total)} unzipped, for python"
        f"{target.python} {target.arch}, handler {handler_name(args.spec)} "
        f"({human_duration(time.monotonic() - started)})"
    )
    return EXIT_OK


def _requirement_class() -> Any:
    """packaging's Requirement (a dependency of the ``local`` extra, not of the runtime).

    Raises:
        CliError: packaging is not installed.
    """
    try:
        from packaging.requirements import Requirement
    except ImportError:
        raise CliError(
            "asynccfn package needs the 'packaging' distribution: pip install 'asynccfn[local]'"
        ) from None
    return Requirement


def runtime_requirements() -> list[str]:
    """asynccfn's own requirements, without extras (what the function needs).

    Raises:
        CliError: as :func:`_requirement_class`.
    """
    Requirement = _requirement_class()

    found = []
    for text in importlib.metadata.requires("asynccfn") or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            found.append(str(requirement))
    return found


def _pinned(distribution: str) -> str:
    try:
        return f"{distribution}=={importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return distribution


def _merged(*groups: Iterable[str]) -> list[str]:
    """The requirements of every group, the first of each distribution kept."""
    from packaging.utils import canonicalize_name

    Requirement = _requirement_class()
    seen: dict[str, str] = {}
    for group in groups:
        for text in group:
            seen.setdefault(canonicalize_name(Requirement(text).name), text)
    return list(seen.values())


def _has_kms_codec(spec: str) -> bool:
    """The module's own ``lambda_entry`` encrypts with KmsCodec (cryptography, lazily)."""
    from ._kms import KmsCodec
    from .local._loader import own_config

    config = own_config(spec)
    return config is not None and isinstance(config.secrets.codec, KmsCodec)


def installed_closure(requirements: Iterable[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions ``requirements`` need, transitively.

    Raises:
        CliError: one is not installed here.
    """
    Requirement = _requirement_class()
    from packaging.utils import canonicalize_name

    pending = [Requirement(r) for r in requirements]
    found: dict[str, importlib.metadata.Distribution] = {}
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        try:
            dist = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            raise CliError(f"{requirement.name} is not installed here: try --pip") from None
        found[name] = dist
        for text in dist.requires or []:
            nested = Requirement(text)
            extras = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if nested.marker is None or any(nested.marker.evaluate(e) for e in extras):
                pending.append(nested)
    return [found[name] for name in sorted(found)]


def pip_command(target: Target, requirements: Iterable[str], into: str) -> list[str]:
    """The pip command that downloads Lambda's wheels for ``target`` into ``into``."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--target",
        into,
        "--platform",
        target.platform_tag,
        "--only-binary=:all:",
        "--python-version",
        target.python,
        "--implementation",
        "cp",
        *requirements,
    ]


def _pip(target: Target, requirements: list[str], root: Path) -> None:
    """Download and unpack Lambda's wheels into ``root``.

    Raises:
        CliError: pip is not installed here, or it failed.
    """
    if importlib.util.find_spec("pip") is None:
        raise CliError(
            f"pip is needed to fetch python{target.python} {target.arch} wheels and is not "
            "installed here (python -m ensurepip, or uv pip install pip)"
        )
    command = pip_command(target, requirements, str(root))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CliError(f"pip failed: {done.stderr.strip().splitlines()[-1:]}")
    shutil.rmtree(root / "bin", ignore_errors=True)
    drop_test_suites(root)


def drop_test_suites(root: Path) -> None:
    """Remove the installed packages' own tests (what :func:`_test_suite` leaves out of a
    copy) from ``root``."""
    for suite in root.glob("*/tests"):
        if (suite.parent / "__init__.py").is_file():
            shutil.rmtree(suite)


def _copy_distribution(dist: importlib.metadata.Distribution, root: Path) -> int:
    """Copy an installed distribution's files (not its scripts, bytecode or tests); its size."""
    size = 0
    for file in dist.files or []:
        relative = Path(str(file))
        if ".." in relative.parts or _skipped(relative) or _test_suite(relative):
            continue
        source = Path(str(dist.locate_file(file)))
        if not source.is_file():
            continue
        destination = root / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
        size += destination.stat().st_size
    return size


def _skipped(relative: Path) -> bool:
    return "__pycache__" in relative.parts or relative.suffix == ".pyc"


def _test_suite(relative: Path) -> bool:
    """Whether a distribution's file is part of its package's own tests (such as
    ``aioitertools/tests/``), which nothing imports at run time."""
    return len(relative.parts) > 2 and relative.parts[1] == "tests"


def copy_asynccfn(root: Path) -> int:
    """Copy asynccfn's runtime modules (from wherever it is imported, an editable install
    too), leaving out what only runs on a developer's machine; the bytes copied."""
    source = Path(importlib.util.find_spec("asynccfn").origin or "").parent  # type: ignore[union-attr]
    destination = root / "asynccfn"
    shutil.rmtree(destination, ignore_errors=True)
    size = 0
    for path in _files(source):
        relative = path.relative_to(source)
        if relative.parts[0] in _LEFT_OUT or relative.name.startswith("_cli_"):
            continue
        size += _copy(path, destination / relative)
    return size


def copy_user_code(module: str, root: Path) -> int:
    """Copy the top-level package (or module) that holds ``module``; the bytes copied. A
    module inside asynccfn itself (the bundled demo, an example) is copied as a top-level module
    of its own name, since the package leaves out ``asynccfn.local`` and ``asynccfn.examples``.

    Raises:
        CliError: the module cannot be found.
    """
    return sum(_copy(source, root / shipped) for source, shipped in user_code(module))


def user_code(module: str) -> list[tuple[Path, Path]]:
    """The files of the user's code that holds ``module``: (source, path in the zip).

    Raises:
        CliError: the module cannot be found.
    """
    from ._cli_policy import packaged_module

    top = module.split(".")[0]
    if top == "asynccfn":
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise CliError(f"cannot find module {module!r}")
        return [(Path(spec.origin), Path(f"{packaged_module(module)}.py"))]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        raise CliError(f"cannot find module {top!r}: run from the folder that holds it")
    origin = Path(spec.origin)
    if origin.name != "__init__.py":
        return [(origin, Path(origin.name))]
    return [(path, top / path.relative_to(origin.parent)) for path in _files(origin.parent)]


def imported_requirements(files: Iterable[Path], *, own: str) -> list[str]:
    """The installed distributions, pinned to their versions here, of the top-level modules
    the user's code imports (anywhere in it: inside a handler too), but the standard
    library's, asynccfn's and the user's own (``own``)."""
    import ast

    tops: set[str] = set()
    for path in files:
        if path.suffix != ".py":
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError):
            continue  # importing the module already said so, if it is imported at all
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops.add(node.module.partition(".")[0])
    tops -= set(sys.stdlib_module_names) | {"asynccfn", own, "__future__"}
    owners = importlib.metadata.packages_distributions()
    return sorted({_pinned(dist) for top in tops for dist in owners.get(top, ())})


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not _skipped(path.relative_to(folder)):
            yield path


def _copy(source: Path, destination: Path) -> int:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)
    return destination.stat().st_size


def trim_botocore(root: Path, services: set[str]) -> int:
    """Remove botocore's data of every service but ``services``; the bytes removed."""
    data = root / "botocore" / "data"
    removed = 0
    if not data.is_dir():
        return 0
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in services:
            removed += _size(entry)
            shutil.rmtree(entry)
    return removed


def _botocore_name(prefix: str) -> str:
    from ._policy import _service_of_prefix

    return _service_of_prefix(prefix)


def compile_tree(root: Path) -> int:
    """Compile every module under ``root`` to bytecode; the bytes added.

    Lambda unpacks the zip read-only: without bytecode in it, every cold start compiles each
    module it imports, and cannot keep the result. Hash-based bytecode that is not checked
    against its source stays valid whatever dates the zip gives the files.
    """
    import compileall
    import py_compile

    before = _size(root)
    compileall.compile_dir(
        str(root),
        quiet=2,
        workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    return _size(root) - before


def write_zip(root: Path, output: Path) -> int:
    """Zip ``root`` (files in a stable order, dates kept); the zip's size."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
    return output.stat().st_size


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _report(console: Console, parts: dict[str, int], total: int) -> None:
    """The size of each part, largest first, and the whole against Lambda's limit."""
    width = max(len(name) for name in parts)
    for name, size in sorted(parts.items(), key=lambda item: -abs(item[1])):
        console.print(f"  {name:<{width}}  {_mb(size):>10}")
    share = 100 * total / UNZIPPED_LIMIT
    console.print(f"  {'unzipped':<{width}}  {_mb(total):>10}  ({share:.0f}% of Lambda's 250 MB)")
