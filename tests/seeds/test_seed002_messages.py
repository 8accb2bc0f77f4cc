"""Seed 002, "Message Registry", "Messages", "Raw Message & Eager response", "Server Registry"
and "Server Specific Parameters": the examples, verbatim, on the in-memory broker.

Snippets that use `await` at top level run inside an `async def main()` here; the app and
server they assume come from the nearest preceding example. `AmqpServer`/`RedisServer` are
constructed only in `test_registering_servers_with_amqp_and_redis`; the registry's behaviour
is checked with in-memory servers registered under the same names.
"""

import json
import logging
from typing import Annotated, Any

import pytest

from repid import (
    InMemoryServer,
    Message,
    OperationNotFoundError,
    Repid,
    Router,
    ServerNotFoundError,
)


def _connected_app() -> tuple[Repid, InMemoryServer]:
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server, is_default=True)
    return app, server


def _only(server: InMemoryServer, channel: str) -> Any:
    (stored,) = server.queued(channel)
    return stored


# --- Message Registry ---------------------------------------------------------------------


def _registry_app() -> Repid:
    from repid import Repid

    app = Repid()
    app.messages.register_operation(
        operation_id="send_welcome_email",
        channel="email_queue",
        title="Send Welcome Email",
        description="Publishes a message to send a welcome email to a newly registered user.",
    )
    return app


async def test_using_operations() -> None:
    app = _registry_app()
    server = InMemoryServer()
    app.servers.register_server("default", server)
    async with server.connection():
        await app.send_message_json(
            operation_id="send_welcome_email",
            payload={"user_id": 123},
            headers={"topic": "send_email_actor"},
        )
    # Added: "Repid ... routes the message to the underlying channel ("email_queue")".
    stored = _only(server, "email_queue")
    assert json.loads(stored.payload) == {"user_id": 123}
    assert stored.headers == {"topic": "send_email_actor"}


async def test_operation_id_and_channel_are_exclusive() -> None:
    # "You must provide either an operation_id or a channel ..., but never both."
    app = _registry_app()
    server = InMemoryServer()
    app.servers.register_server("default", server)
    async with server.connection():
        with pytest.raises(ValueError, match="not both"):
            await app.send_message_json(
                operation_id="send_welcome_email", channel="email_queue", payload={}
            )
        with pytest.raises(ValueError, match="channel= or operation_id="):
            await app.send_message(payload=b"")
        with pytest.raises(OperationNotFoundError):
            await app.send_message(operation_id="nope", payload=b"")
    assert server.queued("email_queue") == []


def test_retrieving_operations(capsys: pytest.CaptureFixture[str]) -> None:
    app = _registry_app()
    operation = app.messages.get_operation("send_welcome_email")
    print(operation.channel.address)  # "email_queue"
    print(operation.title)  # "Send Welcome Email"
    assert capsys.readouterr().out == "email_queue\nSend Welcome Email\n"
    assert operation.description == (
        "Publishes a message to send a welcome email to a newly registered user."
    )


# --- Messages: Sending raw data -----------------------------------------------------------


async def test_sending_raw_data() -> None:
    import asyncio  # noqa: F401

    from repid import InMemoryServer, Repid

    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)

    async def main():
        # A connection must be active to publish!
        async with app.servers.default.connection():
            await app.send_message(
                channel="my_channel",
                payload=b"Hello, world!",
                content_type="text/plain",
                headers={"topic": "my_actor"},  # Routing topic
            )

    await main()  # seed: if __name__ == "__main__": asyncio.run(main())

    stored = _only(app.servers.default, "my_channel")
    assert stored.payload == b"Hello, world!"
    assert stored.content_type == "text/plain"
    assert stored.headers == {"topic": "my_actor"}


async def test_send_message_refuses_non_bytes() -> None:
    app, server = _connected_app()
    async with server.connection():
        with pytest.raises(TypeError, match="bytes"):
            await app.send_message(channel="c", payload="text")  # type: ignore[arg-type]


# --- Messages: Sending JSON / Channels vs Operation IDs -----------------------------------


