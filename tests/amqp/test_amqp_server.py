"""AmqpServer against a real RabbitMQ 4 (REPID_TEST_AMQP_URL)."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from repid.connections.abc import (
    DeliveryCapacity,
    MessageAction,
    ReceivedMessageT,
    ServerT,
    SubscriberT,
)
from repid.connections.amqp import (
    AmqpMessageHeader,
    AmqpMessageProperties,
    AmqpPublishError,
    AmqpServer,
)
from repid.connections.amqp.protocol.message import decode_message
from repid.connections.amqp.protocol.performatives import Accepted
from repid.connections.amqp.transport import AmqpClient, parse_amqp_url
from repid.data import MessageData
from repid.errors import ServerNotConnectedError
from tests import brokers

pytestmark = pytest.mark.amqp


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def take_all(queue: str) -> list[bytes]:
    """Remove and return what the queue holds (the management API's get, not its lagging stats)."""
    return [base64.b64decode(m["payload"]) for m in brokers.rabbitmq_get_messages(queue, 1000)]


@pytest.fixture
def url() -> str:
    return brokers.amqp_url()


@pytest.fixture
def queue(url: str) -> Iterator[str]:
    name = unique("q")
    brokers.rabbitmq_declare_queue(name, arguments={"x-queue-type": "quorum"})
    yield name
    brokers.rabbitmq_delete_queue(name)


@pytest.fixture
async def server(url: str) -> AsyncIterator[AmqpServer]:
    server = AmqpServer(url)
    async with server.connection():
        yield server


class Collector:
    """A worker stand-in: takes a slot per message (like the runner) and keeps the messages."""

    def __init__(self, capacity: DeliveryCapacity, release: bool = True) -> None:
        self.capacity = capacity
        self.release = release
        self.messages: list[ReceivedMessageT] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message: ReceivedMessageT) -> None:
        assert self.capacity.free > 0, "delivered while the worker was full"
        self.capacity.acquire()
        self.messages.append(message)
        self.arrived.set()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessageT]:
        async def loop() -> None:
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(loop(), timeout)
        return self.messages

    async def settle(self, message: ReceivedMessageT, how: str) -> None:
        await getattr(message, how)()
        self.capacity.release()


async def subscribe(
    server: AmqpServer, channel: str, limit: int | None = 10
) -> tuple[SubscriberT, Collector]:
    capacity = DeliveryCapacity(limit)
    collector = Collector(capacity)
    subscriber = await server.subscribe(
        channels_to_callbacks={channel: collector}, capacity=capacity
    )
    return subscriber, collector


# ------------------------------------------------------------------ identity


def test_server_metadata_and_no_password_anywhere() -> None:
    server = AmqpServer("amqp://alice:Sup3rS3cret@rabbit.example:5673/prod")
    assert isinstance(server, ServerT)
    assert (server.protocol, server.protocol_version) == ("amqp", "1.0")
    assert (server.host, server.pathname) == ("rabbit.example:5673", "/prod")
    caps = server.capabilities
    assert (caps.dead_letter, caps.priorities, caps.persistent, caps.distributed) == (
        True,
        True,
        True,
        True,
    )
    assert "Sup3rS3cret" not in repr(server)
    assert "Sup3rS3cret" not in repr(server.__dict__)  # the URL is stored redacted
    assert AmqpServer("amqps://h").protocol == "amqps"


async def test_publish_before_connect_is_a_clear_error() -> None:
    with pytest.raises(ServerNotConnectedError):
        await AmqpServer("amqp://127.0.0.1:1/").publish(channel="x", message=MessageData(b""))


async def test_wrong_password_fails_fast_without_leaking_it(url: str) -> None:
    address = parse_amqp_url(url)
    server = AmqpServer(f"amqp://guest:N0tTheP4ss@{address.host}:{address.port}/")
    with pytest.raises(ConnectionError) as info:
        await server.connect()
    assert "N0tTheP4ss" not in str(info.value)
    assert "unauthorized-access" in str(info.value)


# ------------------------------------------------------------------ round trips


