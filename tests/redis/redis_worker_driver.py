"""A minimal Redis worker for the crash tests: RedisServer + DeliveryCapacity + callbacks only.

usage: python redis_worker_driver.py URL CHANNEL CAPACITY DELAY_SECONDS

For every message it waits DELAY_SECONDS (a "slow actor"), records the payload with SADD in
`{CHANNEL}:done`, counts it with HINCRBY in `{CHANNEL}:count` (and itself in `{CHANNEL}:by`,
by pid), then acks. It prints `ready` once subscribed and runs until killed.
"""

from __future__ import annotations

import asyncio
import os
import sys

import redis.asyncio as aioredis

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.redis import RedisServer


async def main(url: str, channel: str, limit: int, delay: float) -> None:
    server = RedisServer(url, block=0.2, claim_idle=1.0)
    recorder = aioredis.Redis.from_url(url)
    capacity = DeliveryCapacity(limit)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(message: ReceivedMessageT) -> None:
        try:
            await asyncio.sleep(delay)
            await recorder.sadd(f"{channel}:done", message.payload)
            await recorder.hincrby(f"{channel}:count", message.payload.decode(), 1)
            await recorder.hincrby(f"{channel}:by", str(os.getpid()), 1)
            await message.ack()
        finally:
            capacity.release()

    async def callback(message: ReceivedMessageT) -> None:
        capacity.acquire()
        task = asyncio.get_running_loop().create_task(handle(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    await server.connect()
    await server.subscribe(channels_to_callbacks={channel: callback}, capacity=capacity)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
