"""A consumer process for the crash test: takes messages, never settles them, waits to be killed.

Usage: python -m tests.amqp.amqp_consumer_child AMQP_URL QUEUE CAPACITY
Prints one line "got PAYLOAD" per message it holds.
"""

from __future__ import annotations

import asyncio
import sys

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.amqp import AmqpServer


async def main(url: str, queue: str, limit: int) -> None:
    capacity = DeliveryCapacity(limit)
    held: list[ReceivedMessageT] = []

    async def callback(message: ReceivedMessageT) -> None:
        capacity.acquire()
        held.append(message)  # never acked: as if the worker died mid-task
        print("got", message.payload.decode(), flush=True)

    server = AmqpServer(url)
    async with server.connection():
        await server.subscribe(channels_to_callbacks={queue: callback}, capacity=capacity)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
