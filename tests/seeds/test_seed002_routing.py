"""Seed 002, "Connecting & Nesting Routers" and "Routing Strategies (Topics)": the examples,
verbatim, then sent messages that show which actor takes them.

`from myapp.routers import router` imports tests/seeds/myapp/routers.py (the user's module).
"""

import logging

import pytest

from repid import InMemoryServer, Repid, Router, TestClient


async def _route(app: Repid, channel: str, headers: dict | None, payload: object = None):
    """Send one message; return (actor name or None, processed record)."""
    async with TestClient(app) as client:
        await client.send_message_json(
            channel=channel, payload={} if payload is None else payload, headers=headers
        )
        processed = client.get_processed_messages()
    assert len(processed) == 1
    return processed[0].actor_name, processed[0]


def _app(*routers: Router) -> Repid:
    app = Repid()
    for router in routers:
        app.include_router(router)
    return app


# --- Connecting routers -------------------------------------------------------------------


async def test_include_router() -> None:
    from repid import Repid

    from .myapp.routers import router  # seed: from myapp.routers import router

    app = Repid()

    # Register all actors defined on the router
    app.include_router(router)

    # Added: the router's actor is now the app's.
    assert [a.name for a in app.actors] == ["ping"]
    name, msg = await _route(app, "myapp_tasks", {"topic": "ping"})
    assert name == "ping" and msg.result == "pong"


# --- Default Configurations ---------------------------------------------------------------


def test_router_default_configurations() -> None:
    from repid import Router

    # All actors on this router will default to the "background_jobs" channel
    # and have a timeout of 10 seconds.
    router = Router(channel="background_jobs", timeout=10.0)

    @router.actor()
    # Inherits "background_jobs" and 10s timeout
    async def task_a():
        pass

    @router.actor(timeout=30.0)
    # Overrides timeout, but inherits "background_jobs"
    async def task_b():
        pass

    actors = {a.name: a for a in router.actors}
    assert (actors["task_a"].channel, actors["task_a"].timeout) == ("background_jobs", 10.0)
    assert (actors["task_b"].channel, actors["task_b"].timeout) == ("background_jobs", 30.0)


# --- Nesting Routers ----------------------------------------------------------------------


async def test_nesting_routers() -> None:
    app = Repid()

    parent_router = Router(channel="main_queue", timeout=60.0)
    child_router = Router()

    @child_router.actor()
    async def my_nested_actor():
        pass

    # The child_router will now inherit `channel="main_queue"` and `timeout=60.0`
    parent_router.include_router(child_router)

    # Finally, connect the parent to the app
    app.include_router(parent_router)

    (actor,) = app.actors
    assert (actor.name, actor.channel, actor.timeout) == ("my_nested_actor", "main_queue", 60.0)
    name, msg = await _route(app, "main_queue", {"topic": "my_nested_actor"})
    assert name == "my_nested_actor" and msg.acked


async def test_nested_middlewares_concatenate_parent_first() -> None:
    order: list[str] = []

    def tracer(label: str):
        async def middleware(call_next, message, actor):
            order.append(f"{label} in")
            try:
                return await call_next(message, actor)
            finally:
                order.append(f"{label} out")

        return middleware

    parent = Router(channel="main_queue", middlewares=[tracer("parent")])
    child = Router(middlewares=[tracer("child")])

    @child.actor(middlewares=[tracer("actor")])
    async def nested() -> None:
        order.append("body")

    parent.include_router(child)
    app = Repid(actor_middlewares=[tracer("app")])
    app.include_router(parent)
    await _route(app, "main_queue", {"topic": "nested"})
    assert order == [
        "app in",
        "parent in",
        "child in",
        "actor in",
        "body",
        "actor out",
        "child out",
        "parent out",
        "app out",
    ]


def test_child_options_override_parent_defaults() -> None:
    parent = Router(channel="main_queue", timeout=60.0, confirmation_mode="manual")
    child = Router(timeout=5.0)

    @child.actor
    async def own() -> None:
        pass

    parent.include_router(child)
    (actor,) = parent.actors
    assert (actor.channel, actor.timeout, actor.confirmation_mode) == ("main_queue", 5.0, "manual")
    assert actor.on_error == "no_action"  # the manual modes' default


# --- Modifying the Topic Name -------------------------------------------------------------


async def test_modifying_the_topic_name() -> None:
    router = Router()

    @router.actor(channel="user_tasks", name="email_worker")
    async def send_welcome_email() -> None:
        pass

    app = _app(router)
    name, msg = await _route(app, "user_tasks", {"topic": "email_worker"})
    assert name == "email_worker" and msg.acked
    name, msg = await _route(app, "user_tasks", {"topic": "send_welcome_email"})
    assert name is None and msg.rejected  # the function name no longer routes


