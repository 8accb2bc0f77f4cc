"""A worker process for the crash tests: consume a channel, record each payload, then ack.

Usage: python pubsub_worker_driver.py HOST CHANNEL OUTFILE STOPFILE WORK_SECONDS CAPACITY

The payload is appended (and flushed) to OUTFILE *before* the ack, so a payload missing from
every worker's file was never acked, and the kill -9 test can count end to end.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.pubsub import PubsubServer


async def main() -> None:
    host, channel, outfile, stopfile = sys.argv[1:5]
    work, limit = float(sys.argv[5]), int(sys.argv[6])
    server = PubsubServer("repid-test", emulator_host=host, ack_deadline=10, max_backoff=1.0)
    capacity = DeliveryCapacity(limit)
    out = open(outfile, "a", buffering=1)  # noqa: SIM115 - closed at exit
    tasks: set[asyncio.Task[None]] = set()

    async def handle(message: ReceivedMessageT) -> None:
        try:
            await asyncio.sleep(work)
            out.write(message.payload.decode() + "\n")
            out.flush()
            os.fsync(out.fileno())
            await message.ack()
        finally:
            capacity.release()

    async def callback(message: ReceivedMessageT) -> None:
        capacity.acquire()
        task = asyncio.create_task(handle(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async with server.connection():
        subscriber = await server.subscribe(
            channels_to_callbacks={channel: callback}, capacity=capacity
        )
        Path(outfile + ".ready").touch()
        while not Path(stopfile).exists():
            await asyncio.sleep(0.1)
        await subscriber.close()
        await asyncio.gather(*tasks)
    out.close()


if __name__ == "__main__":
    asyncio.run(main())
