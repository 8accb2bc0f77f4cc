"""Crash and restart: a killed consumer's messages come back; a broker restart loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from repid import Repid
from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.amqp import AmqpServer
from repid.connections.amqp.transport import ATTACH_TIMEOUT
from repid.data import MessageData
from tests import brokers

pytestmark = pytest.mark.amqp

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def queue() -> Iterator[str]:
    brokers.amqp_url()
    name = f"reliable-{uuid.uuid4().hex[:10]}"
    brokers.rabbitmq_declare_queue(name, arguments={"x-queue-type": "quorum"})
    yield name
    brokers.rabbitmq_delete_queue(name)


class Counter:
    """Acks everything and records payloads (duplicates included)."""

    def __init__(self, capacity: DeliveryCapacity) -> None:
        self.capacity = capacity
        self.payloads: list[bytes] = []
        self.counts: dict[bytes, int | None] = {}
        self.changed = asyncio.Event()

    async def __call__(self, message: ReceivedMessageT) -> None:
        self.capacity.acquire()
        self.payloads.append(message.payload)
        self.counts[message.payload] = message.delivery_count
        await message.ack()
        self.capacity.release()
        self.changed.set()

    async def wait_for_all(self, expected: set[bytes], timeout: float) -> None:
        async def loop() -> None:
            while not expected <= set(self.payloads):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


async def test_killed_consumer_messages_are_redelivered(queue: str) -> None:
    url = brokers.amqp_url()
    server = AmqpServer(url)
    async with server.connection():
        for i in range(10):
            await server.publish(channel=queue, message=MessageData(b"m%d" % i))
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.amqp.amqp_consumer_child",
            url,
            queue,
            "4",
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            assert child.stdout is not None
            held = []
            for _ in range(4):
                line = await asyncio.wait_for(child.stdout.readline(), 20)
                held.append(line.split()[1])
        finally:
            child.send_signal(signal.SIGKILL)
            await child.wait()
        assert len(held) == 4
        capacity = DeliveryCapacity(10)
        counter = Counter(capacity)
        subscriber = await server.subscribe(
            channels_to_callbacks={queue: counter}, capacity=capacity
        )
        await counter.wait_for_all({b"m%d" % i for i in range(10)}, timeout=30)
        await subscriber.close()
    assert sorted(counter.payloads) == sorted(b"m%d" % i for i in range(10))
    # RabbitMQ counts a delivery to a consumer that died as a failed attempt
    # (header.delivery-count), so `delivery_count` tells the redelivered ones apart.
    for payload, count in counter.counts.items():
        assert count == (1 if payload in held else 0), (payload, count)


async def test_worker_killed_mid_run_loses_no_message(queue: str) -> None:
    url = brokers.amqp_url()
    app = Repid()
    server = AmqpServer(url)
    app.servers.register_server("rabbitmq", server, is_default=True)
    async with server.connection():
        for i in range(60):
            await app.send_message_json(channel=queue, payload={"n": i}, headers={"topic": "work"})
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.amqp.amqp_worker_child",
            url,
            queue,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        done_in_child: set[int] = set()
        try:
            assert child.stdout is not None
            while len(done_in_child) < 15:
                line = await asyncio.wait_for(child.stdout.readline(), 20)
                assert line, "the worker exited early"
                done_in_child.add(int(line.split()[1]))
        finally:
            child.send_signal(signal.SIGKILL)  # mid-run: 5 tasks in flight
            await child.wait()
        # It went on while we read: what it printed before the kill may be acked (it prints
        # before its ack), so those are done too - still in the pipe.
        for rest in (await child.stdout.read()).splitlines():
            if rest.startswith(b"done "):
                done_in_child.add(int(rest.split()[1]))
        capacity = DeliveryCapacity(10)
        counter = Counter(capacity)
        subscriber = await server.subscribe(
            channels_to_callbacks={queue: counter}, capacity=capacity
        )
        seen = {json.loads(p)["n"] for p in counter.payloads}
        expected = set(range(60)) - done_in_child
        while not expected <= seen:
            counter.changed.clear()
            await asyncio.wait_for(counter.changed.wait(), 30)
            seen = {json.loads(p)["n"] for p in counter.payloads}
        await subscriber.close()
    # Every message was processed by one of the two workers; the ones the killed worker had
    # in flight (done but not yet acked, or not done) came back.
    assert done_in_child | seen == set(range(60))
    assert len(done_in_child) < 60


@pytest.mark.slow
async def test_broker_restart_loses_no_message_on_a_durable_quorum_queue(queue: str) -> None:
    server = AmqpServer(brokers.amqp_url())
    async with server.connection():
        before = {b"before-%d" % i for i in range(30)}
        after = {b"after-%d" % i for i in range(30)}
        for payload in sorted(before)[:20]:
            await server.publish(channel=queue, message=MessageData(payload))
        capacity = DeliveryCapacity(5)
        counter = Counter(capacity)
        subscriber = await server.subscribe(
            channels_to_callbacks={queue: counter}, capacity=capacity
        )
        await counter.wait_for_all(set(sorted(before)[:20]), timeout=10)
        for payload in sorted(before)[20:]:  # some stay queued across the restart
            await server.publish(channel=queue, message=MessageData(payload))
        await subscriber.pause()
        first_connection = server._client
        await asyncio.to_thread(brokers.restart_broker, "rabbitmq")
        await subscriber.resume()
        # Publishing waits for the reconnect and is confirmed by the restarted broker.
        for payload in sorted(after):
            await server.publish(channel=queue, message=MessageData(payload))
        await counter.wait_for_all(before | after, timeout=60)
        assert server.is_connected
        assert server._client is not first_connection  # it really reconnected
        await subscriber.close()
    assert set(counter.payloads) == before | after


def _close_connection_of(server: AmqpServer) -> bool:
    """Force-close this server's connection through the management API (connection:forced).

    Only ours, found by its local port: other tests may share the broker. False while the
    management API does not list it yet.
    """
    client = server._client
    assert client is not None
    port = client._transport.get_extra_info("sockname")[1]
    _, connections = brokers._mgmt("GET", "/api/connections")
    for connection in connections or []:
        if connection.get("peer_port") == port:
            name = urllib.parse.quote(connection["name"], safe="")
            brokers._mgmt("DELETE", f"/api/connections/{name}", allow=(404,))
            return True
    return False


async def _wait_connections(server: AmqpServer, previous: object) -> None:
    for _ in range(200):
        if server.is_connected and server._client is not previous:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no reconnect")


async def test_forced_close_reconnects_and_resubscribes(queue: str) -> None:
    server = AmqpServer(brokers.amqp_url())
    async with server.connection():
        capacity = DeliveryCapacity(5)
        counter = Counter(capacity)
        subscriber = await server.subscribe(
            channels_to_callbacks={queue: counter}, capacity=capacity
        )
        await server.publish(channel=queue, message=MessageData(b"one"))
        await counter.wait_for_all({b"one"}, timeout=10)
        first = server._client
        # The management API lists connections with a delay: wait until ours shows up.
        for _ in range(100):
            if _close_connection_of(server):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the management API never listed our connection")
        await _wait_connections(server, first)
        await server.publish(channel=queue, message=MessageData(b"two"))
        await counter.wait_for_all({b"one", b"two"}, timeout=20)
        await subscriber.close()


async def test_consumer_reattaches_after_its_queue_is_recreated(
    queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = AmqpServer(brokers.amqp_url())
    async with server.connection():
        capacity = DeliveryCapacity(5)
        counter = Counter(capacity)
        subscriber = await server.subscribe(
            channels_to_callbacks={queue: counter}, capacity=capacity
        )
        # The loop is blocked by these two calls, so the first credit of the consumer reaches
        # RabbitMQ after it detached the link: RabbitMQ 4.0 then ends the whole session, and the
        # consumer comes back on a new one (on a new channel number; at worst after the attach
        # timeout has reopened the connection).
        brokers.rabbitmq_delete_queue(queue)  # RabbitMQ detaches the consumer's link
        brokers.rabbitmq_declare_queue(queue, arguments={"x-queue-type": "quorum"})
        await server.publish(channel=queue, message=MessageData(b"after"))
        await counter.wait_for_all({b"after"}, timeout=ATTACH_TIMEOUT + 20)
        await subscriber.close()
    assert any("amqp.link_detached" in r.getMessage() for r in caplog.records)


async def test_publish_batch_survives_a_forced_close(queue: str) -> None:
    server = AmqpServer(brokers.amqp_url())
    async with server.connection():
        await server.publish(channel=queue, message=MessageData(b"warm-up"))
        client = server._client
        assert client is not None
        port = client._transport.get_extra_info("sockname")[1]
        # Make sure the management API lists our connection before the batch starts.
        for _ in range(100):
            _, listed = brokers._mgmt("GET", "/api/connections")
            if any(c.get("peer_port") == port for c in listed or []):
                break
            await asyncio.sleep(0.1)
        payloads = [b"b%d" % i for i in range(3000)]
        first = server._client
        batch = asyncio.ensure_future(
            server.publish_batch(channel=queue, messages=[MessageData(p) for p in payloads])
        )
        await asyncio.sleep(0.05)
        assert _close_connection_of(server)
        await asyncio.wait_for(batch, 60)  # unconfirmed ones were sent again after reconnecting
        await _wait_connections(server, first)
        capacity = DeliveryCapacity(200)
        counter = Counter(capacity)
        subscriber = await server.subscribe(
            channels_to_callbacks={queue: counter}, capacity=capacity
        )
        await counter.wait_for_all(set(payloads), timeout=60)
        await subscriber.close()
