"""A Lambda cold start imports nothing the function does not need to serve a request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tests.support import create_journal_table, event_for

# The schema's pynamodb models, the CLI, the local runner, the test seams, the examples, the
# heavy optional dependencies, and time.strptime's machinery (about 1 ms at its first use; the
# ResponseURL's X-Amz-Date is read without it): none is needed to serve a request.
UNWANTED = (
    "pynamodb",
    "asynccfn.cli",
    "asynccfn.local",
    "asynccfn.testing",
    "asynccfn.examples",
    "asynccfn._cli_local",
    "asynccfn.journal.models",
    "asynccfn.journal.query",
    "msgspec",
    "pydantic",
    "cryptography",
    "_strptime",
)

_CHILD = """
import json, sys
import asynccfn
resource = asynccfn.Resource(update="replace", delete="nothing")
@resource.create
async def create(request, ctx):
    return asynccfn.Success()
handler = asynccfn.lambda_entry(resource, journal="t")
# what serving a durable request imports on its way (the runtime, the store, the codec)
import asynccfn._runtime, asynccfn.journal.store, asynccfn.journal._codec, asynccfn._outbox
from asynccfn.journal._codec import ItemCodec
from asynccfn.journal._schema import STEP_SCHEMA, StepItem
ItemCodec(STEP_SCHEMA, StepItem)
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


_SERVE = """
import json, os, sys, time
import asynccfn

resource = asynccfn.Resource("Custom::Bucket", update="replace", delete="nothing")


@resource.create
async def create(request, ctx):
    return asynccfn.Success(physical_id="cold")


handler = asynccfn.lambda_entry(resource, journal=os.environ["COLD_TABLE"])


class Context:
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold"
    log_stream_name = "cold"
    function_name = "cold"
    aws_request_id = "cold-start"

    def get_remaining_time_in_millis(self):
        return 60_000


result = handler(json.loads(os.environ["COLD_EVENT"]), Context())
print(json.dumps({"result": result, "modules": sorted(sys.modules)}), flush=True)
os._exit(0)
"""


def test_a_cold_start_serving_a_durable_create_imports_none_of_them(
    dynamodb_endpoint: str,
    moto_endpoint: str,
    presigned_response_url: Callable[[], Any],
) -> None:
    url, read = presigned_response_url()
    env = {
        **os.environ,
        # inside Lambda (never contacted here): lambda_entry prepares its clients at init
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "ASYNCCFN_ALLOWED_RESPONSE_HOSTS": urlsplit(moto_endpoint).netloc,
        "COLD_TABLE": create_journal_table(dynamodb_endpoint),
        "COLD_EVENT": json.dumps(event_for("create", url)),
    }
    done = subprocess.run(
        [sys.executable, "-c", _SERVE],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["result"] == {"outcome": "SUCCESS"}, done.stderr[-2000:]
    assert json.loads(read())["Status"] == "SUCCESS"
    loaded = {name: _loaded(name, report["modules"]) for name in UNWANTED}
    assert not any(loaded.values()), {k: v for k, v in loaded.items() if v}
