"""`repid dlq` and `repid stats` on RabbitMQ 4 (dead-letter queue found from the queue)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path

import pytest

from repid import AmqpServer, MessageData, Repid, Router
from repid.cli import main

from .. import brokers

pytestmark = pytest.mark.amqp


async def test_dlq_list_replay_purge_and_stats_on_rabbitmq(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = brokers.amqp_url()
    queue = f"cli-{uuid.uuid4().hex[:10]}"
    dead = f"{queue}.dead"
    brokers.rabbitmq_declare_queue(dead, arguments={"x-queue-type": "quorum"})
    brokers.rabbitmq_declare_queue(
        queue,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead,
        },
    )
    module = f"amqp_dlq_app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from repid import AmqpServer, Repid\n"
        "app = Repid()\n"
        f"app.servers.register_server('default', AmqpServer({url!r}), is_default=True)\n"
    )
    monkeypatch.chdir(tmp_path)
    try:
        app = Repid()
        server = AmqpServer(url)
        app.servers.register_server("default", server, is_default=True)
        router = Router()

        @router.actor(channel=queue)
        async def work(n: int) -> None:
            raise ValueError(f"cannot do {n}")

        app.include_router(router)
        async with server.connection():
            for n in range(3):
                await server.publish(
                    channel=queue,
                    message=MessageData(b'{"n": %d}' % n, {"topic": "work"}, "application/json"),
                )
            await app.run_worker(messages_limit=3, register_signals=[])
        path = f"{module}:app"

        def run(*words: str) -> str:
            assert main(list(words)) == 0
            return capsys.readouterr().out

        loop = asyncio.get_running_loop()
        for _ in range(100):  # the dead-lettering is asynchronous in RabbitMQ
            listed = await loop.run_in_executor(None, run, "dlq", "list", path, "--channel", queue)
            if "3 dead letter(s)" in listed:
                break
            await asyncio.sleep(0.1)
        assert "3 dead letter(s)" in listed and '{"n": 1}' in listed
        again = await loop.run_in_executor(None, run, "dlq", "list", path, "--channel", queue)
        assert "3 dead letter(s)" in again  # listing leaves them there
        replayed = await loop.run_in_executor(
            None, run, "dlq", "replay", path, "--channel", queue, "--limit", "2"
        )
        assert "replayed 2 dead letter(s)" in replayed
        row = json.loads(
            await loop.run_in_executor(None, run, "stats", path, "--channel", queue, "--json")
        )
        assert row == {
            "channel": queue,
            "depth": 2,
            "in_flight": None,
            "dead_letters": 1,
            "consumers": 0,
        }
        purged = await loop.run_in_executor(
            None,
            run,
            "dlq",
            "purge",
            path,
            "--channel",
            queue,
            "--dead-letter-queue",
            dead,
            "--yes",
        )
        assert "purged 1 dead letter(s)" in purged
        assert brokers.rabbitmq_get_messages(dead, 10) == []
        back = [
            json.loads(base64.b64decode(m["payload"]))["n"]
            for m in brokers.rabbitmq_get_messages(queue, 10)
        ]
        assert sorted(back) == [0, 1]
    finally:
        brokers.rabbitmq_delete_queue(queue)
        brokers.rabbitmq_delete_queue(dead)
