"""Point 9: the Message object."""

import json

import pytest

from repid import Message, MessageAction, Repid, Router, TestClient


async def test_message_properties_and_eager_actions() -> None:
    app = Repid()
    router = Router()
    seen = {}

    @router.actor(channel="c")
    async def a(user_id: int, message: Message) -> None:
        seen.update(
            payload=message.payload,
            headers=message.headers,
            channel=message.channel,
            message_id=message.message_id,
            content_type=message.content_type,
            before=message.is_acted_on,
        )
        if user_id < 0:
            await message.nack()
            await message.ack()  # ignored: a message is acted on once
            seen["after"] = message.action
            return

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="c",
            payload={"user_id": -1},
            headers={"topic": "a"},
            server_specific_parameters={"message_id": "m-1"},
        )
        [processed] = client.get_processed_messages()
    assert seen["payload"] == b'{"user_id":-1}'
    assert seen["headers"] == {"topic": "a"}
    assert seen["channel"] == "c"
    assert seen["message_id"] == "m-1"
    assert seen["content_type"] == "application/json"
    assert seen["before"] is False
    assert seen["after"] is MessageAction.NACKED
    assert processed.nacked and not processed.acked


async def test_reply_and_reply_json_publish_and_ack() -> None:
    app = Repid()
    router = Router()

    @router.actor(channel="rpc")
    async def raw(message: Message) -> None:
        await message.reply(payload=b"pong", channel="replies")

    @router.actor(channel="rpc")
    async def as_json(message: Message) -> None:
        await message.reply_json(payload={"status": "ok"})  # reply_to header

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message(channel="rpc", payload=b"", headers={"topic": "raw"})
        await client.send_message(
            channel="rpc", payload=b"", headers={"topic": "as_json", "reply_to": "answers"}
        )
        first, second = client.get_processed_messages()
        replies = client.get_sent_messages(channel="replies")
        answers = client.get_sent_messages(channel="answers")
    assert first.acked and first.replied and second.acked
    assert [m.payload for m in replies] == [b"pong"]
    assert json.loads(answers[0].payload) == {"status": "ok"}
    assert answers[0].content_type == "application/json"


async def test_reply_without_destination_is_a_clear_error() -> None:
    app = Repid()
    router = Router()

    @router.actor
    async def a(message: Message) -> None:
        await message.reply(payload=b"x")

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message(channel="default", payload=b"", headers={"topic": "a"})
        [msg] = client.get_processed_messages()
    assert isinstance(msg.exception, ValueError)
    assert "reply_to" in str(msg.exception)
    assert msg.nacked  # the error went to on_error; nothing was half-done


async def test_send_message_from_an_actor_uses_same_server(memory_app) -> None:
    app, server = memory_app
    router = Router()

    @router.actor(channel="registration")
    async def create_user(username: str, message: Message) -> None:
        await message.send_message_json(
            channel="email",
            payload={"username": username},
            headers={"topic": "send_welcome_email"},
        )
        await message.send_message(channel="raw", payload=b"r", content_type="text/plain")

    app.include_router(router)
    await app.send_message_json(
        channel="registration", payload={"username": "A"}, headers={"topic": "create_user"}
    )
    await app.run_worker(messages_limit=1, register_signals=[])
    assert [json.loads(m.payload) for m in server.queued("email")] == [{"username": "A"}]
    assert server.queued("raw")[0].content_type == "text/plain"


@pytest.mark.parametrize("first", ["ack", "nack", "reject"])
async def test_second_action_is_ignored(memory_app, first) -> None:
    app, server = memory_app
    router = Router()

    @router.actor
    async def a(message: Message) -> None:
        await getattr(message, first)()
        for action in ("ack", "nack", "reject"):
            await getattr(message, action)()

    app.include_router(router)
    await app.send_message(channel="default", payload=b"", headers={"topic": "a"})
    runner = app.create_runner(messages_limit=1)
    await runner.run(())
    queued, dead = server.queued("default"), server.dead_letters.get("default", [])
    assert (len(queued), len(dead)) == {"ack": (0, 0), "nack": (0, 1), "reject": (1, 0)}[first]
