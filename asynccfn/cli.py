"""The ``asynccfn`` command.

Each subcommand lives in its own module, named in :data:`COMMANDS`, which provides::

    def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        parser = subparsers.add_parser("name", help="...")
        parser.set_defaults(run=run)          # run(args, console) -> exit code

A module that is not installed (an optional extra) is left out of ``--help`` and its command
is unknown. What the modules share is here: :class:`Console` (colour only on a terminal, and
never with ``NO_COLOR``), :class:`CliError` (one line on stderr, no traceback),
:func:`aws_options` and :func:`open_journal` (table, region and endpoint from options or the
AWS environment), and :func:`human_duration`.

Exit codes: 0 done, 1 error, 2 usage, 3 ``journal tail`` saw the operation end unsuccessfully,
130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from ._env import JOURNAL_TABLE_ENV
from ._errors import AsyncCfnError

if TYPE_CHECKING:
    from .journal.query import Journal

# The registration point: one module per subcommand (or group), each with register().
COMMANDS: tuple[str, ...] = (
    "asynccfn._cli_journal",
    "asynccfn._cli_table",
    "asynccfn._cli_local",
    "asynccfn._cli_demo",
    "asynccfn._cli_policy",
    "asynccfn._cli_doctor",
    "asynccfn._cli_package",
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNSUCCESSFUL = 3
EXIT_INTERRUPTED = 130

Run = Callable[[argparse.Namespace, "Console"], int]


class CliError(Exception):
    """A failure to report as one line on stderr with a non-zero exit code."""

    def __init__(self, message: str, *, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# -- output ---------------------------------------------------------------------------------

# What a terminal acts on instead of showing: C0 controls, DEL, C1 controls (0x9b is a CSI of
# its own), and the bidirectional controls that reorder what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_CONTROL_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# The only escape sequences the CLI writes itself: Console.paint's colours.
_PAINTED = re.compile("(\x1b\\[[0-9]{1,2}m)")

T = TypeVar("T")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` safe to print: every control character escaped as a terminal cannot act on
    it (``\\n``, ``\\x1b``, ``\\u202e``), so that text from the journal (an error message
    built from a property, an event's identifiers) cannot clear the screen, set the window
    title or reorder a line. The one helper for it; raises nothing."""
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable_json(document: Any) -> str:
    """``document`` as indented JSON whose strings hold no control character a terminal acts
    on: JSON escapes C0 itself, and C1 and bidirectional controls are escaped here too (as
    ``\\u0080``, still JSON). Raises TypeError/ValueError as ``json.dumps``."""
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    return _CONTROL_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def printable_fields(record: T) -> T:
    """A copy of a journal record (a frozen dataclass, or a tuple, list or mapping of them)
    with :func:`printable` applied to every string it holds, for the text views."""
    value: Any = record
    if isinstance(value, str):
        return printable(value)  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: printable_fields(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
        return dataclasses.replace(value, **changes)  # type: ignore[return-value]
    if isinstance(value, tuple | list):
        return type(value)(printable_fields(item) for item in value)  # type: ignore[return-value]
    if isinstance(value, Mapping):
        return {printable_fields(k): printable_fields(v) for k, v in value.items()}  # type: ignore[return-value]
    return record


class Tone(enum.Enum):
    """What a piece of text means, and so its colour on a terminal."""

    GOOD = "32"  # green
    BAD = "31"  # red
    BUSY = "36"  # cyan
    WARN = "33"  # yellow
    DIM = "2"
    BOLD = "1"


class ColorMode(enum.Enum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True, kw_only=True, slots=True)
class Console:
    """Where a command writes, and whether it may colour what it writes."""

    out: TextIO
    err: TextIO
    color: bool

    @classmethod
    def for_streams(
        cls,
        out: TextIO,
        err: TextIO,
        mode: ColorMode = ColorMode.AUTO,
        environ: dict[str, str] | os._Environ[str] = os.environ,
    ) -> Console:
        """Colour when asked to, or when ``out`` is a terminal and neither ``NO_COLOR`` is
        set nor ``TERM=dumb``. Raises nothing."""
        if mode is ColorMode.AUTO:
            tty = bool(getattr(out, "isatty", lambda: False)())
            color = tty and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"
        else:
            color = mode is ColorMode.ALWAYS
        return cls(out=out, err=err, color=color)

    def paint(self, text: str, tone: Tone | None) -> str:
        text = printable(text, keep_newlines=True)  # the only escapes are the colour's own
        if not self.color or tone is None or not text:
            return text
        return f"\x1b[{tone.value}m{text}\x1b[0m"

    def print(self, text: str = "") -> None:
        """Write a line; a control character in it is escaped (see :func:`printable`), the
        colours of :meth:`paint` aside."""
        print(_safe(text), file=self.out, flush=True)

    def note(self, text: str) -> None:
        """A remark for the person, not the output (stderr); escaped as :meth:`print`."""
        print(_safe(text), file=self.err, flush=True)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        """Aligned columns; a cell is text, or (text, tone). Numbers align right."""
        plain = [[_cell_text(c) for c in row] for row in rows]
        widths = [len(h) for h in headers]
        for row in plain:
            for i, text in enumerate(row):
                widths[i] = max(widths[i], len(text))
        right = [
            all(_numeric(row[i]) for row in plain) and bool(plain) for i in range(len(headers))
        ]
        self.print(
            self.paint(
                "  ".join(_pad(h, widths[i], right[i]) for i, h in enumerate(headers)).rstrip(),
                Tone.BOLD,
            )
        )
        for row, cells in zip(plain, rows, strict=True):
            shown = [
                self.paint(_pad(text, widths[i], right[i]), _cell_tone(cells[i]))
                for i, text in enumerate(row)
            ]
            self.print("  ".join(shown).rstrip())


Cell = str | tuple[str, "Tone | None"]


def _safe(text: str) -> str:
    """``text`` with its control characters escaped, the colour sequences paint wrote kept
    (the journal's own text was escaped before it was painted)."""
    parts = _PAINTED.split(text)
    return "".join(
        part if index % 2 else printable(part, keep_newlines=True)
        for index, part in enumerate(parts)
    )


def _cell_text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


def _cell_tone(cell: Cell) -> Tone | None:
    return None if isinstance(cell, str) else cell[1]


def _numeric(text: str) -> bool:
    return text.isdigit()


def _pad(text: str, width: int, right: bool) -> str:
    return text.rjust(width) if right else text.ljust(width)


def human_duration(seconds: float) -> str:
    """``0.35`` -> ``350 ms``, ``4.25`` -> ``4.2 s``, ``72`` -> ``1 m 12 s``,
    ``7500`` -> ``2 h 5 m``, ``100000`` -> ``1 d 3 h``. Raises nothing."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    for unit, size, sub_unit, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            return f"{whole // size} {unit} {(whole % size) // sub_size} {sub_unit}"
    return f"{whole // 60} m {whole % 60} s"


# -- AWS options ------------------------------------------------------------------------------


def aws_options(*, table: bool = True) -> argparse.ArgumentParser:
    """A parent parser with ``--region``, ``--endpoint-url`` and (``table=True``) ``--table``,
    for any subcommand that talks to the journal."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("AWS")
    if table:
        group.add_argument(
            "--table",
            metavar="NAME",
            help=f"the journal table (default: ${JOURNAL_TABLE_ENV})",
        )
    group.add_argument(
        "--region",
        metavar="REGION",
        help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, or the profile's)",
    )
    group.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="DynamoDB endpoint, e.g. DynamoDB Local (default: $AWS_ENDPOINT_URL_DYNAMODB)",
    )
    return parent


