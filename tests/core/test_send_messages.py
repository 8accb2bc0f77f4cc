"""`Repid.send_messages` / `send_messages_json`: grouping, middlewares, results, fallback."""

from __future__ import annotations

from typing import Any

import pytest

from repid import (
    BatchPublisherT,
    BatchSendError,
    InMemoryServer,
    MessageData,
    OutgoingMessage,
    Repid,
    SendResults,
    ServerNotConnectedError,
)


class RecordingServer(InMemoryServer):
    """The in-memory server, recording each publish_batch call."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[str, int, dict[str, Any] | None]] = []

    async def publish_batch(
        self,
        *,
        channel: str,
        messages: Any,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> list[str]:
        self.batches.append((channel, len(messages), server_specific_parameters))
        return await super().publish_batch(
            channel=channel,
            messages=messages,
            server_specific_parameters=server_specific_parameters,
        )


class NoBatchServer(InMemoryServer):
    """A server without publish_batch (as a third-party one may be): the fallback path."""

    publish_batch = None  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.published: list[str] = []

    async def publish(self, *, channel: str, message: MessageData, **kwargs: Any) -> None:
        if message.payload == b'"refuse"':
            raise RuntimeError("refused by the broker")
        self.published.append(channel)
        await super().publish(channel=channel, message=message, **kwargs)


def _app(server: InMemoryServer, **kwargs: Any) -> Repid:
    app = Repid(**kwargs)
    app.servers.register_server("m", server, is_default=True)
    return app


async def test_groups_per_channel_and_parameters_in_order() -> None:
    server = RecordingServer()
    app = _app(server)
    high = {"priority": 5}
    messages = [
        OutgoingMessage(channel="a", payload={"n": 0}),
        OutgoingMessage(channel="b", payload={"n": 1}, headers={"topic": "t"}),
        OutgoingMessage(channel="a", payload={"n": 2}),
        OutgoingMessage(channel="a", payload={"n": 3}, server_specific_parameters=high),
    ]
    async with server.connection():
        results = await app.send_messages_json(messages)
        assert isinstance(results, SendResults) and results.ok and len(results) == 4
        assert sorted(server.batches, key=str) == sorted(
            [("a", 2, None), ("b", 1, None), ("a", 1, high)], key=str
        )
        queued = server.queued("a")
        assert [m.payload for m in queued] == [b'{"n":3}', b'{"n":0}', b'{"n":2}']  # priority
        assert {m.message_id for m in queued} == {results[0].message_id, results[2].message_id,
                                                   results[3].message_id}  # fmt: skip
        assert server.queued("b")[0].headers == {"topic": "t"}
        assert server.queued("b")[0].content_type == "application/json"


async def test_mistakes_raise_before_anything_is_sent() -> None:
    server = InMemoryServer()
    app = _app(server)
    async with server.connection():
        with pytest.raises(TypeError, match="bytes"):
            await app.send_messages(
                [
                    OutgoingMessage(channel="a", payload=b"ok"),
                    OutgoingMessage(channel="a", payload="x"),
                ]
            )
        with pytest.raises(ValueError, match="destination"):
            await app.send_messages_json([OutgoingMessage(payload=1)])
        assert server.queued("a") == []
        assert await app.send_messages([]) == ()
    with pytest.raises(ServerNotConnectedError):
        await app.send_messages([OutgoingMessage(channel="a", payload=b"x")])


async def test_producer_middlewares_wrap_each_message_of_the_batch() -> None:
    server = RecordingServer()
    events: list[str] = []

    async def tracer(call_next: Any, channel: str, message: MessageData, params: Any) -> Any:
        message.headers = {**(message.headers or {}), "traced": "1"}
        events.append(f"before {message.payload.decode()}")
        try:
            return await call_next(channel, message, params)
        finally:
            events.append(f"after {message.payload.decode()}")

    async def drop_secret(call_next: Any, channel: str, message: MessageData, params: Any) -> Any:
        if message.payload == b'"secret"':
            return None  # short-circuit: never published
        if message.payload == b'"boom"':
            raise RuntimeError("middleware refused it")
        return await call_next(channel.replace("old", "new"), message, params)

    app = _app(server, producer_middlewares=[tracer, drop_secret])
    async with server.connection():
        results = await app.send_messages_json(
            [
                OutgoingMessage(channel="old", payload="one"),
                OutgoingMessage(channel="old", payload="secret"),
                OutgoingMessage(channel="old", payload="boom"),
                OutgoingMessage(channel="old", payload="two"),
            ]
        )
    # One batch for the two published messages, on the channel the middleware chose.
    assert server.batches == [("new", 2, None)]
    assert [m.payload for m in server.queued("new")] == [b'"one"', b'"two"']
    assert all(m.headers == {"traced": "1"} for m in server.queued("new"))
    # Every chain ran its "before" ahead of the shared publish; the published ones' "after"
    # came once it was done.
    befores = [events.index(f'before "{p}"') for p in ("one", "secret", "boom", "two")]
    assert max(befores) < min(events.index('after "one"'), events.index('after "two"'))
    assert len(events) == 8
    assert [r.ok for r in results] == [True, True, False, True]
    assert results[0].channel == "new" and results[0].message_id
    assert results[1].message_id is None  # short-circuited: nothing was published
    assert str(results[2].error) == "middleware refused it"


async def test_fallback_to_concurrent_publishes_reports_each_error() -> None:
    server = NoBatchServer()
    assert not isinstance(server, BatchPublisherT)
    app = _app(server)
    async with server.connection():
        results = await app.send_messages_json(
            [
                OutgoingMessage(channel="a", payload="fine"),
                OutgoingMessage(channel="a", payload="refuse"),
                OutgoingMessage(channel="b", payload="fine"),
            ]
        )
    assert server.published == ["a", "b"]
    assert [r.ok for r in results] == [True, False, True]
    assert results.failures == [(1, results[1])]
    with pytest.raises(BatchSendError, match="1 of 3 messages were not sent") as raised:
        results.raise_on_error()
    assert raised.value.failures == [(1, results[1])]
    assert raised.value.__cause__ is results[1].error
