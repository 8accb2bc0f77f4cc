"""Producer middlewares and send_message payload handling."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import repid.app
from repid import MessageData, Router, TestClient

from .helpers import make_app


async def trace_middleware(
    call_next: Callable[[str, MessageData, dict[str, object] | None], Coroutine[Any, Any, Any]],
    channel: str,
    message: MessageData,
    server_specific_parameters: dict[str, object] | None,
) -> Any:
    # Verbatim logic of seed 002's producer middleware example.
    headers = message.headers or {}
    if "X-Trace-Id" not in headers:
        headers["X-Trace-Id"] = str(uuid.uuid4())
    message = MessageData(
        payload=message.payload, headers=headers, content_type=message.content_type
    )
    return await call_next(channel, message, server_specific_parameters)


async def test_producer_middleware_does_not_mutate_caller_headers() -> None:
    app, _ = make_app(Router(), producer_middlewares=[trace_middleware])
    shared_headers = {"topic": "x"}
    async with TestClient(app) as client:
        await app.send_message_json(channel="c", payload={}, headers=shared_headers)
        await app.send_message_json(channel="c", payload={}, headers=shared_headers)
        first, second = client.get_sent_messages()
    assert shared_headers == {"topic": "x"}
    assert first.headers is not None and second.headers is not None
    assert first.headers["X-Trace-Id"] != second.headers["X-Trace-Id"]


async def test_producer_chain_composed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    original = repid.app.compose_producer_middlewares

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(repid.app, "compose_producer_middlewares", counting)
    app, _ = make_app(Router(), producer_middlewares=[trace_middleware])
    async with TestClient(app):
        for _ in range(5):
            await app.send_message(channel="c", payload=b"x")
    assert calls <= 1


async def test_producer_middlewares_run_in_onion_order() -> None:
    order: list[str] = []

    def make(name: str) -> Any:
        async def middleware(
            call_next: Any, channel: str, message: MessageData, params: Any
        ) -> Any:
            order.append(f"{name}>")
            result = await call_next(channel, message, params)
            order.append(f"<{name}")
            return result

        return middleware

    app, _ = make_app(Router(), producer_middlewares=[make("a"), make("b")])
    async with TestClient(app):
        await app.send_message(channel="c", payload=b"x")
    assert order == ["a>", "b>", "<b", "<a"]


@pytest.mark.parametrize("payload", [bytearray(b"abc"), memoryview(b"abc")])
async def test_send_message_accepts_bytes_like(payload: Any) -> None:
    app, _ = make_app(Router())
    async with TestClient(app) as client:
        await app.send_message(channel="c", payload=payload)
        assert client.get_sent_messages()[0].payload == b"abc"


async def test_send_message_rejects_str_payload() -> None:
    app, _ = make_app(Router())
    async with TestClient(app):
        with pytest.raises(TypeError):
            await app.send_message(channel="c", payload="text")  # type: ignore[arg-type]


async def test_very_large_payload_round_trips_in_memory() -> None:
    router = Router()

    @router.actor(channel="big")
    async def big(blob: str) -> int:
        return len(blob)

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="big", payload={"blob": "x" * 8_000_000}, headers={"topic": "big"}
        )
        assert client.get_processed_messages()[0].result == 8_000_000
