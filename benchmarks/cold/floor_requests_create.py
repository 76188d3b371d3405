"""The cold-start floor with asynccfn's own requests: import aiobotocore and aiohttp, then
send the DynamoDB requests asynccfn sent for one no-op Create (claim, outbox record, posted
mark), retargeted at a new key, with the response PUT before the last one, as asynccfn
orders them. Run as a script by benchmarks.cold_start; prints one ``BENCH {json}`` line.

Self-contained like the other children: it runs from the unpacked zip alone (no site-packages,
nothing of ``benchmarks`` on the path), hence its own copy of ``_sides.retarget``."""

import time

started = time.time()
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402

import aiohttp  # noqa: E402
import yarl  # noqa: E402
from aiobotocore.config import AioConfig  # noqa: E402
from aiobotocore.session import get_session  # noqa: E402

imported = time.time()


def retarget(value, old, new):
    if isinstance(value, str):
        return new if value == old else value
    if isinstance(value, dict):
        return {key: retarget(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [retarget(item, old, new) for item in value]
    return value


def snake(name):
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


async def serve(event: dict, recorded: dict) -> bool:
    new = f"op#floor-{uuid.uuid4().hex}"
    calls = [(op, retarget(params, recorded["key"], new)) for op, params in recorded["calls"]]
    config = AioConfig(
        max_pool_connections=64,
        connect_timeout=2,
        read_timeout=5,
        retries={"mode": "standard", "total_max_attempts": 5},
    )
    async with (
        get_session().create_client("dynamodb", config=config) as dynamodb,
        aiohttp.ClientSession(skip_auto_headers=("Content-Type",)) as http,
    ):
        for operation, params in calls[:-1]:
            await getattr(dynamodb, snake(operation))(**params)
        url = yarl.URL(event["ResponseURL"], encoded=True)
        async with http.put(url, data=recorded["body"].encode()) as response:
            ok = response.status == 200
        operation, params = calls[-1]
        await getattr(dynamodb, snake(operation))(**params)
        return ok


ok = asyncio.run(
    serve(json.loads(os.environ["BENCH_EVENT"]), json.loads(os.environ["BENCH_CALLS"]))
)
done = time.time()
print(
    "BENCH "
    + json.dumps(
        {
            "started": started,
            "imported": imported,
            "built": imported,
            "done": done,
            "ok": ok,
            "modules": len(sys.modules),
        }
    ),
    flush=True,
)
os._exit(0)
