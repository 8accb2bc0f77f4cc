"""Point 1-3 of the message layer: the app, its registries and sending."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from repid import (
    Contact,
    ExternalDocs,
    InMemoryServer,
    License,
    NoServerRegisteredError,
    OperationNotFoundError,
    Repid,
    ServerNotConnectedError,
    ServerNotFoundError,
    Tag,
)


def test_repid_accepts_all_documented_arguments() -> None:
    def serializer(data: object) -> bytes:
        return b"x"

    app = Repid(
        title="T",
        version="1.2.3",
        description="D",
        terms_of_service="https://example.com/tos",
        contact=Contact(name="Support", url="https://example.com", email="s@example.com"),
        license=License(name="MIT", url="https://opensource.org/licenses/MIT"),
        tags=[Tag(name="orders", description="Order jobs")],
        external_docs=ExternalDocs(url="https://example.com/docs"),
        default_serializer=serializer,
        actor_middlewares=[],
        producer_middlewares=[],
    )
    assert app.title == "T"
    assert app.version == "1.2.3"
    assert app.contact is not None and app.contact.email == "s@example.com"
    assert app.license is not None and app.license.name == "MIT"
    assert app.tags == [Tag(name="orders", description="Order jobs")]
    assert app.default_serializer is serializer


def test_first_registered_server_is_default_until_overridden() -> None:
    app = Repid()
    first, second, third = InMemoryServer(), InMemoryServer(), InMemoryServer()
    app.servers.register_server("first", first)
    app.servers.register_server("second", second)
    assert app.servers.default is first
    app.servers.register_server("third", third, is_default=True)
    assert app.servers.default is third
    assert app.servers.get_server("second") is second
    assert app.servers["first"] is first
    app.servers.set_default_server("second")
    assert app.servers.default is second


def test_server_registry_errors_name_the_problem() -> None:
    app = Repid()
    with pytest.raises(NoServerRegisteredError, match="no server is registered"):
        _ = app.servers.default
    app.servers.register_server("a", InMemoryServer())
    with pytest.raises(ServerNotFoundError, match="'missing'.*registered: 'a'"):
        app.servers.get_server("missing")
    with pytest.raises(ValueError, match="already registered"):
        app.servers.register_server("a", InMemoryServer())
    with pytest.raises(ServerNotFoundError):
        app.servers.set_default_server("nope")


def test_message_registry_operations() -> None:
    app = Repid()
    op = app.messages.register_operation(
        operation_id="send_welcome_email",
        channel="email_queue",
        title="Send Welcome Email",
        description="Publishes a message to send a welcome email.",
    )
    found = app.messages.get_operation("send_welcome_email")
    assert found is op
    assert found.channel.address == "email_queue"
    assert found.title == "Send Welcome Email"
    with pytest.raises(ValueError, match="already registered"):
        app.messages.register_operation(operation_id="send_welcome_email", channel="x")
    with pytest.raises(OperationNotFoundError, match="'nope'"):
        app.messages.get_operation("nope")


async def test_send_message_raw_bytes_with_headers_and_content_type(memory_app) -> None:
    app, server = memory_app
    await app.send_message(
        channel="my_channel",
        payload=b"Hello, world!",
        content_type="text/plain",
        headers={"topic": "my_actor"},
    )
    [stored] = server.queued("my_channel")
    assert stored.payload == b"Hello, world!"
    assert stored.content_type == "text/plain"
    assert stored.headers == {"topic": "my_actor"}


class Inner(BaseModel):
    x: int


class Outer(BaseModel):
    user_id: int
    actions: list[str]
    inner: Inner


async def test_send_message_json_serializes_dicts_lists_and_models(memory_app) -> None:
    app, server = memory_app
    await app.send_message_json(channel="c", payload={"a": [1, 2], "m": Inner(x=1)})
    await app.send_message_json(channel="c", payload=[1, "two"])
    await app.send_message_json(
        channel="c", payload=Outer(user_id=1, actions=["a"], inner=Inner(x=2))
    )
    payloads = [json.loads(m.payload) for m in server.queued("c")]
    assert payloads == [
        {"a": [1, 2], "m": {"x": 1}},
        [1, "two"],
        {"user_id": 1, "actions": ["a"], "inner": {"x": 2}},
    ]
    assert {m.content_type for m in server.queued("c")} == {"application/json"}


async def test_send_by_operation_id_uses_its_channel(memory_app) -> None:
    app, server = memory_app
    app.messages.register_operation(operation_id="op", channel="email_queue")
    await app.send_message_json(operation_id="op", payload={"user_id": 123})
    assert len(server.queued("email_queue")) == 1


async def test_channel_and_operation_id_are_exclusive(memory_app) -> None:
    app, _ = memory_app
    app.messages.register_operation(operation_id="op", channel="q")
    with pytest.raises(ValueError, match="not both"):
        await app.send_message(channel="q", operation_id="op", payload=b"")
    with pytest.raises(ValueError, match="channel= or operation_id="):
        await app.send_message(payload=b"")
    with pytest.raises(OperationNotFoundError):
        await app.send_message(operation_id="unknown", payload=b"")


async def test_send_message_rejects_non_bytes(memory_app) -> None:
    app, _ = memory_app
    with pytest.raises(TypeError, match="send_message_json"):
        await app.send_message(channel="q", payload={"a": 1})  # type: ignore[arg-type]


async def test_server_name_and_server_specific_parameters(memory_app) -> None:
    app, default = memory_app
    other = InMemoryServer()
    app.servers.register_server("other", other)
    async with other.connection():
        await app.send_message(
            channel="q",
            payload=b"1",
            server_name="other",
            server_specific_parameters={"message_id": "my-id"},
        )
    assert default.queued("q") == []
    assert [m.message_id for m in other.queued("q")] == ["my-id"]


async def test_sending_on_a_disconnected_server_says_so() -> None:
    app = Repid()
    app.servers.register_server("main", InMemoryServer())
    with pytest.raises(ServerNotConnectedError, match="'main'.*not connected"):
        await app.send_message(channel="q", payload=b"")


async def test_sending_with_no_server_says_so() -> None:
    app = Repid()
    with pytest.raises(NoServerRegisteredError, match="register_server"):
        await app.send_message_json(channel="q", payload={})


def test_default_serializer_option_is_used() -> None:
    calls = []

    def upper(data: object) -> bytes:
        calls.append(data)
        return json.dumps(data).upper().encode()

    app = Repid(default_serializer=upper)
    assert app.default_serializer({"a": "b"}) == b'{"A": "B"}'
    assert calls == [{"a": "b"}]