async def test_sending_json() -> None:
    app, server = _connected_app()
    async with server.connection():
        await app.send_message_json(
            channel="email_queue",
            payload={
                "to": "user@example.com",
                "subject": "Welcome!",
            },
            headers={"topic": "send_welcome_email"},
        )
        # "1. Channels (Basic Routing)"
        await app.send_message_json(
            channel="email_queue", payload={"msg": "hi"}, headers={"topic": "send_welcome_email"}
        )
        # "2. Operation IDs (Advanced Routing)"
        # During setup, tell Repid that the "send_welcome_email" operation
        # happens on "email_queue"
        app.messages.register_operation(operation_id="send_welcome_email", channel="email_queue")

        # Later, send by operation_id instead of channel!
        await app.send_message_json(
            operation_id="send_welcome_email",
            payload={"user_id": 123},
            headers={"topic": "send_welcome_email"},
        )
        # Added: lists are JSON too.
        await app.send_message_json(channel="email_queue", payload=[1, "two"])

    queued = server.queued("email_queue")
    assert [json.loads(m.payload) for m in queued] == [
        {"to": "user@example.com", "subject": "Welcome!"},
        {"msg": "hi"},
        {"user_id": 123},
        [1, "two"],
    ]
    assert {m.content_type for m in queued} == {"application/json"}
    assert [m.headers for m in queued[:3]] == [{"topic": "send_welcome_email"}] * 3


# --- Raw Message & Eager response: the Message object --------------------------------------


async def test_the_message_object(capsys: pytest.CaptureFixture[str]) -> None:
    from typing import Annotated  # noqa: F401

    from repid import Message, Router

    router = Router()

    @router.actor
    async def my_actor(message: Message) -> None:
        print(message.payload)
        # Raw bytes payload
        print(message.headers)
        # Dictionary of headers
        print(message.channel)
        # The channel this message was received from
        print(message.message_id)
        # The unique ID of the message (if supported by broker)

    app, server = _connected_app()
    app.include_router(router)
    async with server.connection():
        await app.send_message(
            channel="default",
            payload=b'{"a": 1}',
            headers={"topic": "my_actor"},
            server_specific_parameters={"message_id": "msg-1"},
        )
        info = await app.run_worker(messages_limit=1, register_signals=[])
    assert info.processed == 1
    assert capsys.readouterr().out == "b'{\"a\": 1}'\n{'topic': 'my_actor'}\ndefault\nmsg-1\n"
    assert server.queued("default") == []


# --- Eager responses ------------------------------------------------------------------------


async def test_eager_responses() -> None:
    from repid import Message, Router

    events: list[str] = []

    async def do_heavy_lifting(user_id: int) -> None:
        # The user's own function; records whether the message was already settled.
        events.append(f"heavy {user_id} after ack={current[0].is_acted_on}")

    current: list[Message] = []

    router = Router()

    @router.actor
    async def my_actor(user_id: int, message: Message) -> None:
        current[:] = [message]
        if user_id < 0:
            # Invalid user_id. Nack the message immediately.
            await message.nack()
            return
        # Acknowledge early - fire-and-forget pattern
        await message.ack()
        # Now we can do some long-running processing...
        await do_heavy_lifting(user_id)

    app, server = _connected_app()
    app.include_router(router)
    async with server.connection():
        for user_id in (5, -1):
            await app.send_message_json(
                channel="default",
                payload={"user_id": user_id},
                headers={"topic": "my_actor"},
                server_specific_parameters={"message_id": f"user-{user_id}"},
            )
        info = await app.run_worker(messages_limit=2, register_signals=[])
    assert info.processed == 2
    assert events == ["heavy 5 after ack=True"]
    assert server.queued("default") == []
    assert [m.message_id for m in server.dead_letters["default"]] == ["user--1"]


async def test_message_is_acted_on_once() -> None:
    # "Message can only be acted on once. Any later actions are discarded."
    router = Router()
    seen: list[tuple[bool, bool]] = []

    @router.actor
    async def my_actor(message: Message) -> None:
        before = message.is_acted_on
        await message.ack()
        await message.nack()  # discarded
        await message.reject()  # discarded
        seen.append((before, message.is_acted_on))

    app, server = _connected_app()
    app.include_router(router)
    async with server.connection():
        await app.send_message(channel="default", payload=b"{}", headers={"topic": "my_actor"})
        await app.run_worker(messages_limit=1, register_signals=[])
    assert seen == [(False, True)]
    assert server.queued("default") == []
    assert server.dead_letters == {}