async def test_round_trip_keeps_payload_headers_content_type_and_ids(
    server: AmqpServer, queue: str
) -> None:
    await server.publish(
        channel=queue,
        message=MessageData(b'{"x": 1}', {"topic": "work", "k": "v"}, "application/json"),
        server_specific_parameters={
            "properties": AmqpMessageProperties(message_id="id-1", reply_to="replies")
        },
    )
    subscriber, collector = await subscribe(server, queue)
    (message,) = await collector.wait_for(1)
    assert message.payload == b'{"x": 1}'
    assert message.headers == {"topic": "work", "k": "v"}
    assert message.content_type == "application/json"
    assert message.message_id == "id-1"
    assert message.reply_to == "replies"
    assert message.delivery_count == 0
    assert message.channel == queue
    await collector.settle(message, "ack")
    assert message.action is MessageAction.ACKED
    await subscriber.close()
    assert take_all(queue) == []


async def test_generated_message_ids_are_unique(server: AmqpServer, queue: str) -> None:
    for _ in range(3):
        await server.publish(channel=queue, message=MessageData(b""))
    subscriber, collector = await subscribe(server, queue)
    messages = await collector.wait_for(3)
    assert len({m.message_id for m in messages}) == 3
    for m in messages:
        await collector.settle(m, "ack")
    await subscriber.close()


async def test_server_specific_parameters_reach_the_wire(
    server: AmqpServer, queue: str, url: str
) -> None:
    await server.publish(
        channel=queue,
        message=MessageData(b"p"),
        server_specific_parameters={
            "header": AmqpMessageHeader(durable=True, priority=9, ttl=600_000),
            "properties": AmqpMessageProperties(
                subject="task_subject", group_id="g1", absolute_expiry_time=4_102_444_800_000
            ),
            "message_annotations": {"x-opt-custom": "yes"},
            "footers": {"x-opt-check": "sum"},
        },
    )
    client = await AmqpClient.connect(parse_amqp_url(url))
    got: asyncio.Queue[Any] = asyncio.Queue()
    link = await client.attach_receiver("raw", f"/queues/{queue}", lambda lk, d: got.put_nowait(d))
    client.flow(link, 1)
    delivery = await asyncio.wait_for(got.get(), 5)
    message = decode_message(delivery.payload)
    client.settle(link, delivery, Accepted())
    await client.close()
    assert message.header is not None
    assert message.header.durable and message.header.priority == 9 and message.header.ttl == 600_000
    assert message.properties is not None
    assert message.properties.subject == "task_subject"
    assert message.properties.group_id == "g1"
    assert message.properties.to == f"/queues/{queue}"
    assert message.message_annotations is not None
    assert message.message_annotations["x-opt-custom"] == "yes"
    assert message.footer == {"x-opt-check": "sum"}
    assert message.data == b"p"


async def test_unknown_parameter_is_rejected(server: AmqpServer, queue: str) -> None:
    with pytest.raises(TypeError, match="unknown AmqpServer"):
        await server.publish(
            channel=queue, message=MessageData(b""), server_specific_parameters={"bogus": 1}
        )


async def test_publish_to_a_missing_queue_raises(server: AmqpServer) -> None:
    from repid.errors import ChannelNotFoundError

    with pytest.raises(AmqpPublishError, match="released: no such queue") as info:
        await server.publish(channel=unique("missing"), message=MessageData(b""))
    assert isinstance(info.value, ChannelNotFoundError)


async def test_exchange_routing_key_and_explicit_to(server: AmqpServer, queue: str) -> None:
    exchange = unique("ex")
    brokers.rabbitmq_load_definitions(
        {
            "exchanges": [
                {
                    "name": exchange,
                    "vhost": "/",
                    "type": "topic",
                    "durable": True,
                    "auto_delete": False,
                    "internal": False,
                    "arguments": {},
                }
            ],
            "bindings": [
                {
                    "source": exchange,
                    "vhost": "/",
                    "destination": queue,
                    "destination_type": "queue",
                    "routing_key": "jobs.#",
                    "arguments": {},
                }
            ],
        }
    )
    # The channel names the exchange when a routing key is given.
    await server.publish(
        channel=exchange,
        message=MessageData(b"via-key"),
        server_specific_parameters={"routing_key": "jobs.a/b c"},
    )
    await server.publish(
        channel="ignored",
        message=MessageData(b"via-to"),
        server_specific_parameters={"to": f"/exchanges/{exchange}/jobs.x"},
    )
    with pytest.raises(AmqpPublishError):  # routed nowhere
        await server.publish(
            channel=exchange,
            message=MessageData(b"lost"),
            server_specific_parameters={"routing_key": "other"},
        )
    subscriber, collector = await subscribe(server, queue)
    messages = await collector.wait_for(2)
    assert sorted(m.payload for m in messages) == [b"via-key", b"via-to"]
    for m in messages:
        await collector.settle(m, "ack")
    await subscriber.close()


