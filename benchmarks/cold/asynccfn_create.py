"""A cold start of asynccfn: import it, build lambda_entry, serve one no-op Create (journal on,
response PUT). Run as a script by benchmarks.cold_start; prints one ``BENCH {json}`` line."""

import time

started = time.time()
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import asynccfn  # noqa: E402

imported = time.time()

resource = asynccfn.Resource("Custom::Bench", update="replace", delete="nothing")


@resource.create
async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    return asynccfn.Success(physical_id="bench")


handler = asynccfn.lambda_entry(resource, journal=os.environ["BENCH_TABLE"])
built = time.time()
modules_built = len(sys.modules)  # what Lambda's init phase loaded


class Context:
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    log_stream_name = "bench"
    function_name = "bench"
    aws_request_id = "cold-start"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


result = handler(json.loads(os.environ["BENCH_EVENT"]), Context())
done = time.time()
print(
    "BENCH "
    + json.dumps(
        {
            "started": started,
            "imported": imported,
            "built": built,
            "done": done,
            "ok": result == {"outcome": "SUCCESS"},
            "modules_built": modules_built,
            "modules": len(sys.modules),
            "own_modules": sum(1 for m in sys.modules if m.split(".")[0] == "asynccfn"),
            "pynamodb": "pynamodb" in sys.modules,
        }
    ),
    flush=True,
)
os._exit(0)
