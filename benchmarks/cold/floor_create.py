"""The cold-start floor: import aiobotocore and aiohttp, then one PutItem and one response PUT.
Run as a script by benchmarks.cold_start; prints one ``BENCH {json}`` line."""

import time

started = time.time()
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import aiohttp  # noqa: E402
import yarl  # noqa: E402
from aiobotocore.config import AioConfig  # noqa: E402
from aiobotocore.session import get_session  # noqa: E402

imported = time.time()


async def serve(event: dict) -> bool:
    body = json.dumps(
        {
            "Status": "SUCCESS",
            "PhysicalResourceId": "bench",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": {},
        },
        separators=(",", ":"),
    )
    config = AioConfig(
        connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 5}
    )
    async with get_session().create_client("dynamodb", config=config) as dynamodb:
        await dynamodb.put_item(
            TableName=os.environ["BENCH_TABLE"],
            Item={
                "pk": {"S": "floor#" + event["RequestId"]},
                "sk": {"S": "op"},
                "status": {"S": "SUCCEEDED"},
                "response": {"S": body},
            },
        )
    async with aiohttp.ClientSession(skip_auto_headers=("Content-Type",)) as http:
        url = yarl.URL(event["ResponseURL"], encoded=True)
        async with http.put(url, data=body.encode()) as response:
            return response.status == 200


ok = asyncio.run(serve(json.loads(os.environ["BENCH_EVENT"])))
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