async def test_custom_address_strategy(url: str, queue: str) -> None:
    server = AmqpServer(url, address_strategy=lambda channel: f"/queues/{queue}")
    async with server.connection():
        await server.publish(channel="anything", message=MessageData(b"s"))
    assert take_all(queue) == [b"s"]


async def test_large_message_crosses_many_frames(server: AmqpServer, queue: str) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB; RabbitMQ's frames are 128 KiB
    await server.publish(channel=queue, message=MessageData(payload))
    subscriber, collector = await subscribe(server, queue)
    (message,) = await collector.wait_for(1)
    assert message.payload == payload
    await collector.settle(message, "ack")
    await subscriber.close()


# ------------------------------------------------------------------ outcomes


@pytest.fixture
def dead_lettered_queue(url: str) -> Iterator[tuple[str, str]]:
    work, dead = unique("work"), unique("dead")
    brokers.rabbitmq_declare_queue(dead, arguments={"x-queue-type": "quorum"})
    brokers.rabbitmq_declare_queue(
        work,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead,
        },
    )
    yield work, dead
    brokers.rabbitmq_delete_queue(work)
    brokers.rabbitmq_delete_queue(dead)


async def test_ack_nack_reject_outcomes(
    server: AmqpServer, dead_lettered_queue: tuple[str, str]
) -> None:
    work, dead = dead_lettered_queue
    for name in ("ack-me", "nack-me", "reject-me"):
        await server.publish(channel=work, message=MessageData(name.encode()))
    subscriber, collector = await subscribe(server, work)
    messages = {m.payload: m for m in await collector.wait_for(3)}
    await collector.settle(messages[b"ack-me"], "ack")
    await collector.settle(messages[b"nack-me"], "nack")
    await collector.settle(messages[b"reject-me"], "reject")
    # reject = released: the same message comes back, not counted as a failed delivery.
    (again,) = (await collector.wait_for(4))[3:]
    assert again.payload == b"reject-me"
    assert again.delivery_count == 0
    await collector.settle(again, "ack")
    await subscriber.close()
    # nack = rejected: dead-lettered by the queue's policy.
    assert take_all(dead) == [b"nack-me"]
    assert take_all(work) == []


async def test_second_action_is_ignored(server: AmqpServer, queue: str) -> None:
    await server.publish(channel=queue, message=MessageData(b"once"))
    subscriber, collector = await subscribe(server, queue)
    (message,) = await collector.wait_for(1)
    await message.ack()
    await message.nack()  # ignored
    assert message.action is MessageAction.ACKED
    collector.capacity.release()
    await subscriber.close()
    assert take_all(queue) == []


async def test_reply_goes_to_reply_to_and_acks(server: AmqpServer, queue: str) -> None:
    replies = unique("replies")
    brokers.rabbitmq_declare_queue(replies, arguments={"x-queue-type": "quorum"})
    try:
        await server.publish(
            channel=queue,
            message=MessageData(b"question"),
            server_specific_parameters={"properties": AmqpMessageProperties(reply_to=replies)},
        )
        subscriber, collector = await subscribe(server, queue)
        (message,) = await collector.wait_for(1)
        await message.reply(payload=b"answer", headers={"re": "1"})
        collector.capacity.release()
        assert message.action is MessageAction.REPLIED
        reply_sub, reply_collector = await subscribe(server, replies)
        (reply,) = await reply_collector.wait_for(1)
        assert (reply.payload, reply.headers) == (b"answer", {"re": "1"})
        await reply_collector.settle(reply, "ack")
        await reply_sub.close()
        await subscriber.close()
        assert take_all(queue) == []
    finally:
        brokers.rabbitmq_delete_queue(replies)


