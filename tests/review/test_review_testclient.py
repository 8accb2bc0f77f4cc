"""TestClient with several servers, filters, ordering and replies."""

from __future__ import annotations

import pytest

from repid import InMemoryServer, Message, Repid, Router, TestClient


def _two_channel_app() -> Repid:
    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    app.servers.register_server("other", InMemoryServer())
    app.messages.register_operation(operation_id="op_b", channel="b")
    router = Router()

    @router.actor(channel="a")
    async def first(message: Message) -> str:
        await message.send_message_json(
            operation_id="op_b", payload={}, headers={"topic": "second"}
        )
        return "first"

    @router.actor(channel="b")
    async def second() -> str:
        return "second"

    app.include_router(router)
    return app


async def test_process_next_takes_oldest_message() -> None:
    app = _two_channel_app()
    async with TestClient(app, auto_process=False) as client:
        await client.send_message_json(channel="b", payload={}, headers={"topic": "second"})
        await client.send_message_json(channel="a", payload={}, headers={"topic": "first"})
        message = await client.process_next()
        assert message is not None and message.actor_name == "second"


async def test_several_servers_and_operation_filters() -> None:
    app = _two_channel_app()
    originals = {name: app.servers[name] for name in app.servers}
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="a", payload={}, headers={"topic": "first"}, server_name="other"
        )
        processed = client.get_processed_messages()
        assert [(m.actor_name, m.server_name) for m in processed] == [
            ("first", "other"),
            ("second", "other"),  # chained on the server the message came from
        ]
        assert [m.channel for m in client.get_sent_messages(operation_id="op_b")] == ["b"]
        assert [m.actor_name for m in client.get_processed_messages(operation_id="op_b")] == [
            "second"
        ]
        with pytest.raises(ValueError):
            client.get_sent_messages(channel="a", operation_id="op_b")
    assert {name: app.servers[name] for name in app.servers} == originals


async def test_reply_without_reply_to_is_an_error_and_reply_to_header_works() -> None:
    router = Router()

    @router.actor(channel="c")
    async def answer(message: Message) -> None:
        await message.reply_json(payload={"ok": True})

    app = Repid()
    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={}, headers={"topic": "answer"})
        await client.send_message_json(
            channel="c", payload={}, headers={"topic": "answer", "reply_to": "replies"}
        )
        failed, replied = client.get_processed_messages()
        assert isinstance(failed.exception, ValueError) and failed.nacked
        assert replied.replied and replied.acked
        assert [m.payload for m in client.get_sent_messages(channel="replies")] == [b'{"ok":true}']


async def test_send_without_open_client_raises() -> None:
    client = TestClient(Repid())
    with pytest.raises(RuntimeError):
        await client.send_message(channel="c", payload=b"x")