async def test_reply_json_acknowledges_and_replies() -> None:
    # "await message.reply_json(payload={"status": "ok"})": acknowledges and replies. The
    # in-memory broker replies to the message's `reply_to` header.
    router = Router()

    @router.actor
    async def my_actor(message: Message) -> None:
        await message.reply_json(payload={"status": "ok"})

    @router.actor
    async def raw_reply(message: Message) -> None:
        await message.reply(payload=b"...")

    app, server = _connected_app()
    app.include_router(router)
    async with server.connection():
        for topic in ("my_actor", "raw_reply"):
            await app.send_message(
                channel="default", payload=b"{}", headers={"topic": topic, "reply_to": "answers"}
            )
        await app.run_worker(messages_limit=2, register_signals=[])
    replies = server.queued("answers")
    assert [m.channel for m in replies] == ["answers", "answers"]
    assert json.loads(replies[0].payload) == {"status": "ok"}
    assert replies[1].payload == b"..."
    assert replies[0].content_type == "application/json"
    assert server.queued("default") == []
    assert server.dead_letters == {}


# --- Sending New Messages ---------------------------------------------------------------


async def test_sending_new_messages() -> None:
    from repid import Message, Router

    router = Router()

    @router.actor
    async def process_order(order_id: int, message: Message) -> None:
        # Process the order here...
        # Send an event to another channel
        await message.send_message_json(
            channel="notifications", payload={"event": "order_processed", "order_id": order_id}
        )

    app, server = _connected_app()
    app.include_router(router)
    async with server.connection():
        await app.send_message_json(
            channel="default", payload={"order_id": 9}, headers={"topic": "process_order"}
        )
        await app.run_worker(messages_limit=1, register_signals=[])
    stored = _only(server, "notifications")
    assert json.loads(stored.payload) == {"event": "order_processed", "order_id": 9}
    assert server.queued("default") == []


# --- Server Registry ----------------------------------------------------------------------


def test_registering_servers_with_amqp_and_redis() -> None:
    # Construction only: the example's own lines, with the real server classes.
    pytest.importorskip("repid.connections.amqp")
    pytest.importorskip("repid.connections.redis")
    try:
        from repid import AmqpServer, RedisServer  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"a server class is not importable yet: {exc}")

    from repid import AmqpServer, RedisServer, Repid

    app = Repid()

    # Registering a RabbitMQ server
    app.servers.register_server("rabbitmq", AmqpServer("amqp://localhost"), is_default=True)

    # Registering a Redis server at the same time
    app.servers.register_server("redis", RedisServer("redis://localhost"))

    # Added: the documented registry behaviour, with no connection made.
    assert isinstance(app.servers.get_server("rabbitmq"), AmqpServer)
    assert isinstance(app.servers["redis"], RedisServer)
    assert app.servers.default is app.servers["rabbitmq"]
    app.servers.set_default_server("redis")
    assert app.servers.default is app.servers["redis"]
    assert not app.servers["rabbitmq"].is_connected
    assert not app.servers["redis"].is_connected


def test_registering_redis_server_alone() -> None:
    # RedisServer exists even while AmqpServer may not: check it on its own too.
    pytest.importorskip("repid.connections.redis")
    from repid import RedisServer

    app = Repid()
    app.servers.register_server("redis", RedisServer("redis://localhost"))
    assert app.servers.default is app.servers["redis"]  # first registered is the default
    assert not app.servers.default.is_connected


async def test_server_registry_behaviour() -> None:
    app = Repid()
    rabbitmq = InMemoryServer()  # seed: AmqpServer("amqp://localhost")
    redis = InMemoryServer()  # seed: RedisServer("redis://localhost")
    app.servers.register_server("rabbitmq", rabbitmq, is_default=True)
    app.servers.register_server("redis", redis)

    # Retrieving Servers
    # Returns the server registered as "rabbitmq"
    server = app.servers.get_server("rabbitmq")
    assert server is rabbitmq
    server = app.servers["rabbitmq"]
    assert server is rabbitmq
    # Default Server
    default_server = app.servers.default
    assert default_server is rabbitmq

    # Usage in Routing and Workers
    async with rabbitmq.connection(), redis.connection():
        # Will use the default server
        await app.send_message(channel="tasks", payload=b"...")

        # Will explicitly use the "redis" server
        await app.send_message(channel="tasks", payload=b"...", server_name="redis")
    assert [m.payload for m in rabbitmq.queued("tasks")] == [b"..."]
    assert [m.payload for m in redis.queued("tasks")] == [b"..."]

    app.servers.set_default_server("redis")
    assert app.servers.default is redis

    # Added: errors name the problem.
    with pytest.raises(ServerNotFoundError, match="nope"):
        app.servers.get_server("nope")
    with pytest.raises(ValueError, match="already registered"):
        app.servers.register_server("redis", InMemoryServer())


