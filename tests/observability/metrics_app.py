"""The app `repid run --workers 2 --metrics` runs in test_prometheus_server.py.

Channel and broker come from the environment; every run of `work` appends a line to a file
named after the worker's pid, so the test can tell that both processes took messages.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from repid import Repid, Router
from repid.connections.redis import RedisServer

CHANNEL = os.environ["METRICS_TEST_CHANNEL"]
PIDS = Path(os.environ["METRICS_TEST_PIDS"])

app = Repid(title="metrics test")
app.servers.register_server(
    "redis", RedisServer(os.environ["REPID_TEST_REDIS_URL"]), is_default=True
)
router = Router()


@router.actor(channel=CHANNEL)
async def work(n: int) -> None:
    with (PIDS / str(os.getpid())).open("a") as out:
        out.write(f"{n}\n")
    await asyncio.sleep(0.05)
    if n % 5 == 0:
        raise ValueError("every fifth fails")


app.include_router(router)
