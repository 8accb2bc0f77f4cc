"""`SyncProducer`: sending from synchronous code and threads, and the Flask example."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from repid import InMemoryServer, MessageData, Repid, SyncProducer
from repid.errors import ServerNotFoundError

from .. import brokers

ROOT = Path(__file__).resolve().parents[2]


def memory_app() -> tuple[Repid, InMemoryServer, list[str]]:
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server, is_default=True)
    seen: list[str] = []

    async def middleware(call_next: Any, channel: str, message: MessageData, params: Any) -> Any:
        seen.append(threading.current_thread().name)
        message.headers = {**(message.headers or {}), "via": "middleware"}
        return await call_next(channel, message, params)

    app.producer_middlewares.append(middleware)
    return app, server, seen


def test_sends_from_many_threads_through_the_middlewares() -> None:
    app, server, seen = memory_app()
    with SyncProducer(app) as producer:
        assert not producer.is_running  # nothing starts before the first send

        def send(thread: int) -> None:
            for i in range(50):
                producer.send_message_json(
                    channel="c", payload={"t": thread, "i": i}, headers={"topic": "x"}
                )

        threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert producer.is_running
        producer.send_message(channel="raw", payload=b"\x00\x01", content_type="a/b")
        stored = server.queued("c")
        assert sorted((json.loads(m.payload)["t"], json.loads(m.payload)["i"]) for m in stored) == [
            (t, i) for t in range(8) for i in range(50)
        ]
        assert all(m.headers == {"topic": "x", "via": "middleware"} for m in stored)
        assert [(m.payload, m.content_type) for m in server.queued("raw")] == [(b"\x00\x01", "a/b")]
        # Each thread's messages keep their order.
        for t in range(8):
            mine = [json.loads(m.payload)["i"] for m in stored if json.loads(m.payload)["t"] == t]
            assert mine == list(range(50))
        assert set(seen) == {"repid-sync-producer"}  # the middlewares ran on the loop thread
    assert not producer.is_running
    assert not server.is_connected  # close() disconnected what it connected
    producer.close()  # idempotent


def test_errors_reach_the_caller_and_the_producer_keeps_working() -> None:
    app, server, _ = memory_app()
    with SyncProducer(app) as producer:
        with pytest.raises(ServerNotFoundError):
            producer.send_message_json(channel="c", payload={}, server_name="nope")
        with pytest.raises(TypeError, match="send_message takes bytes"):
            producer.send_message(channel="c", payload="text")  # type: ignore[arg-type]
        producer.send_message_json(channel="c", payload={"ok": True})
        assert len(server.queued("c")) == 1


def test_a_send_that_hangs_times_out() -> None:
    app, _, _ = memory_app()
    release = threading.Event()

    async def stuck(call_next: Any, channel: str, message: MessageData, params: Any) -> Any:
        while not release.is_set():
            await asyncio.sleep(0.01)
        return await call_next(channel, message, params)

    app.producer_middlewares.insert(0, stuck)
    with SyncProducer(app, timeout=0.3) as producer:
        with pytest.raises(TimeoutError, match="0.3 s"):
            producer.send_message_json(channel="c", payload={})
        release.set()


async def test_refuses_to_block_a_running_event_loop() -> None:
    app, _, _ = memory_app()
    with (
        SyncProducer(app) as producer,
        pytest.raises(RuntimeError, match="await app.send_message_json"),
    ):
        producer.send_message_json(channel="c", payload={})


# The Flask example on Redis --------------------------------------------------------------------


@pytest.mark.redis
async def test_the_flask_example_queues_work_for_its_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("flask")
    monkeypatch.setenv("REDIS_URL", brokers.redis_url())
    monkeypatch.setenv("ORDERS_CHANNEL", f"orders-{uuid.uuid4().hex[:8]}")
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    for name in ("flask_producer", "order_worker"):
        sys.modules.pop(name, None)
    web = importlib.import_module("flask_producer")
    worker = importlib.import_module("order_worker")

    def post_orders(start: int) -> list[int]:
        client = web.web.test_client()
        return [
            client.post("/orders", json={"order_id": order_id, "amount": 1.5}).status_code
            for order_id in range(start, start + 25)
        ]

    loop = asyncio.get_running_loop()
    # Eight request threads at once, like a threaded WSGI server.
    results = await asyncio.gather(
        *(loop.run_in_executor(None, post_orders, start) for start in range(0, 200, 25))
    )
    assert all(code == 202 for codes in results for code in codes)
    web.producer.close()

    async with worker.app.servers.default.connection():
        info = await worker.app.run_worker(messages_limit=200, register_signals=[])
    assert info.processed == 200
    assert sorted(order for order, _ in worker.charged) == list(range(200))
    assert {source for _, source in worker.charged} == {"web"}  # the producer middleware ran
