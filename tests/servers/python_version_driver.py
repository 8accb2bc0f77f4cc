"""Worker scenarios that need another Python version, run as `python driver.py SCENARIO KIT`.

Scenarios:

* `eager` (Python 3.12+): the worker's event loop uses `asyncio.eager_task_factory`; 40 messages
  whose actor returns at once are processed; prints `{"in_flight": ..., "processed": ...}`.
* `own-cancel` (Python 3.10): the actor raises CancelledError itself; prints what happened to
  the message: `{"processed": ..., "dead": ..., "left": ...}`.

KIT is memory, redis, amqp or sqlite (their addresses come from the REPID_TEST_* variables); the
parent test puts the repository and its virtualenv's pure-Python packages on PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from typing import Any

from repid import InMemoryServer, Repid, Router


def _server(kit: str) -> Any:
    if kit == "memory":
        return InMemoryServer()
    if kit == "redis":
        from repid.connections.redis import RedisServer

        return RedisServer(os.environ["REPID_TEST_REDIS_URL"], claim_idle=5.0)
    if kit == "amqp":
        from repid.connections.amqp import AmqpServer

        return AmqpServer(os.environ["REPID_TEST_AMQP_URL"])
    if kit == "sqlite":
        from examples.sqlite_server import SqliteServer

        return SqliteServer(os.environ["REPID_TEST_SQLITE_PATH"])
    raise SystemExit(f"unknown kit {kit!r}")


async def eager(kit: str, channel: str) -> dict[str, Any]:
    asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    app = Repid()
    server = _server(kit)
    app.servers.register_server("s", server, is_default=True)
    router = Router()

    @router.actor(channel=channel)
    async def job(n: int) -> None:
        return None  # finishes without suspending: the task may end inside create_task()

    app.include_router(router)
    async with server.connection():
        for n in range(40):
            await app.send_message_json(channel=channel, payload={"n": n}, headers={"topic": "job"})
        runner = app.create_runner(messages_limit=40, graceful_shutdown_time=5.0)
        info = await asyncio.wait_for(runner.run(()), 60)
        return {"in_flight": len(runner.in_flight), "processed": info.processed}


async def own_cancel(kit: str, channel: str) -> dict[str, Any]:
    app = Repid()
    server = _server(kit)
    app.servers.register_server("s", server, is_default=True)
    router = Router()
    runs: list[int] = []

    @router.actor(channel=channel)
    async def job() -> None:
        runs.append(1)
        raise asyncio.CancelledError  # the actor's own, not a shutdown

    app.include_router(router)
    async with server.connection():
        await app.send_message(channel=channel, payload=b"", headers={"topic": "job"})
        runner = app.create_runner(graceful_shutdown_time=5.0)
        task = asyncio.ensure_future(runner.run(()))
        for _ in range(500):
            if runs and not runner.in_flight:
                break
            await asyncio.sleep(0.01)
        runner.stop()
        info = await asyncio.wait_for(task, 30)
        dead = len(server.dead_letters.get(channel, [])) if kit == "memory" else None
        left = len(server.queued(channel)) if kit == "memory" else None
        return {"processed": info.processed, "dead": dead, "left": left, "runs": len(runs)}


def main() -> None:
    scenario, kit = sys.argv[1], sys.argv[2]
    channel = sys.argv[3] if len(sys.argv) > 3 else f"v-{uuid.uuid4().hex[:10]}"
    run = {"eager": eager, "own-cancel": own_cancel}[scenario]
    print(json.dumps(asyncio.run(run(kit, channel))), flush=True)


if __name__ == "__main__":
    main()
