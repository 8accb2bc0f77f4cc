"""Actors that raise BaseExceptions which are not Exceptions (CancelledError, SystemExit)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from repid import Router, TestClient

from .helpers import make_app, run_worker_bounded


def _router_raising(exc: BaseException) -> Router:
    router = Router()

    @router.actor(channel="c")
    async def raiser() -> None:
        raise exc

    return router


async def test_actor_raising_cancelled_error_does_not_hang_messages_limit() -> None:
    app, server = make_app(_router_raising(asyncio.CancelledError()))
    await server.connect()
    await app.send_message_json(channel="c", payload={}, headers={"topic": "raiser"})
    info = await run_worker_bounded(app, messages_limit=1, graceful_shutdown_time=0.1)
    assert info.processed == 1


async def test_actor_raising_cancelled_error_settles_message() -> None:
    app, _ = make_app(_router_raising(asyncio.CancelledError()))
    async with TestClient(app) as client:
        try:
            await client.send_message_json(channel="c", payload={}, headers={"topic": "raiser"})
        except asyncio.CancelledError:
            pass
        processed = client.get_processed_messages()
        assert len(processed) == 1
        assert processed[0].nacked


async def test_system_exit_in_actor_does_not_lose_message_in_test_client() -> None:
    app, _ = make_app(_router_raising(SystemExit(3)))
    async with TestClient(app) as client:
        with pytest.raises(SystemExit):
            await client.send_message_json(channel="c", payload={}, headers={"topic": "raiser"})
        server = client.get_server()
        assert server.queued("c") or server.dead_letters.get("c")


_SYSTEM_EXIT_SCRIPT = """
import asyncio
from repid import InMemoryServer, Repid, Router

router = Router()

@router.actor(channel="c")
async def raiser() -> None:
    raise SystemExit(3)

async def main() -> str:
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server, is_default=True)
    app.include_router(router)
    await server.connect()
    await app.send_message_json(channel="c", payload={}, headers={"topic": "raiser"})
    try:
        await app.run_worker(messages_limit=1, register_signals=[], graceful_shutdown_time=0.1)
        outcome = "returned"
    finally:
        # Runs while SystemExit propagates: the worker shut down gracefully first.
        print("RESULT", f"queued={len(server.queued('c'))} dead={len(server.dead_letters)}")
    return outcome

asyncio.run(main())
"""


def test_system_exit_in_actor_stops_or_counts_in_worker() -> None:
    # In a subprocess: a SystemExit escaping an asyncio task destabilises the test process.
    done = subprocess.run(
        [sys.executable, "-c", _SYSTEM_EXIT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, done.stderr[-2000:]
    # The worker shuts down gracefully (the message goes back to its queue), then the
    # SystemExit the actor raised ends the process with its code.
    assert lines[0] == "RESULT queued=1 dead=0"
    assert done.returncode == 3