# ------------------------------------------------------------------ flow control


async def test_credit_never_exceeds_the_free_slots(server: AmqpServer, queue: str) -> None:
    for i in range(20):
        await server.publish(channel=queue, message=MessageData(b"%d" % i))
    subscriber, collector = await subscribe(server, queue, limit=3)
    await collector.wait_for(3)
    await asyncio.sleep(0.5)  # give an over-eager subscriber time to over-deliver
    assert len(collector.messages) == 3
    internals = subscriber  # the sans-IO link state is the ground truth for granted credit
    outstanding = sum(c.link.credit for c in internals._consumers if c.link is not None)
    assert outstanding + len(internals._buffer) <= collector.capacity.free
    await collector.settle(collector.messages[0], "ack")
    await collector.wait_for(4)
    await asyncio.sleep(0.3)
    assert len(collector.messages) == 4
    for m in collector.messages[1:]:
        await collector.settle(m, "ack")
    while len(collector.messages) < 20:
        n = len(collector.messages)
        for m in (await collector.wait_for(n + 1))[n:]:
            await collector.settle(m, "ack")
    assert sorted(int(m.payload) for m in collector.messages) == list(range(20))
    await subscriber.close()


async def test_pause_stops_and_resume_restarts_delivery(server: AmqpServer, queue: str) -> None:
    subscriber, collector = await subscribe(server, queue)
    await subscriber.pause()
    assert not subscriber.is_active
    await asyncio.sleep(0.1)  # the zero-credit flow reaches the broker
    await server.publish(channel=queue, message=MessageData(b"held"))
    await asyncio.sleep(0.5)
    assert collector.messages == []
    await subscriber.resume()
    (message,) = await collector.wait_for(1)
    await collector.settle(message, "ack")
    await subscriber.close()


async def test_close_returns_prefetched_and_unsettled_messages(
    server: AmqpServer, queue: str
) -> None:
    for i in range(5):
        await server.publish(channel=queue, message=MessageData(b"%d" % i))
    subscriber, collector = await subscribe(server, queue, limit=2)
    held = await collector.wait_for(2)
    await subscriber.close()
    # The two held by the "worker" can still be settled after close.
    await collector.settle(held[0], "ack")
    await collector.settle(held[1], "reject")
    await asyncio.sleep(0.2)  # let the settlement frames go out
    assert sorted(take_all(queue)) == [b"1", b"2", b"3", b"4"]


async def test_two_channels_share_the_capacity(server: AmqpServer, queue: str) -> None:
    other = unique("q2")
    brokers.rabbitmq_declare_queue(other, arguments={"x-queue-type": "quorum"})
    try:
        for i in range(4):
            await server.publish(channel=queue, message=MessageData(b"a%d" % i))
            await server.publish(channel=other, message=MessageData(b"b%d" % i))
        capacity = DeliveryCapacity(1)
        collector = Collector(capacity)
        subscriber = await server.subscribe(
            channels_to_callbacks={queue: collector, other: collector}, capacity=capacity
        )
        seen = []
        for n in range(8):
            (message,) = (await collector.wait_for(n + 1))[n:]
            seen.append(message.payload)
            await collector.settle(message, "ack")
        assert sorted(seen) == sorted(
            [b"a%d" % i for i in range(4)] + [b"b%d" % i for i in range(4)]
        )
        await subscriber.close()
    finally:
        brokers.rabbitmq_delete_queue(other)


async def test_subscribing_to_a_missing_queue_raises(server: AmqpServer, queue: str) -> None:
    from repid.errors import ChannelNotFoundError

    with pytest.raises(ChannelNotFoundError, match="no queue .*declare it first"):
        await subscribe(server, unique("nope"))
    assert server.is_connected  # only the session ended; publishing still works
    await server.publish(channel=queue, message=MessageData(b"still fine"))
    assert take_all(queue) == [b"still fine"]


