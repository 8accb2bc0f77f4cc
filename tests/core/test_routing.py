"""Point 5: topic, catch-all and custom routing, first match wins, unrouted and poison messages."""

from __future__ import annotations

import logging

from repid import (
    BaseMessageT,
    Repid,
    Router,
    TestClient,
    catch_all_routing_strategy,
)

from .helpers import run_until


async def test_topic_header_selects_actor_by_name_or_custom_name(memory_app) -> None:
    app, server = memory_app
    router = Router()
    seen: list[str] = []

    @router.actor(channel="user_tasks")
    async def send_welcome_email() -> None:
        seen.append("by function name")

    @router.actor(channel="user_tasks", name="email_worker")
    async def other_function() -> None:
        seen.append("by custom name")

    app.include_router(router)
    await app.send_message(channel="user_tasks", payload=b"", headers={"topic": "email_worker"})
    await app.send_message(
        channel="user_tasks", payload=b"", headers={"topic": "send_welcome_email"}
    )
    _, info = await run_until(app, lambda: len(seen) == 2)
    assert seen == ["by custom name", "by function name"]
    assert info.processed == 2


async def test_catch_all_registered_first_wins_over_topic_actor() -> None:
    app = Repid()
    router = Router()

    @router.actor(channel="c", routing_strategy=catch_all_routing_strategy)
    async def everything() -> str:
        return "catch-all"

    @router.actor(channel="c")
    async def specific() -> str:
        return "specific"

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message(channel="c", payload=b"", headers={"topic": "specific"})
        await client.send_message(channel="c", payload=b"")
        results = [m.result for m in client.get_processed_messages()]
    assert results == ["catch-all", "catch-all"]


async def test_topic_actor_registered_first_wins_when_it_matches() -> None:
    app = Repid()
    router = Router()

    @router.actor(channel="c")
    async def specific() -> str:
        return "specific"

    @router.actor(channel="c", routing_strategy=catch_all_routing_strategy)
    async def everything() -> str:
        return "catch-all"

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message(channel="c", payload=b"", headers={"topic": "specific"})
        await client.send_message(channel="c", payload=b"", headers={"topic": "other"})
        results = [m.result for m in client.get_processed_messages()]
    assert results == ["specific", "catch-all"]


async def test_custom_routing_strategy_factory_gets_actor_name() -> None:
    names: list[str] = []

    def by_action(*, actor_name: str, **kwargs: object):
        names.append(actor_name)

        def strategy(message: BaseMessageT) -> bool:
            if message.headers is None:
                return False
            return message.headers.get("action") == actor_name

        return strategy

    app = Repid()
    router = Router()

    @router.actor(channel="user_tasks", name="send_email_action", routing_strategy=by_action)
    async def process_something() -> str:
        return "ran"

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message(
            channel="user_tasks", payload=b"", headers={"action": "send_email_action"}
        )
        await client.send_message(channel="user_tasks", payload=b"", headers={"topic": "x"})
        processed = client.get_processed_messages()
    assert names == ["send_email_action"]
    assert processed[0].result == "ran"
    assert processed[1].actor_name is None
    assert processed[1].rejected


async def test_unrouted_message_is_rejected_then_nacked_as_poison_after_10(
    memory_app, caplog
) -> None:
    app, server = memory_app
    router = Router()

    @router.actor(channel="c")
    async def known() -> None:
        pass

    app.include_router(router)
    await app.send_message(channel="c", payload=b"{}", headers={"topic": "unknown"})
    caplog.set_level(logging.DEBUG, logger="repid.worker")
    _, info = await run_until(app, lambda: bool(server.dead_letters.get("c")))
    assert info.processed == 0
    [dead] = server.dead_letters["c"]
    assert dead.delivery_count == 10
    assert server.queued("c") == []
    poison = [r for r in caplog.records if "actor.route.poison_message" in r.getMessage()]
    assert len(poison) == 1
    assert poison[0].levelno == logging.ERROR
    rejects = [r for r in caplog.records if "actor.route.not_found" in r.getMessage()]
    assert len(rejects) == 9
    # One line a person sees per message: the ERROR when it is given up; the rejects at DEBUG.
    assert [r.levelno for r in rejects] == [logging.DEBUG] * 9


async def test_actor_without_channel_listens_on_default_channel(memory_app) -> None:
    app, server = memory_app
    router = Router()
    ran: list[int] = []

    @router.actor
    async def my_actor(n: int) -> None:
        ran.append(n)

    app.include_router(router)
    await app.send_message_json(channel="default", payload={"n": 5}, headers={"topic": "my_actor"})
    await app.run_worker(messages_limit=1, register_signals=[])
    assert ran == [5]
