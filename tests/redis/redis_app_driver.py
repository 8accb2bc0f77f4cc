"""An app-level Redis worker for the crash tests: `Repid` + `Router` + `app.run_worker`.

usage: python redis_app_driver.py URL CHANNEL CLAIM_IDLE DELAY_SECONDS TASKS_LIMIT

The actor `work(n: int)` sleeps DELAY_SECONDS, then records `n` with SADD in `{CHANNEL}:done`;
the worker acks after it returns. Prints `ready` once the worker is about to consume and runs
until SIGTERM (graceful shutdown) or SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from repid import Repid, Router
from repid.connections.redis import RedisServer


async def main(url: str, channel: str, claim_idle: float, delay: float, tasks: int) -> None:
    recorder = aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(url, max_connections=20)
    )
    app = Repid(title="redis crash test")
    app.servers.register_server(
        "redis", RedisServer(url, claim_idle=claim_idle, block=0.2), is_default=True
    )
    router = Router()

    @router.actor(channel=channel)
    async def work(n: int) -> None:
        await asyncio.sleep(delay)
        await recorder.sadd(f"{channel}:done", n)

    app.include_router(router)
    await app.servers.default.connect()
    print("ready", flush=True)
    await app.run_worker(graceful_shutdown_time=5.0, tasks_limit=tasks)
    await recorder.aclose(close_connection_pool=True)


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    )
