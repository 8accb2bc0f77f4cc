"""A real Repid worker for the crash test, killed with SIGKILL mid-run by the parent.

Usage: python -m tests.amqp.amqp_worker_child AMQP_URL QUEUE
The actor takes 20 ms per message and prints "done N" before its message is acked.
"""

from __future__ import annotations

import asyncio
import sys

from repid import Repid, Router
from repid.connections.amqp import AmqpServer


async def main(url: str, queue: str) -> None:
    router = Router()

    @router.actor(channel=queue)
    async def work(n: int) -> None:
        await asyncio.sleep(0.02)
        print("done", n, flush=True)

    app = Repid()
    server = AmqpServer(url)
    app.servers.register_server("rabbitmq", server, is_default=True)
    app.include_router(router)
    async with server.connection():
        await app.run_worker(tasks_limit=5, register_signals=[])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