async def test_first_registered_server_is_default() -> None:
    app = Repid()
    first, second = InMemoryServer(), InMemoryServer()
    app.servers.register_server("first", first)
    app.servers.register_server("second", second)
    assert app.servers.default is first


async def test_sending_with_no_server_registered_says_so() -> None:
    app = Repid()
    with pytest.raises(Exception, match="no server is registered"):
        await app.send_message(channel="tasks", payload=b"...")


async def test_run_worker_on_named_server() -> None:
    # "Runs a worker consuming from the explicit "redis" server"
    app = Repid()
    rabbitmq, redis = InMemoryServer(), InMemoryServer()
    app.servers.register_server("rabbitmq", rabbitmq, is_default=True)
    app.servers.register_server("redis", redis)
    router = Router()
    got: list[str] = []

    @router.actor(channel="tasks")
    async def work(where: str) -> None:
        got.append(where)

    app.include_router(router)
    async with rabbitmq.connection(), redis.connection():
        await app.send_message_json(
            channel="tasks",
            payload={"where": "redis"},
            headers={"topic": "work"},
            server_name="redis",
        )
        await app.send_message_json(
            channel="tasks", payload={"where": "rabbitmq"}, headers={"topic": "work"}
        )
        await app.run_worker(server_name="redis", messages_limit=1, register_signals=[])
    assert got == ["redis"]
    assert redis.queued("tasks") == []
    assert len(rabbitmq.queued("tasks")) == 1


# --- Server Specific Parameters -----------------------------------------------------------


async def test_publishing_with_parameters_unknown_keys_are_ignored() -> None:
    app, server = _connected_app()
    async with server.connection():
        await app.send_message_json(
            channel="tasks",
            payload={"task": "process_video"},
            headers={"topic": "video_worker"},
            server_specific_parameters={
                # Your broker-specific flags go here
            },
        )
        # Added: a key the in-memory broker does not know is ignored.
        await app.send_message_json(
            channel="tasks", payload={}, server_specific_parameters={"maxlen": 10}
        )
    assert len(server.queued("tasks")) == 2


async def test_in_memory_message_id_parameter() -> None:
    # "message_id (str): Explicitly set the unique ID ... If omitted, a random UUID is generated."
    app, server = _connected_app()
    async with server.connection():
        await app.send_message(
            channel="tasks", payload=b"1", server_specific_parameters={"message_id": "fixed-id"}
        )
        await app.send_message(channel="tasks", payload=b"2")
    first, second = server.queued("tasks")
    assert first.message_id == "fixed-id"
    import uuid

    uuid.UUID(second.message_id)  # a UUID


async def test_amqp_parameters_on_in_memory_broker(caplog: pytest.LogCaptureFixture) -> None:
    # The AMQP example's objects; on the in-memory broker they are ignored (the AMQP tests
    # cover what they do on RabbitMQ).
    amqp = pytest.importorskip("repid.connections.amqp")
    if not hasattr(amqp, "AmqpMessageHeader"):
        pytest.skip("repid.connections.amqp.AmqpMessageHeader is not there yet")
    from repid.connections.amqp import AmqpMessageHeader, AmqpMessageProperties

    app, server = _connected_app()
    caplog.set_level(logging.DEBUG)
    async with server.connection():
        await app.send_message_json(
            channel="tasks",
            payload={"msg": "hello"},
            server_specific_parameters={
                "header": AmqpMessageHeader(
                    durable=True,
                    priority=10,
                    ttl=5000,  # Time to live in ms
                    delivery_count=0,
                ),
                "properties": AmqpMessageProperties(
                    subject="task_subject",
                    reply_to="reply_queue",
                    group_id="group_1",
                    absolute_expiry_time=1700000000,
                ),
                "routing_key": "my.custom.routing.key",
            },
        )
    assert json.loads(_only(server, "tasks").payload) == {"msg": "hello"}


# --- Using Pydantic & FastAPI: Submitting Pydantic Models as Payloads ------------------------