def resolve_region(args: argparse.Namespace) -> str:
    """The region from ``--region`` or the AWS environment.

    Raises:
        CliError: none is set.
    """
    from .journal.query import region_from_env

    region = getattr(args, "region", None) or region_from_env()
    if not region:
        raise CliError("no AWS region: pass --region or set AWS_REGION")
    return str(region)


def resolve_endpoint(args: argparse.Namespace) -> str | None:
    from .journal.query import endpoint_from_env

    endpoint = getattr(args, "endpoint_url", None) or endpoint_from_env()
    return str(endpoint) if endpoint else None


def open_journal(args: argparse.Namespace) -> Journal:
    """The journal the options name.

    Raises:
        CliError: no table or no region.
    """
    from .journal.query import Journal

    table = getattr(args, "table", None) or os.environ.get(JOURNAL_TABLE_ENV)
    if not table:
        raise CliError(f"no journal table: pass --table NAME or set {JOURNAL_TABLE_ENV}")
    return Journal(table, region=resolve_region(args), endpoint_url=resolve_endpoint(args))


def group_help(parser: argparse.ArgumentParser) -> Run:
    """A ``run`` for a command group given no subcommand: its help on stderr, exit 2."""

    def run(args: argparse.Namespace, console: Console) -> int:
        parser.print_help(console.err)
        return EXIT_USAGE

    return run


# -- the command ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line plus a hint instead of the whole usage."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_COLOR_HELP = "colour the output: auto (a terminal without NO_COLOR), always, never"


class _CommandParser(_Parser):
    """A subcommand's parser: takes ``--color`` too, so that it may follow the command
    (``asynccfn local --color never ...``); given there, it wins over the one before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--color",
            choices=[m.value for m in ColorMode],
            default=argparse.SUPPRESS,  # not given here: the top-level value stands
            help=_COLOR_HELP,
        )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the options every subcommand shares, then each module of
    :data:`COMMANDS` registers its own."""
    parser = _Parser(
        prog="asynccfn",
        description="Durable async handlers for AWS CloudFormation custom resources.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--color",
        choices=[m.value for m in ColorMode],
        default=ColorMode.AUTO.value,
        help=_COLOR_HELP,
    )
    subparsers = parser.add_subparsers(
        title="commands", metavar="COMMAND", parser_class=_CommandParser
    )
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("asynccfn"):
                raise
            continue  # its optional extra is not installed
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code. Errors are one line on stderr, no traceback;
    usage errors exit 2, as argparse's do. Raises nothing."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already reported
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    console = Console.for_streams(sys.stdout, sys.stderr, ColorMode(args.color))
    run: Run | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return run(args, console)
    except CliError as exc:
        console.note(f"asynccfn: {_one_line(exc.message)}")
        return exc.code
    except AsyncCfnError as exc:
        console.note(f"asynccfn: {_one_line(str(exc))}{_hint(exc, args)}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        console.note("asynccfn: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `asynccfn journal list | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("asynccfn")
    except PackageNotFoundError:
        return "unknown"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _hint(exc: AsyncCfnError, args: argparse.Namespace) -> str:
    """What to do next, for the errors whose remedy the user controls."""
    from .journal.query import JournalUnreachable, OperationNotFound, TableNotFound

    if isinstance(exc, TableNotFound):
        table = getattr(args, "table", None) or os.environ.get(JOURNAL_TABLE_ENV) or "NAME"
        return (
            f": check --table/--region/--endpoint-url, or create it with "
            f"`asynccfn table create {table}`"
        )
    if isinstance(exc, JournalUnreachable):
        return ": check --endpoint-url ($AWS_ENDPOINT_URL_DYNAMODB) and the network"
    if isinstance(exc, OperationNotFound):
        return ": `asynccfn journal list` shows the operations"
    if "credentials" in str(exc):
        return ": set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    return ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
