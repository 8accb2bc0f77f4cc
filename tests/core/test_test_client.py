"""Point 14: TestClient and TestMessage."""

import pytest

from repid import InMemoryServer, Message, Repid, Router, TestClient


def make_app() -> Repid:
    app = Repid(title="My App")
    router = Router()

    @router.actor(channel="user_messages")
    async def actor_with_args(user_id: int, user_name: str, user_messages: list[str]) -> list[str]:
        user_messages.append(f"Hi {user_name}! Your id is: {user_id}.")
        return user_messages

    @router.actor(channel="chain")
    async def first(message: Message) -> None:
        await message.send_message_json(
            channel="user_messages",
            payload={"user_id": 1, "user_name": "B", "user_messages": []},
            headers={"topic": "actor_with_args"},
        )

    @router.actor(channel="user_messages")
    async def failing() -> None:
        raise RuntimeError("nope")

    app.include_router(router)
    return app


PAYLOAD = {"user_id": 123, "user_name": "Alex", "user_messages": []}


async def test_auto_process_runs_chains() -> None:
    app = make_app()
    async with TestClient(app) as client:
        await client.send_message_json(channel="chain", payload={}, headers={"topic": "first"})
        processed = client.get_processed_messages()
    assert [m.actor_name for m in processed] == ["first", "actor_with_args"]
    assert processed[1].result == ["Hi B! Your id is: 1."]
    assert all(m.success and m.acked for m in processed)


async def test_manual_processing_and_filters() -> None:
    app = make_app()
    app.messages.register_operation(operation_id="greet", channel="user_messages")
    async with TestClient(app, auto_process=False) as client:
        await client.send_message_json(
            operation_id="greet", payload=PAYLOAD, headers={"topic": "actor_with_args"}
        )
        await client.send_message_json(channel="chain", payload={}, headers={"topic": "first"})
        assert client.get_processed_messages() == []
        assert len(client.get_sent_messages()) == 2
        assert len(client.get_sent_messages(operation_id="greet")) == 1
        assert len(client.get_sent_messages(channel="chain")) == 1
        msg = await client.process_next()
        assert msg is not None and msg.result == ["Hi Alex! Your id is: 123."]
        assert (msg.acked, msg.nacked, msg.rejected, msg.exception) == (True, False, False, None)
        await client.process_next()  # "first", which sends one more
        await client.process_next()
        assert await client.process_next() is None
        assert len(client.get_processed_messages(channel="user_messages")) == 2
        # Only the message sent with the operation id, not every one of its channel.
        assert len(client.get_processed_messages(operation_id="greet")) == 1


async def test_failures_are_recorded() -> None:
    app = make_app()
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="user_messages", payload={}, headers={"topic": "failing"}
        )
        [msg] = client.get_processed_messages()
    assert msg.success is False
    assert isinstance(msg.exception, RuntimeError)
    assert msg.nacked and not msg.acked


async def test_original_servers_are_restored_and_untouched() -> None:
    app = make_app()
    real = InMemoryServer()
    app.servers.register_server("main", real)
    async with TestClient(app) as client:
        assert app.servers["main"] is not real
        await client.send_message_json(
            channel="user_messages", payload=PAYLOAD, headers={"topic": "actor_with_args"}
        )
    assert app.servers["main"] is real
    assert real.queued("user_messages") == []


async def test_client_must_be_entered() -> None:
    client = TestClient(make_app())
    with pytest.raises(RuntimeError, match="async with"):
        await client.process_next()
