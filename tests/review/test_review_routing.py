"""Routing strategies: custom factories, headers None, strategies that raise."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from repid import BaseMessageT, Router, TestClient, catch_all_routing_strategy

from .helpers import make_app, run_worker_bounded


def action_strategy_without_kwargs(*, actor_name: str) -> Any:
    # Seed 002: "a routing strategy is simply a factory function that takes the actor_name".
    def strategy(message: BaseMessageT) -> bool:
        return message.headers is not None and message.headers.get("action") == actor_name

    return strategy


def careless_strategy(*, actor_name: str, **_: Any) -> Any:
    def strategy(message: BaseMessageT) -> bool:
        return message.headers.get("action") == actor_name  # type: ignore[union-attr]

    return strategy


async def test_strategy_factory_taking_only_actor_name() -> None:
    router = Router()

    @router.actor(channel="c", routing_strategy=action_strategy_without_kwargs)
    async def act() -> str:
        return "done"

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={}, headers={"action": "act"})
        assert client.get_processed_messages()[0].result == "done"


async def test_raising_strategy_does_not_wedge_worker() -> None:
    router = Router()

    @router.actor(channel="c", routing_strategy=careless_strategy)
    async def act() -> None:
        pass

    app, server = make_app(router)
    await server.connect()
    await app.send_message(channel="c", payload=b"{}")  # no headers at all
    await app.send_message(channel="c", payload=b"{}", headers={"action": "act"})
    info = await run_worker_bounded(app, messages_limit=1)
    assert info.processed == 1


async def test_headers_none_is_unrouted_for_topic_and_caught_by_catch_all() -> None:
    router = Router()

    @router.actor(channel="c")
    async def by_topic() -> str:
        return "topic"

    @router.actor(channel="c", routing_strategy=catch_all_routing_strategy)
    async def fallback() -> str:
        return "fallback"

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message(channel="c", payload=b"{}")
        await client.send_message(channel="c", payload=b"{}", headers={"topic": "by_topic"})
        results = [m.result for m in client.get_processed_messages()]
    assert results == ["fallback", "topic"]


async def test_first_registered_matching_actor_wins() -> None:
    router = Router()

    @router.actor(channel="c", routing_strategy=catch_all_routing_strategy)
    async def greedy() -> str:
        return "greedy"

    @router.actor(channel="c")
    async def specific() -> str:
        return "specific"

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={}, headers={"topic": "specific"})
        assert client.get_processed_messages()[0].result == "greedy"


async def test_previous_signal_handler_is_restored() -> None:
    def custom(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGUSR1, custom)
    try:
        router = Router()

        @router.actor(channel="c")
        async def job() -> None:
            pass

        app, server = make_app(router)
        await server.connect()
        await app.send_message_json(channel="c", payload={}, headers={"topic": "job"})
        await run_worker_bounded(app, messages_limit=1, register_signals=[signal.SIGUSR1])
        assert signal.getsignal(signal.SIGUSR1) is custom
    finally:
        signal.signal(signal.SIGUSR1, previous)


async def test_stop_before_run_is_honoured() -> None:
    app, server = make_app(Router())
    await server.connect()
    runner = app.create_runner()
    runner.stop()
    await asyncio.wait_for(runner.run(register_signals=[]), 10)
