"""Regression tests for the bugs of issue 12 that need no broker (each failed before its fix)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from repid import InMemoryServer, Message, Repid, Router, TestClient
from repid.connections.abc import DeliveryCapacity, MessageData, ReceivedMessageT
from tests.core.helpers import run_until


async def test_two_subscriptions_on_one_in_memory_channel_both_get_woken() -> None:
    # Bug 1: one wake-up slot per queue, overwritten by each consumer: with both subscriptions
    # waiting, a message could stay queued while one of them listened.
    server = InMemoryServer()
    await server.connect()
    got: dict[str, list[ReceivedMessageT]] = {"a": [], "b": []}
    capacities = {"a": DeliveryCapacity(1), "b": DeliveryCapacity(1)}

    def callback(name: str) -> Any:
        async def on_message(message: ReceivedMessageT) -> None:
            capacities[name].acquire()  # and keeps the slot: this consumer is busy now
            got[name].append(message)

        return on_message

    subs = [
        await server.subscribe(channels_to_callbacks={"q": callback(n)}, capacity=capacities[n])
        for n in ("a", "b")
    ]
    await asyncio.sleep(0.05)  # both wait for messages
    await server.publish(channel="q", message=MessageData(b"1"))
    await asyncio.sleep(0.05)
    await server.publish(channel="q", message=MessageData(b"2"))
    for _ in range(200):
        if len(got["a"]) + len(got["b"]) == 2:
            break
        await asyncio.sleep(0.01)
    # Whichever took the first one is full; the other one must get the second.
    assert sorted(m.payload for m in got["a"] + got["b"]) == [b"1", b"2"]
    assert server.queued("q") == []
    for sub in subs:
        await sub.close()
    await server.disconnect()


async def test_reply_goes_through_the_producer_middlewares() -> None:
    # Bug 8: reply()/reply_json() bypassed the middlewares that send_message* go through.
    seen: list[tuple[str, dict[str, str] | None]] = []

    async def stamp(call_next: Any, channel: str, message: MessageData, params: Any) -> Any:
        headers = dict(message.headers or {})
        headers["x-stamped"] = "1"
        seen.append((channel, message.headers))
        return await call_next(
            channel, MessageData(message.payload, headers, message.content_type), params
        )

    app = Repid(producer_middlewares=[stamp])
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    router = Router()

    @router.actor(channel="requests")
    async def ping(message: Message) -> None:
        await message.reply_json(payload={"pong": 1}, channel="replies", headers={"topic": "pong"})

    @router.actor(channel="replies")
    async def pong() -> None: ...

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="requests", payload={}, headers={"topic": "ping"})
        (reply,) = client.get_sent_messages(channel="replies")
        assert reply.headers == {"topic": "pong", "x-stamped": "1"}
        (request,) = client.get_processed_messages(channel="requests")
        assert request.replied and request.acked
    assert [channel for channel, _ in seen] == ["requests", "replies"]


async def test_sent_messages_filter_by_the_operation_they_were_sent_with() -> None:
    # Bug 12: the filter returned every message of the operation's channel.
    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    app.messages.register_operation(operation_id="create_user", channel="users")
    app.messages.register_operation(operation_id="delete_user", channel="users")
    async with TestClient(app, auto_process=False) as client:
        await client.send_message_json(operation_id="create_user", payload={"id": 1})
        await client.send_message_json(operation_id="delete_user", payload={"id": 2})
        await client.send_message_json(channel="users", payload={"id": 3})
        assert [m.payload for m in client.get_sent_messages(operation_id="create_user")] == [
            b'{"id":1}'
        ]
        assert [m.payload for m in client.get_sent_messages(operation_id="delete_user")] == [
            b'{"id":2}'
        ]
        assert len(client.get_sent_messages(channel="users")) == 3


async def test_a_worker_without_actors_waits_for_a_stop() -> None:
    # Bug 11 at the message layer (the job layer's Worker is covered by the seed 004 tests).
    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    async with app.servers.default.connection():
        runner = app.create_runner()
        task = asyncio.create_task(runner.run(()))
        await asyncio.sleep(0.2)
        assert not task.done() and runner.is_ready
        runner.stop()
        info = await asyncio.wait_for(task, 5)
    assert info.processed == 0


async def test_the_runner_settles_what_the_pipeline_left_unsettled(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # An ack the broker refuses leaves the message unsettled: the runner gives it back
    # (reject) instead of holding it until the max lease.
    from repid.connections.in_memory import InMemoryReceivedMessage

    original = InMemoryReceivedMessage._ack
    refused: list[int] = []

    async def ack_once_refused(self: InMemoryReceivedMessage) -> None:
        if not refused:
            refused.append(1)
            raise ConnectionError("broker hiccup")
        await original(self)

    monkeypatch.setattr(InMemoryReceivedMessage, "_ack", ack_once_refused)
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server, is_default=True)
    router = Router()
    runs: list[int | None] = []

    @router.actor(channel="c")
    async def job(message: Message) -> None:
        runs.append(message.delivery_count)

    app.include_router(router)
    caplog.set_level(logging.ERROR)
    async with server.connection():
        await app.send_message(channel="c", payload=b"", headers={"topic": "job"})
        await run_until(app, lambda: len(runs) >= 2, timeout=5)
        assert server.queued("c") == []
    assert runs == [0, 1]  # given back after the failed ack, then delivered and acked again
    assert any("actor.confirmation.failed" in r.getMessage() for r in caplog.records)