# --- Catch-all Routing Strategy -----------------------------------------------------------


async def test_catch_all_routing_strategy() -> None:
    from repid import catch_all_routing_strategy

    router = Router()

    @router.actor(
        channel="user_tasks",
        routing_strategy=catch_all_routing_strategy,
    )
    async def process_everything_on_channel() -> None:
        # This will process any message arriving on the "user_tasks" channel
        pass

    app = _app(router)
    for headers in ({"topic": "whatever"}, None, {"action": "x"}):
        name, msg = await _route(app, "user_tasks", headers)
        assert name == "process_everything_on_channel" and msg.acked
    # only its channel, though
    async with TestClient(app) as client:
        await client.send_message_json(channel="other", payload={}, headers=None)
        assert client.get_processed_messages() == []


# --- Custom Routing Strategy --------------------------------------------------------------


async def test_custom_routing_strategy() -> None:
    from repid import BaseMessageT

    router = Router()

    def my_custom_routing_strategy(*, actor_name: str, **kwargs) -> callable:
        def strategy(message: BaseMessageT) -> bool:
            # Example: route based on a custom "action" header
            if message.headers is None:
                return False
            return message.headers.get("action") == actor_name

        return strategy

    @router.actor(
        channel="user_tasks",
        name="send_email_action",
        routing_strategy=my_custom_routing_strategy,
    )
    async def process_something() -> None:
        pass

    app = _app(router)
    name, msg = await _route(app, "user_tasks", {"action": "send_email_action"})
    assert name == "send_email_action" and msg.acked
    for headers in ({"topic": "send_email_action"}, None, {"action": "other"}):
        name, msg = await _route(app, "user_tasks", headers)
        assert name is None and msg.rejected


# --- Routing Priority & Fallbacks ---------------------------------------------------------


async def test_first_matching_actor_wins() -> None:
    from repid import catch_all_routing_strategy

    router = Router()

    @router.actor(channel="shared", routing_strategy=catch_all_routing_strategy)
    async def catch_all() -> None:
        pass

    @router.actor(channel="shared")
    async def specific() -> None:
        pass

    name, _ = await _route(_app(router), "shared", {"topic": "specific"})
    assert name == "catch_all"

    # Registered the other way round, the specific actor gets its topic first.
    other = Router()

    @other.actor(channel="shared")
    async def specific_first() -> None:
        pass

    @other.actor(channel="shared", routing_strategy=catch_all_routing_strategy)
    async def catch_all_second() -> None:
        pass

    app = _app(other)
    assert (await _route(app, "shared", {"topic": "specific_first"}))[0] == "specific_first"
    assert (await _route(app, "shared", {"topic": "unknown"}))[0] == "catch_all_second"


async def test_unrouted_message_becomes_poison_after_10_sightings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = Router()

    @router.actor(channel="user_tasks")
    async def known() -> None:
        pass

    app = _app(router)
    caplog.set_level(logging.WARNING)
    async with TestClient(app, auto_process=False) as client:
        await client.send_message_json(
            channel="user_tasks", payload={}, headers={"topic": "unknown"}
        )
        outcomes = []
        for _ in range(10):
            msg = await client.process_next()
            outcomes.append("nacked" if msg.nacked else "rejected" if msg.rejected else "?")
        assert await client.process_next() is None
        server = client.get_server()
        assert len(server.dead_letters["user_tasks"]) == 1
    assert outcomes == ["rejected"] * 9 + ["nacked"]
    poison = [r for r in caplog.records if "actor.route.poison_message" in r.getMessage()]
    assert len(poison) == 1
    assert poison[0].levelno == logging.ERROR


async def test_poison_message_on_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    # The same through the worker loop on the in-memory broker.
    router = Router()
    done: list[str] = []

    @router.actor(channel="user_tasks")
    async def known() -> None:
        done.append("known")

    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server)
    app.include_router(router)
    caplog.set_level(logging.ERROR)
    async with server.connection():
        await app.send_message_json(channel="user_tasks", payload={}, headers={"topic": "unknown"})
        await app.send_message_json(channel="user_tasks", payload={}, headers={"topic": "known"})
        info = await app.run_worker(messages_limit=1, register_signals=[])
    assert info.processed == 1
    assert done == ["known"]
    assert [m.headers for m in server.dead_letters["user_tasks"]] == [{"topic": "unknown"}]
    assert server.queued("user_tasks") == []
    assert any("actor.route.poison_message" in r.getMessage() for r in caplog.records)