async def test_submitting_pydantic_models_as_payloads() -> None:
    from pydantic import BaseModel

    from repid import Repid

    app = Repid()

    class MyPydanticModel(BaseModel):
        user_id: int
        actions: list[str]

    server = InMemoryServer()
    app.servers.register_server("default", server)

    async def inside_an_async_function():
        # Inside an async function:
        await app.send_message_json(
            channel="some_channel",
            payload=MyPydanticModel(
                user_id=123,
                actions=["First action"],
            ),
        )

    async with server.connection():
        await inside_an_async_function()
        # "You can also nest Pydantic models inside dictionaries or lists"
        await app.send_message_json(
            channel="some_channel",
            payload={
                "batch": [MyPydanticModel(user_id=1, actions=[]), {"raw": True}],
                "single": MyPydanticModel(user_id=2, actions=["a", "b"]),
            },
        )
    first, nested = server.queued("some_channel")
    assert json.loads(first.payload) == {"user_id": 123, "actions": ["First action"]}
    assert first.content_type == "application/json"
    assert json.loads(nested.payload) == {
        "batch": [{"user_id": 1, "actions": []}, {"raw": True}],
        "single": {"user_id": 2, "actions": ["a", "b"]},
    }


async def test_pydantic_model_payload_round_trip_to_actor() -> None:
    # Added: a model sent by a producer arrives as the same model in a FullPayload actor.
    from pydantic import BaseModel

    from repid import FullPayload, TestClient

    class Order(BaseModel):
        order_id: int
        items: list[str]

    router = Router()

    @router.actor
    async def take(order: Annotated[Order, FullPayload()]) -> Order:
        return order

    app = Repid()
    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="default", payload=Order(order_id=5, items=["x"]), headers={"topic": "take"}
        )
        (processed,) = client.get_processed_messages()
    assert processed.result == Order(order_id=5, items=["x"])


def test_register_operation_with_channel_object_and_metadata() -> None:
    # "channel: The physical channel (or Channel object)" and the AsyncAPI metadata arguments.
    from repid import Channel, ExternalDocs, Tag

    app = Repid()
    operation = app.messages.register_operation(
        operation_id="notify",
        channel=Channel(address="notifications", title="Notifications"),
        title="Notify",
        summary="Send a notification",
        description="Longer text",
        messages=[],
        security=[],
        tags=[Tag(name="n")],
        external_docs=ExternalDocs(url="https://example.com"),
        bindings={},
    )
    assert app.messages.get_operation("notify") is operation
    assert operation.channel.address == "notifications"
    assert operation.summary == "Send a notification"
    with pytest.raises(ValueError, match="already registered"):
        app.messages.register_operation(operation_id="notify", channel="x")


# --- AsyncAPI Schema & Server: Defining the Application Metadata ---------------------------


def test_defining_the_application_metadata() -> None:
    from repid import Contact, License, Repid

    app = Repid(
        title="My Repid Task Queue",
        version="1.0.0",
        description="Background task queue processing orders.",
        contact=Contact(name="Support", url="https://example.com", email="support@example.com"),
        license=License(name="MIT", url="https://opensource.org/licenses/MIT"),
    )
    assert (app.title, app.version, app.description) == (
        "My Repid Task Queue",
        "1.0.0",
        "Background task queue processing orders.",
    )
    assert app.contact == Contact(
        name="Support", url="https://example.com", email="support@example.com"
    )
    assert app.license == License(name="MIT", url="https://opensource.org/licenses/MIT")


async def test_message_dependency_alias() -> None:
    # "Under the hood, this uses the MessageDependency alias in Repid's dependency injection."
    from repid import MessageDependency, TestClient

    router = Router()

    @router.actor
    async def by_alias(raw: Annotated[Any, MessageDependency()]) -> str:
        return f"{raw.channel}:{raw.payload.decode()}"

    app = Repid()
    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message(channel="default", payload=b"{}", headers={"topic": "by_alias"})
        (processed,) = client.get_processed_messages()
    assert processed.result == "default:{}"
    assert processed.acked


async def test_message_send_message_by_operation_id() -> None:
    router = Router()

    @router.actor
    async def forward(message: Message) -> None:
        await message.send_message(
            operation_id="audit", payload=b"seen", headers={"topic": "audit"}
        )

    app, server = _connected_app()
    app.messages.register_operation(operation_id="audit", channel="audit_log")
    app.include_router(router)
    async with server.connection():
        await app.send_message(channel="default", payload=b"{}", headers={"topic": "forward"})
        await app.run_worker(messages_limit=1, register_signals=[])
    stored = _only(server, "audit_log")
    assert (stored.payload, stored.headers) == (b"seen", {"topic": "audit"})
