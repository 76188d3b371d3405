"""A Lambda cold start imports nothing the function does not need to serve a request."""

from __future__ import annotations

import json
import subprocess
import sys

# The schema's pynamodb models, the CLI, the local runner and the test seams, and the heavy
# optional dependencies: none is needed to serve a request.
UNWANTED = (
    "pynamodb",
    "asynccfn.cli",
    "asynccfn.local",
    "asynccfn.testing",
    "asynccfn._cli_local",
    "asynccfn.journal.models",
    "asynccfn.journal.query",
    "msgspec",
    "pydantic",
    "cryptography",
)

_CHILD = """
import json, sys
import asynccfn
handler = asynccfn.lambda_entry(asynccfn.Resource(), journal="t")
# what serving a durable request imports on its way (the runtime, the store, the codec)
import asynccfn._runtime, asynccfn.journal.store, asynccfn.journal._codec, asynccfn._outbox
from asynccfn.journal._codec import EntryCodec
from asynccfn.journal._schema import STEP_SCHEMA, StepEntry
EntryCodec(STEP_SCHEMA, StepEntry)
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(unwanted: str, modules: list[str]) -> list[str]:
    return [m for m in modules if m == unwanted or m.startswith(unwanted + ".")]


def test_a_cold_start_imports_no_schema_models_cli_local_runner_or_test_seams() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    modules = json.loads(done.stdout.splitlines()[-1])
    loaded = {name: _loaded(name, modules) for name in UNWANTED}
    assert not any(loaded.values()), {k: v for k, v in loaded.items() if v}
