"""Seed 002 cookbook "RabbitMQ Retries with Exponential Backoff", end to end on RabbitMQ 4.

The seed's definitions.json topology (topic exchanges, shared TTL delay queues, a quorum work
queue with x-delivery-limit) with unique names and millisecond delays, the seed's decorator
verbatim (tests/seeds/_retries.py), and a real worker consuming through AmqpServer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from repid import Repid, Router
from repid.connections.amqp import AmqpServer
from tests import brokers
from tests.seeds._retries import with_rabbitmq_retries

pytestmark = pytest.mark.amqp

DELAYS = [300, 600]


@pytest.fixture
def topology() -> Iterator[dict[str, str]]:
    brokers.amqp_url()
    tag = uuid.uuid4().hex[:8]
    names = {
        "retry": f"retry_exchange_{tag}",
        "requeue": f"requeue_exchange_{tag}",
        "work": f"my_work_queue_{tag}",
    }
    delay_queues = [f"delay_{ms}ms_{tag}" for ms in DELAYS]

    def queue(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "vhost": "/",
            "durable": True,
            "auto_delete": False,
            "arguments": {"x-queue-type": "quorum", **arguments},
        }

    def exchange(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "vhost": "/",
            "type": "topic",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }

    def binding(source: str, destination: str, key: str) -> dict[str, Any]:
        return {
            "source": source,
            "vhost": "/",
            "destination": destination,
            "destination_type": "queue",
            "routing_key": key,
            "arguments": {},
        }

    brokers.rabbitmq_load_definitions(
        {
            "exchanges": [exchange(names["retry"]), exchange(names["requeue"])],
            "queues": [
                *(
                    queue(q, {"x-message-ttl": ms, "x-dead-letter-exchange": names["requeue"]})
                    for q, ms in zip(delay_queues, DELAYS, strict=True)
                ),
                queue(names["work"], {"x-delivery-limit": 5}),
            ],
            "bindings": [
                *(
                    binding(names["retry"], q, f"delay.{ms}.#")
                    for q, ms in zip(delay_queues, DELAYS, strict=True)
                ),
                binding(names["requeue"], names["work"], f"*.*.{names['work']}"),
            ],
        }
    )
    yield names
    for q in [names["work"], *delay_queues]:
        brokers.rabbitmq_delete_queue(q)


async def test_retries_with_exponential_backoff_end_to_end(
    topology: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    work = topology["work"]
    router = Router()
    attempts: list[str | None] = []

    @router.actor(channel=work)
    @with_rabbitmq_retries(
        max_retries=2,
        backoff_delays=DELAYS,
        retry_exchange=topology["retry"],
        retry_exceptions=(ConnectionError, TimeoutError),
    )
    async def process_task(data: dict) -> None:
        attempts.append(json.dumps(data))
        print(f"Processing data: {data}")
        raise ConnectionError("Temporary API failure")

    app = Repid()
    server = AmqpServer(brokers.amqp_url())
    app.servers.register_server("rabbitmq", server, is_default=True)
    app.include_router(router)
    async with server.connection():
        await app.send_message_json(
            channel=work, payload={"data": {"id": 7}}, headers={"topic": "process_task"}
        )
        # The first attempt and two retries that went through the delay queues.
        info = await asyncio.wait_for(
            app.run_worker(messages_limit=3, register_signals=[]), timeout=30
        )
    assert info.processed == 3
    assert attempts == ['{"id": 7}'] * 3
    out = capsys.readouterr().out
    assert "Retrying in 300ms (Attempt 1)" in out
    assert "Retrying in 600ms (Attempt 2)" in out
    assert "Max retries (2) reached" in out
    # The final failure was nacked: nothing is left anywhere.
    assert brokers.rabbitmq_get_messages(work, 10) == []
