"""What the SQLite example server claims beyond the contract suite: the optional protocols it
implements, and that a SIGKILLed worker's message goes to another process once its lease runs
out (its `visibility_timeout`)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from examples.sqlite_server import SqliteServer
from repid import Message, Repid, Router

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path

    from examples.sqlite_server import SqliteServer
    from repid import Repid, Router

    path, started = sys.argv[1], Path(sys.argv[2])
    app = Repid()
    app.servers.register_server("s", SqliteServer(path, visibility_timeout=1.0), is_default=True)
    router = Router()

    @router.actor(channel="work")
    async def job() -> None:
        started.write_text("running")
        await asyncio.sleep(3600)  # killed here

    app.include_router(router)

    async def main() -> None:
        async with app.servers.default.connection():
            await app.run_worker()

    asyncio.run(main())
    """
)


async def test_a_killed_workers_message_comes_back_after_the_visibility_timeout(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "queue.db")
    server = SqliteServer(path, visibility_timeout=1.0)
    app = Repid()
    app.servers.register_server("s", server, is_default=True)
    started = tmp_path / "started"
    async with server.connection():
        await app.send_message(channel="work", payload=b"", headers={"topic": "job"})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, path, str(started)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert worker.poll() is None, "the worker process ended"
            assert time.monotonic() < deadline, "the worker never ran the job"
            await asyncio.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        killed = time.monotonic()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)

    router = Router()
    seen: list[tuple[float, int | None]] = []

    @router.actor(channel="work")
    async def job(message: Message) -> None:
        seen.append((time.monotonic(), message.delivery_count))

    app.include_router(router)
    async with server.connection():
        await asyncio.wait_for(app.run_worker(messages_limit=1, register_signals=[]), 30)
    [(when, delivery_count)] = seen
    assert delivery_count == 1  # delivered once before, to the killed worker
    # Back about one visibility timeout (1 s) after the kill; 20 s leaves room for a loaded
    # machine (the new worker's start-up is in it too).
    assert when - killed <= 20


def test_it_implements_the_protocols_the_page_names(tmp_path: Path) -> None:
    from repid.connections.abc import (
        BatchPublisherT,
        ChannelStatsT,
        DeadLetterStoreT,
        DescribedServerT,
        ServerT,
        SubscriptionEventsT,
    )

    server = SqliteServer(tmp_path / "queue.db")
    for protocol in (
        ServerT,
        DescribedServerT,
        BatchPublisherT,
        DeadLetterStoreT,
        ChannelStatsT,
        SubscriptionEventsT,
    ):
        assert isinstance(server, protocol), protocol.__name__
    description = server.asyncapi_description()
    assert (description.protocol, description.pathname) == ("sqlite", str(tmp_path / "queue.db"))
