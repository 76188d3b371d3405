"""Where a failure comes from, in the user's terms: the raising frame of the user's own code,
and tracebacks with asynccfn's (and the standard library's) frames folded.

A frame is the user's when its file is neither asynccfn's, nor the standard library's, nor an
installed package's (``site-packages``/``dist-packages``). Cheap to import: the Lambda path
imports it, and ``traceback`` is loaded by ``logging`` already.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["definition_site", "fold_traceback", "is_user_file", "raising_location"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
_INSTALLED = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_FRAME_LINE = r'^  File "(?P<file>[^"]*)", line \d+'  # compiled on first use: errors only


def is_user_file(filename: str) -> bool:
    """Whether ``filename`` holds the user's code rather than asynccfn's or a library's."""
    if not filename or filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    if path.startswith((_PACKAGE, _STDLIB)):
        return False
    return not any(part in path for part in _INSTALLED)


def shown_path(filename: str) -> str:
    """``filename`` relative to the working directory when it is inside it (Lambda's is the
    task root, a laptop's the project), else as given."""
    path = os.path.abspath(filename)
    cwd = os.getcwd() + os.sep
    return path[len(cwd) :] if path.startswith(cwd) else path


def raising_location(exc: BaseException) -> str | None:
    """``at FILE:LINE in FUNCTION`` of the innermost user frame ``exc`` passed through, or
    None when it passed through none (an error of asynccfn's own, or a library's alone)."""
    frames = traceback.StackSummary.extract(
        traceback.walk_tb(exc.__traceback__), lookup_lines=False
    )
    for frame in reversed(frames):
        if is_user_file(frame.filename):
            return f"at {shown_path(frame.filename)}:{frame.lineno} in {frame.name}"
    return None


def definition_site(fn: Callable[..., Any]) -> str:
    """``FILE:LINE`` where ``fn`` is defined, or its repr when it has no code object (a
    builtin, a partial, a callable instance)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return repr(fn)
    return f"{shown_path(code.co_filename)}:{code.co_firstlineno}"


def fold_traceback(lines: Sequence[str]) -> list[str]:
    """A formatted traceback's lines with each run of frames that are not the user's
    (asynccfn's, the standard library's) folded into one line, so the user's frames and the
    error stand out. Frames of installed packages stay: they say what the user called."""
    out: list[str] = []
    folded = 0
    skipping = False
    for line in lines:
        match = re.match(_FRAME_LINE, line)
        if match:
            path = os.path.abspath(match["file"])
            skipping = path.startswith((_PACKAGE, _STDLIB))
            if skipping:
                folded += 1
                continue
        elif skipping and line.startswith("    "):
            continue  # the folded frame's source line and its ^^^ markers
        else:
            skipping = False
        if folded:
            out.append(f"  … {folded} frame{'s' if folded != 1 else ''} of asynccfn and asyncio")
            folded = 0
        out.append(line)
    if folded:
        out.append(f"  … {folded} frame{'s' if folded != 1 else ''} of asynccfn and asyncio")
    return out
