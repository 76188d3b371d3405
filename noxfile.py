"""Sessions: tests, lint, typecheck (run by CI) and bench."""

from __future__ import annotations

import nox

nox.options.reuse_existing_virtualenvs = True
# uv makes the three sessions' installs quick; plain virtualenv + pip when it is absent.
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite against real local servers (DynamoDB Local, moto, local Lambda)."""
    session.install("-e", ".[dev]")
    # Four workers on CI's two cores: most tests wait on real leases, timeouts and Lambda
    # retries rather than compute (two workers kept the cores 42% busy; 5 min 59 s against
    # 3 min 44 s with four, same 833 tests).
    session.run("pytest", "-n", "4", "--dist", "loadgroup", "--durations=10", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "asynccfn", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "asynccfn", "tests", "benchmarks")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", "asynccfn")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Ratios of asynccfn against the raw aiobotocore/aiohttp floor, in one run."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "benchmarks", *session.posargs)