async def test_undecodable_message_is_dead_lettered_with_a_log(
    server: AmqpServer,
    dead_lettered_queue: tuple[str, str],
    url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    work, dead = dead_lettered_queue
    client = await AmqpClient.connect(parse_amqp_url(url))
    sender = await client.attach_sender("raw", f"/queues/{work}")
    # A valid AMQP message whose body is an amqp-sequence: no payload bytes to hand over.
    assert await client.send(sender, b"\x00\x53\x76\xc0\x03\x01\x50\x07") == Accepted()
    await client.close()
    with caplog.at_level(logging.ERROR, logger="repid.connections.amqp"):
        subscriber, collector = await subscribe(server, work)
        for _ in range(50):
            if any("amqp.bad_message" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.2)
    assert len(take_all(dead)) == 1
    assert collector.messages == []
    assert any("amqp.bad_message" in r.getMessage() for r in caplog.records)
    await subscriber.close()


async def test_vhost_is_selected_by_the_open_hostname(url: str) -> None:
    vhost = unique("vh")
    brokers._mgmt("PUT", f"/api/vhosts/{vhost}", {})
    address = parse_amqp_url(url)
    brokers._mgmt(
        "PUT",
        f"/api/permissions/{vhost}/{address.username}",
        {"configure": ".*", "write": ".*", "read": ".*"},
    )
    try:
        brokers.rabbitmq_declare_queue("in-vhost", {"x-queue-type": "quorum"}, vhost=vhost)
        server = AmqpServer(
            f"amqp://{address.username}:{address.password}@{address.host}:{address.port}/{vhost}"
        )
        assert server.pathname == f"/{vhost}"
        async with server.connection():
            await server.publish(channel="in-vhost", message=MessageData(b"vh"))
        got = brokers.rabbitmq_get_messages("in-vhost", 5, vhost=vhost)
        assert [base64.b64decode(m["payload"]) for m in got] == [b"vh"]
    finally:
        brokers._mgmt("DELETE", f"/api/vhosts/{vhost}", allow=(404,))


async def test_publish_batch_pipelines_and_returns_ids_in_order(
    server: AmqpServer, queue: str
) -> None:
    messages = [MessageData(b"%d" % i, {"i": str(i)}) for i in range(500)]
    ids = await server.publish_batch(channel=queue, messages=messages)
    assert len(ids) == len(set(ids)) == 500
    subscriber, collector = await subscribe(server, queue, limit=100)
    received: list[ReceivedMessageT] = []
    while len(received) < 500:
        n = len(collector.messages)
        for m in (await collector.wait_for(n + 1))[n:]:
            received.append(m)
            await collector.settle(m, "ack")
    await subscriber.close()
    assert [m.payload for m in received] == [b"%d" % i for i in range(500)]  # queue order
    assert [m.message_id for m in received] == ids


async def test_publish_batch_to_a_missing_queue_raises(server: AmqpServer) -> None:
    with pytest.raises(AmqpPublishError, match="released"):
        await server.publish_batch(
            channel=unique("missing"), messages=[MessageData(b"a"), MessageData(b"b")]
        )
    assert await server.publish_batch(channel="x", messages=[]) == []


async def test_close_releases_prefetched_messages_at_once(server: AmqpServer, queue: str) -> None:
    for i in range(5):
        await server.publish(channel=queue, message=MessageData(b"%d" % i))
    capacity = DeliveryCapacity(5)
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def stuck(message: ReceivedMessageT) -> None:
        entered.set()
        await gate.wait()  # a callback that never returns: the rest stay prefetched

    subscriber = await server.subscribe(channels_to_callbacks={queue: stuck}, capacity=capacity)
    await asyncio.wait_for(entered.wait(), 10)
    internals = subscriber
    for _ in range(100):
        if len(internals._buffer) == 4:
            break
        await asyncio.sleep(0.05)
    assert len(internals._buffer) == 4
    await subscriber.close()
    await asyncio.sleep(0.2)  # the released dispositions reach the broker
    # The four prefetched ones are back in the queue while the connection is still open
    # (the fifth is still held by the stuck callback's link until it goes away).
    assert sorted(take_all(queue)) == [b"1", b"2", b"3", b"4"]
