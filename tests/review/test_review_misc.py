"""Python 3.10 timeout path, replies' server-specific parameters, middleware order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import repid.worker.actor
from repid import Message, Repid, Router, TestClient
from repid.connections.timeouts import _Timeout310
from repid.dependencies.resolver import ExecutorPools

from .helpers import make_app


async def test_py310_path_distinguishes_actor_own_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # The Python 3.10 shim, on whatever Python runs the tests.
    monkeypatch.setattr(repid.worker.actor, "timeout", _Timeout310)
    router = Router()

    @router.actor(channel="c", timeout=5)
    async def own() -> None:
        raise asyncio.TimeoutError("the actor's own upstream call timed out")

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={}, headers={"topic": "own"})
        assert client.get_processed_messages()[0].nacked


async def test_in_memory_reply_honours_server_specific_parameters() -> None:
    router = Router()

    @router.actor(channel="c")
    async def answer(message: Message) -> None:
        await message.reply(
            payload=b"x", channel="out", server_specific_parameters={"message_id": "fixed-id"}
        )

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={}, headers={"topic": "answer"})
        assert [m.message_id for m in client.get_sent_messages(channel="out")] == ["fixed-id"]


async def test_actor_middlewares_onion_order_app_router_nested_actor() -> None:
    order: list[str] = []

    def make(name: str) -> Any:
        async def middleware(call_next: Any, message: Any, actor: Any) -> Any:
            order.append(f"{name}>")
            try:
                return await call_next(message, actor)
            finally:
                order.append(f"<{name}")

        return middleware

    parent = Router(channel="main", timeout=60.0, middlewares=[make("parent")])
    child = Router(middlewares=[make("child")])

    @child.actor(middlewares=[make("actor")])
    async def nested() -> str:
        order.append("body")
        return "ok"

    parent.include_router(child)
    app = Repid(actor_middlewares=[make("app")])
    app.include_router(parent)
    (data,) = app.actors
    assert data.channel == "main" and data.timeout == 60.0
    async with TestClient(app) as client:
        await client.send_message_json(channel="main", payload={}, headers={"topic": "nested"})
        assert client.get_processed_messages()[0].result == "ok"
    assert order == [
        "app>",
        "parent>",
        "child>",
        "actor>",
        "body",
        "<actor",
        "<child",
        "<parent",
        "<app",
    ]


async def test_reply_after_ack_is_discarded() -> None:
    router = Router()

    @router.actor(channel="c")
    async def late(message: Message) -> str:
        await message.ack()
        await message.reply(payload=b"ignored")
        return "done"

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={}, headers={"topic": "late"})
        message = client.get_processed_messages()[0]
    assert message.result == "done" and message.exception is None


def test_process_pool_does_not_fork_a_threaded_process() -> None:
    pools = ExecutorPools()
    try:
        pool = pools.process_pool()
        assert pool._mp_context.get_start_method() != "fork"  # type: ignore[attr-defined]
    finally:
        pools.shutdown()
