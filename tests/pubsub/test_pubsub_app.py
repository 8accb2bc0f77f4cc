"""PubsubServer under the Repid app and worker: actors chained through two subscriptions."""

from __future__ import annotations

import pytest
from pubsub_helpers import PROJECT, create_pair

from repid import PubsubServer, Repid, Router

pytestmark = pytest.mark.pubsub


async def test_worker_runs_chained_actors_over_pubsub(host: str) -> None:
    first, second = create_pair(host), create_pair(host)
    app = Repid(title="pubsub-app")
    server = PubsubServer(PROJECT, emulator_host=host, ack_deadline=10)
    app.servers.register_server("pubsub", server, is_default=True)
    router = Router()
    seen: list[tuple[str, int]] = []

    @router.actor(channel=first)
    async def step_one(n: int) -> None:
        seen.append(("one", n))
        # Publishing from inside an actor, while the worker's streams run.
        await app.send_message_json(
            channel=second, payload={"n": n * 10}, headers={"topic": "step_two"}
        )

    @router.actor(channel=second)
    async def step_two(n: int) -> None:
        seen.append(("two", n))

    app.include_router(router)
    async with server.connection():
        for i in range(20):
            await app.send_message_json(
                channel=first, payload={"n": i}, headers={"topic": "step_one"}
            )
        info = await app.run_worker(messages_limit=40, register_signals=[])
    assert info.processed == 40
    assert sorted(seen) == sorted(
        [("one", i) for i in range(20)] + [("two", i * 10) for i in range(20)]
    )
