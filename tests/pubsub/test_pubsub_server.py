"""PubsubServer against the real Pub/Sub emulator: publish, consume, outcomes, flow control."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import grpc
import pytest
from pubsub_helpers import (
    PROJECT,
    CuttableProxy,
    create_pair,
    create_subscription,
    create_topic,
    free_port,
    pull,
    unique,
)

from repid.connections.abc import (
    DeliveryCapacity,
    MessageAction,
    ReceivedMessageT,
    ServerT,
    SubscriberT,
)
from repid.connections.pubsub import PubsubServer
from repid.data import MessageData
from repid.errors import ChannelNotFoundError

pytestmark = pytest.mark.pubsub


class Collector:
    """A worker stand-in: takes a slot per message and settles it with `action` (or holds it)."""

    def __init__(self, capacity: DeliveryCapacity, action: str | None = "ack") -> None:
        self.capacity = capacity
        self.action = action
        self.messages: list[ReceivedMessageT] = []
        self.max_in_use = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._event = asyncio.Event()

    async def __call__(self, message: ReceivedMessageT) -> None:
        assert self.capacity.free > 0, "delivered while the worker had no free slot"
        self.capacity.acquire()
        self.max_in_use = max(self.max_in_use, self.capacity.in_use)
        self.messages.append(message)
        self._event.set()
        if self.action is not None:
            task = asyncio.create_task(self._settle(message, self.action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _settle(self, message: ReceivedMessageT, action: str) -> None:
        try:
            await getattr(message, action)()
        finally:
            self.capacity.release()

    async def settle(self, message: ReceivedMessageT, action: str = "ack") -> None:
        await self._settle(message, action)

    async def wait_for(self, count: int, timeout: float = 15.0) -> None:
        async def _wait() -> None:
            while len(self.messages) < count:
                self._event.clear()
                await self._event.wait()

        await asyncio.wait_for(_wait(), timeout)
        await asyncio.gather(*self._tasks)

    def payloads(self) -> list[bytes]:
        return [m.payload for m in self.messages]


async def consume(server: PubsubServer, channel: str, collector: Collector) -> SubscriberT:
    return await server.subscribe(
        channels_to_callbacks={channel: collector}, capacity=collector.capacity
    )


async def test_server_satisfies_the_protocol_and_asyncapi_fields(server: PubsubServer) -> None:
    assert isinstance(server, ServerT)
    assert server.protocol == "googlepubsub"
    assert server.protocol_version == "1"
    assert server.pathname == f"/projects/{PROJECT}"
    assert server.host == server.emulator_host
    caps = server.capabilities
    assert caps.dead_letter and caps.persistent and caps.distributed
    assert not caps.atomic_reply and not caps.priorities
    assert server.is_connected
    assert "PubsubServer" in repr(server)


async def test_round_trip_with_headers_and_content_type(server: PubsubServer, channel: str) -> None:
    collector = Collector(DeliveryCapacity(10))
    subscriber = await consume(server, channel, collector)
    # A stream still opening is not a failure: the app refuses to publish when disconnected.
    assert server.is_connected
    await server.publish(
        channel=channel,
        message=MessageData(b"payload", {"h1": "v1", "reply_to": "r"}, "application/json"),
    )
    await collector.wait_for(1)
    message = collector.messages[0]
    assert message.payload == b"payload"
    assert message.headers == {"h1": "v1", "reply_to": "r"}
    assert message.content_type == "application/json"
    assert message.channel == channel
    assert message.reply_to == "r"
    assert message.message_id
    assert message.delivery_count is None  # no dead-letter policy: Pub/Sub does not count
    assert message.action is MessageAction.ACKED
    assert isinstance(subscriber, SubscriberT) and subscriber.is_active
    await subscriber.close()
    assert not subscriber.is_active


async def test_empty_payload_without_headers_round_trips(
    server: PubsubServer, channel: str
) -> None:
    collector = Collector(DeliveryCapacity(1))
    subscriber = await consume(server, channel, collector)
    await server.publish(channel=channel, message=MessageData(b""))
    await collector.wait_for(1)
    assert collector.messages[0].payload == b""
    assert collector.messages[0].headers is None
    assert collector.messages[0].content_type is None
    await subscriber.close()


async def test_channel_prefix_maps_topics_and_subscriptions(host: str) -> None:
    name = unique()
    create_pair(host, f"pre-{name}")
    server = PubsubServer(PROJECT, emulator_host=host, channel_prefix="pre-", ack_deadline=10)
    async with server.connection():
        assert server.topic_path(name) == f"projects/{PROJECT}/topics/pre-{name}"
        collector = Collector(DeliveryCapacity(1))
        subscriber = await consume(server, name, collector)
        await server.publish(channel=name, message=MessageData(b"x"))
        await collector.wait_for(1)
        await subscriber.close()


async def test_topic_parameter_overrides_channel_and_prefix(host: str) -> None:
    target = create_pair(host)
    server = PubsubServer(PROJECT, emulator_host=host, channel_prefix="nothere-")
    async with server.connection():
        await server.publish(
            channel="ignored",
            message=MessageData(b"a"),
            server_specific_parameters={"topic": target},
        )
        await server.publish(
            channel="ignored",
            message=MessageData(b"b"),
            server_specific_parameters={"topic": f"projects/{PROJECT}/topics/{target}"},
        )
    assert sorted(_data(m) for m in pull(host, target)) == [b"a", b"b"]


async def test_project_parameter_publishes_to_another_project(host: str) -> None:
    other = "repid-other"
    name = unique()
    create_topic(host, name, project=other)
    create_subscription(host, name, name, project=other)
    server = PubsubServer(PROJECT, emulator_host=host)
    async with server.connection():
        await server.publish(
            channel=name, message=MessageData(b"p"), server_specific_parameters={"project": other}
        )
    # The default project has no such topic, so the message can only be in the other one.
    assert len(_pull_project(host, other, name)) == 1


async def test_ordering_key_and_attributes_parameters(host: str) -> None:
    name = create_pair(host, ordering=True)
    server = PubsubServer(PROJECT, emulator_host=host)
    async with server.connection():
        for i in range(5):
            await server.publish(
                channel=name,
                message=MessageData(b"%d" % i, {"h": "header", "x": "from-header"}),
                server_specific_parameters={
                    "ordering_key": "key-1",
                    "attributes": {"x": "from-parameter", "y": "2"},
                    "timeout": timedelta(seconds=5),
                },
            )
    received = pull(host, name)
    assert [_data(m) for m in received] == [b"0", b"1", b"2", b"3", b"4"]
    message = received[0]["message"]
    assert isinstance(message, dict)
    assert message["orderingKey"] == "key-1"
    assert message["attributes"] == {"h": "header", "x": "from-parameter", "y": "2"}


@pytest.mark.parametrize("timeout", [5, 5.0, timedelta(seconds=5)])
async def test_timeout_parameter_accepts_int_float_and_timedelta(
    server: PubsubServer, channel: str, timeout: object
) -> None:
    await server.publish(
        channel=channel, message=MessageData(b"t"), server_specific_parameters={"timeout": timeout}
    )
    assert len(pull(server.emulator_host or "", channel)) == 1


async def test_timeout_parameter_bounds_the_publish_call(host: str, channel: str) -> None:
    # With the broker unreachable, a publish waits for the connection to come back (it would
    # wait the default 60 s); the `timeout` parameter cuts that short with DEADLINE_EXCEEDED.
    proxy = CuttableProxy(host)
    await proxy.start()
    server = PubsubServer(PROJECT, emulator_host=proxy.host, max_backoff=1.0)
    try:
        async with server.connection():
            await server.publish(channel=channel, message=MessageData(b"through"))
            proxy.refusing = True
            proxy.cut()
            for _ in range(100):  # until the channel noticed (a publish racing the cut fails
                if not server.is_connected:  # with UNAVAILABLE, and is retried)
                    break
                await asyncio.sleep(0.05)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await server.publish(
                    channel=channel,
                    message=MessageData(b"t"),
                    server_specific_parameters={"timeout": timedelta(seconds=2)},
                )
    finally:
        await proxy.close()
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert [_data(m) for m in pull(host, channel)] == [b"through"]


async def test_unknown_parameter_and_missing_topic_are_clear_errors(
    server: PubsubServer,
) -> None:
    with pytest.raises(ValueError, match="unknown Pub/Sub server_specific_parameters"):
        await server.publish(
            channel="x", message=MessageData(b"t"), server_specific_parameters={"routing": 1}
        )
    with pytest.raises(ChannelNotFoundError, match="topic does not exist") as info:
        await server.publish(channel=unique("missing"), message=MessageData(b"t"))
    assert isinstance(info.value.__cause__, grpc.aio.AioRpcError)
    assert info.value.__cause__.code() == grpc.StatusCode.NOT_FOUND


async def test_publish_batch_spans_several_requests(server: PubsubServer, channel: str) -> None:
    messages = [MessageData(b"%d" % i, {"i": str(i)}) for i in range(2100)]
    ids = await server.publish_batch(channel=channel, messages=messages)
    assert len(ids) == 2100 and len(set(ids)) == 2100
    collector = Collector(DeliveryCapacity(100))
    subscriber = await consume(server, channel, collector)
    await collector.wait_for(2100, timeout=30)
    assert sorted(int(p) for p in collector.payloads()) == list(range(2100))
    assert collector.max_in_use <= 100
    await subscriber.close()


async def test_ack_removes_the_message(server: PubsubServer, channel: str, host: str) -> None:
    collector = Collector(DeliveryCapacity(5), action="ack")
    subscriber = await consume(server, channel, collector)
    await server.publish_batch(channel=channel, messages=[MessageData(b"a"), MessageData(b"b")])
    await collector.wait_for(2)
    await subscriber.close()
    assert pull(host, channel) == []


@pytest.mark.parametrize("action", ["nack", "reject"])
async def test_nack_and_reject_redeliver_at_once(
    server: PubsubServer, channel: str, action: str
) -> None:
    capacity = DeliveryCapacity(1)
    first = Collector(capacity, action=None)
    subscriber = await consume(server, channel, first)
    await server.publish(channel=channel, message=MessageData(b"again"))
    await first.wait_for(1)
    # Deadline 0 makes Pub/Sub redeliver now (long before the 10 s ack deadline).
    first.action = "ack"
    await first.settle(first.messages[0], action)
    await first.wait_for(2, timeout=8)
    assert first.messages[0].action is MessageAction(
        {"nack": "nacked", "reject": "rejected"}[action]
    )
    assert first.messages[1].message_id == first.messages[0].message_id
    await subscriber.close()


async def test_nack_dead_letters_after_max_delivery_attempts(host: str) -> None:
    name = unique()
    dlq = unique("dlq")
    create_topic(host, name)
    create_topic(host, dlq)
    create_subscription(host, dlq, dlq)
    create_subscription(host, name, name, dead_letter_topic=dlq, max_delivery_attempts=5)
    server = PubsubServer(PROJECT, emulator_host=host, ack_deadline=10)
    async with server.connection():
        collector = Collector(DeliveryCapacity(1), action="nack")
        subscriber = await consume(server, name, collector)
        await server.publish(channel=name, message=MessageData(b"poison", {"k": "v"}))
        await collector.wait_for(5, timeout=20)
        counts = [m.delivery_count for m in collector.messages]
        assert counts == [0, 1, 2, 3, 4]
        dead = Collector(DeliveryCapacity(1))
        dead_subscriber = await consume(server, dlq, dead)
        await dead.wait_for(1, timeout=20)
        assert dead.messages[0].payload == b"poison"
        assert (dead.messages[0].headers or {}).get("k") == "v"
        await asyncio.sleep(0.5)
        assert len(collector.messages) == 5  # no sixth delivery: it was dead-lettered
        await subscriber.close()
        await dead_subscriber.close()


async def test_server_reads_the_subscriptions_delivery_limit(host: str) -> None:
    name, plain, dlq = unique(), unique(), unique("dlq")
    for topic in (name, plain, dlq):
        create_topic(host, topic)
    create_subscription(host, name, name, dead_letter_topic=dlq, max_delivery_attempts=7)
    create_subscription(host, plain, plain)
    server = PubsubServer(PROJECT, emulator_host=host)
    async with server.connection():
        assert await server.delivery_limit(server.subscription_path(name)) == 7
        assert await server.delivery_limit(server.subscription_path(plain)) is None
        with pytest.raises(grpc.aio.AioRpcError):
            await server.delivery_limit(server.subscription_path(unique("missing")), timeout=5)


async def test_unroutable_message_is_given_up_at_the_policys_limit_with_one_line(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Pub/Sub dead-letters after max_delivery_attempts (5) by itself, before the worker's own
    10: the worker gives the message up at the 5th delivery, so its one ERROR line is there."""
    from repid import Repid, Router

    name, dlq = unique(), unique("dlq")
    create_topic(host, name)
    create_topic(host, dlq)
    create_subscription(host, dlq, dlq)
    create_subscription(host, name, name, dead_letter_topic=dlq, max_delivery_attempts=5)
    app = Repid()
    server = PubsubServer(PROJECT, emulator_host=host)
    app.servers.register_server("ps", server, is_default=True)
    router = Router()

    @router.actor(channel=name)
    async def known() -> None: ...

    app.include_router(router)
    caplog.set_level(logging.WARNING)
    async with server.connection():
        await app.send_message(channel=name, payload=b"{}", headers={"topic": "unknown"})
        worker = asyncio.create_task(app.run_worker(register_signals=[]))

        def poison_lines() -> list[logging.LogRecord]:
            return [r for r in caplog.records if "actor.route.poison_message" in r.getMessage()]

        deadline = time.monotonic() + 60
        while not poison_lines() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        dead = Collector(DeliveryCapacity(1))
        dead_subscriber = await consume(server, dlq, dead)
        await dead.wait_for(1, timeout=30)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        await dead_subscriber.close()
    [line] = poison_lines()
    assert line.levelno == logging.ERROR
    assert "after 5 deliveries" in line.getMessage()
    warnings = [r for r in caplog.records if r.name == "repid.worker"]
    assert warnings == [line]  # the rejects before it are DEBUG
    assert (dead.messages[0].headers or {}).get("topic") == "unknown"


async def test_reply_publishes_to_reply_to_and_acks(
    server: PubsubServer, channel: str, host: str
) -> None:
    replies = create_pair(host)
    collector = Collector(DeliveryCapacity(1), action=None)
    subscriber = await consume(server, channel, collector)
    await server.publish(channel=channel, message=MessageData(b"question", {"reply_to": replies}))
    await collector.wait_for(1)
    request = collector.messages[0]
    await request.reply(payload=b"answer", headers={"a": "1"}, content_type="text/plain")
    assert request.action is MessageAction.REPLIED
    # A second action is ignored.
    await request.nack()
    assert request.action is MessageAction.REPLIED
    collector.capacity.release()
    reply_collector = Collector(DeliveryCapacity(1))
    reply_subscriber = await consume(server, replies, reply_collector)
    await reply_collector.wait_for(1)
    reply = reply_collector.messages[0]
    assert (reply.payload, reply.headers, reply.content_type) == (
        b"answer",
        {"a": "1"},
        "text/plain",
    )
    await subscriber.close()
    await reply_subscriber.close()
    assert pull(host, channel) == []  # the request was acked


async def test_reply_to_an_explicit_channel_and_without_target(
    server: PubsubServer, channel: str, host: str
) -> None:
    replies = create_pair(host)
    collector = Collector(DeliveryCapacity(2), action=None)
    subscriber = await consume(server, channel, collector)
    await server.publish_batch(channel=channel, messages=[MessageData(b"1"), MessageData(b"2")])
    await collector.wait_for(2)
    with pytest.raises(ValueError, match="reply_to"):
        await collector.messages[0].reply(payload=b"x")
    assert not collector.messages[0].is_acted_on
    await collector.messages[1].reply(payload=b"explicit", channel=replies)
    await collector.settle(collector.messages[0], "ack")
    await subscriber.close()
    assert [_data(m) for m in pull(host, replies)] == [b"explicit"]


async def test_capacity_bounds_delivery_and_close_returns_the_buffer(
    server: PubsubServer, channel: str, host: str
) -> None:
    capacity = DeliveryCapacity(3)
    collector = Collector(capacity, action=None)  # hold every message: slots stay taken
    subscriber = await consume(server, channel, collector)
    await server.publish_batch(
        channel=channel, messages=[MessageData(b"%d" % i) for i in range(10)]
    )
    await collector.wait_for(3)
    await asyncio.sleep(0.5)  # give the subscriber every chance to over-deliver
    assert len(collector.messages) == 3 and capacity.free == 0
    # Freeing one slot lets exactly one more message through.
    await collector.settle(collector.messages[0], "ack")
    await collector.wait_for(4)
    await asyncio.sleep(0.3)
    assert len(collector.messages) == 4
    assert collector.max_in_use == 3
    await subscriber.close()
    # Buffered, undelivered messages went back at once (deadline 0): another consumer gets
    # them without waiting for the ack deadline.
    returned = pull(host, channel)
    delivered = {m.payload for m in collector.messages}
    assert {_data(m) for m in returned} == {b"%d" % i for i in range(10)} - delivered
    for message in collector.messages[1:]:
        await collector.settle(message, "ack")


async def test_pause_stops_delivery_and_resume_restarts_it(
    server: PubsubServer, channel: str
) -> None:
    collector = Collector(DeliveryCapacity(10))
    subscriber = await consume(server, channel, collector)
    await server.publish(channel=channel, message=MessageData(b"before"))
    await collector.wait_for(1)
    await subscriber.pause()
    assert not subscriber.is_active
    await server.publish(channel=channel, message=MessageData(b"during"))
    await asyncio.sleep(1.0)
    assert collector.payloads() == [b"before"]
    await subscriber.resume()
    assert subscriber.is_active
    await collector.wait_for(2, timeout=15)
    assert collector.payloads() == [b"before", b"during"]
    await subscriber.close()


async def test_resume_right_after_pause_is_not_a_stream_failure(
    server: PubsubServer, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="repid.connections.pubsub")
    collector = Collector(DeliveryCapacity(10))
    subscriber = await consume(server, channel, collector)
    await server.publish(channel=channel, message=MessageData(b"first"))
    await collector.wait_for(1)
    # pause() half-closes the streams without waiting; they end while already resumed.
    await subscriber.pause()
    await subscriber.resume()
    await server.publish(channel=channel, message=MessageData(b"second"))
    await collector.wait_for(2, timeout=15)
    assert collector.payloads() == [b"first", b"second"]
    assert server.is_connected
    await subscriber.close()
    assert not [r for r in caplog.records if r.getMessage().startswith("pubsub.stream_lost")]


async def test_streams_are_rotated_within_their_lifetime_without_loss_or_failure(
    host: str, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="repid.connections.pubsub")
    server = PubsubServer(PROJECT, emulator_host=host, stream_lifetime=1.0, pull_streams=2)
    opened: list[float] = []
    streaming_pull = server.streaming_pull

    def counting_streaming_pull(subscription: str) -> Any:
        opened.append(time.monotonic())
        return streaming_pull(subscription)

    server.streaming_pull = counting_streaming_pull  # type: ignore[method-assign]
    collector = Collector(DeliveryCapacity(10))
    total = 150
    async with server.connection():
        subscriber = await consume(server, channel, collector)
        for i in range(total):  # about 3 s of publishing: several lifetimes of both streams
            await server.publish(channel=channel, message=MessageData(str(i).encode()))
            await asyncio.sleep(0.02)
        await collector.wait_for(total, timeout=30)
        assert subscriber.is_active
        await subscriber.close()
    # Each message exactly once: a rotated stream is read to its end, nothing is redelivered.
    assert sorted(collector.payloads(), key=int) == [str(i).encode() for i in range(total)]
    assert len(opened) >= 2 + 2, f"the streams were not rotated: {len(opened)} calls"
    assert not [r for r in caplog.records if r.getMessage().startswith("pubsub.stream_lost")]


async def test_several_subscriptions_share_one_capacity(server: PubsubServer, host: str) -> None:
    first, second = create_pair(host), create_pair(host)
    capacity = DeliveryCapacity(2)
    collector = Collector(capacity, action=None)
    subscriber = await server.subscribe(
        channels_to_callbacks={first: collector, second: collector}, capacity=capacity
    )
    for name in (first, second):
        await server.publish_batch(channel=name, messages=[MessageData(b"m")] * 3)
    await collector.wait_for(2)
    await asyncio.sleep(0.5)
    assert len(collector.messages) == 2 and collector.max_in_use == 2
    while len(collector.messages) < 6:
        for message in [m for m in collector.messages if not m.is_acted_on]:
            await collector.settle(message, "ack")
        await collector.wait_for(min(len(collector.messages) + 1, 6))
    assert {m.channel for m in collector.messages} == {first, second}
    assert collector.max_in_use == 2
    await subscriber.close()


async def test_callback_error_returns_the_message(server: PubsubServer, channel: str) -> None:
    capacity = DeliveryCapacity(1)
    calls: list[ReceivedMessageT] = []

    async def flaky(message: ReceivedMessageT) -> None:
        calls.append(message)
        if len(calls) == 1:
            raise RuntimeError("callback bug")
        await message.ack()

    subscriber = await server.subscribe(channels_to_callbacks={channel: flaky}, capacity=capacity)
    await server.publish(channel=channel, message=MessageData(b"x"))
    for _ in range(100):
        if len(calls) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(calls) == 2
    assert calls[0].action is MessageAction.REJECTED
    assert calls[1].message_id == calls[0].message_id
    await subscriber.close()


@pytest.mark.slow
async def test_keep_alive_extends_the_deadline_of_a_slow_actor(
    server: PubsubServer, channel: str
) -> None:
    # The stream's ack deadline is 10 s; the actor takes 13 s. Without lease extension the
    # emulator would redeliver the message after 10 s.
    collector = Collector(DeliveryCapacity(2), action=None)
    subscriber = await consume(server, channel, collector)
    await server.publish(channel=channel, message=MessageData(b"slow"))
    await collector.wait_for(1)
    await asyncio.sleep(13)
    assert len(collector.messages) == 1, "redelivered while the actor was still running"
    await collector.settle(collector.messages[0], "ack")
    await subscriber.close()
    assert pull(server.emulator_host or "", channel) == []


async def test_connect_to_nothing_fails_clearly() -> None:
    server = PubsubServer(PROJECT, emulator_host=f"127.0.0.1:{free_port()}", connect_timeout=1)
    with pytest.raises(ConnectionError, match="could not reach Pub/Sub"):
        await server.connect()
    assert not server.is_connected
    with pytest.raises(ConnectionError, match="not connected"):
        await server.publish(channel="x", message=MessageData(b"x"))


def test_constructor_reads_emulator_host_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    server = PubsubServer("proj")
    assert server.emulator_host == "127.0.0.1:8085" and server.host == "127.0.0.1:8085"
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST")
    real = PubsubServer("proj")
    assert real.emulator_host is None and real.host == "pubsub.googleapis.com:443"
    with pytest.raises(ValueError, match="ack_deadline"):
        PubsubServer("proj", ack_deadline=5)
    with pytest.raises(ValueError, match="pull_streams"):
        PubsubServer("proj", pull_streams=0)
    with pytest.raises(ValueError, match="project"):
        PubsubServer("")
    # Streams are rotated by default on the emulator only (it never drops a dead client's).
    assert server.stream_lifetime == 5.0 and real.stream_lifetime is None
    assert PubsubServer("proj", stream_lifetime=timedelta(minutes=1)).stream_lifetime == 60.0
    assert PubsubServer("proj", emulator_host="h:1", stream_lifetime=None).stream_lifetime is None
    with pytest.raises(ValueError, match="stream_lifetime"):
        PubsubServer("proj", stream_lifetime=0.5)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"},
            "PYTHONPATH": os.getcwd(),
        },
    )


def test_import_repid_does_not_import_grpc() -> None:
    result = _run("import sys, repid; print('grpc' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_import_without_grpc_names_the_extra() -> None:
    result = _run(
        "import sys; sys.modules['grpc'] = None\n"
        "try:\n"
        "    import repid.connections.pubsub\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install repid[pubsub]" in result.stdout


def _data(received: dict[str, object]) -> bytes:
    import base64

    message = received["message"]
    assert isinstance(message, dict)
    return base64.b64decode(message.get("data", ""))


def _pull_project(host: str, project: str, subscription: str) -> list[dict[str, object]]:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"http://{host}/v1/projects/{project}/subscriptions/{subscription}:pull",
        data=json.dumps({"maxMessages": 10, "returnImmediately": True}).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return list(json.loads(response.read() or b"{}").get("receivedMessages", []))


async def test_non_string_header_is_a_clear_type_error(server: PubsubServer, channel: str) -> None:
    with pytest.raises(TypeError, match="str header/attribute"):
        await server.publish(channel=channel, message=MessageData(b"x", {"n": 1}))  # type: ignore[dict-item]


def test_emulator_needs_no_google_auth_and_the_service_names_the_extra(host: str) -> None:
    name = create_pair(host)
    result = _run(
        "import asyncio, sys\n"
        "sys.modules['google'] = None; sys.modules['google.auth'] = None\n"
        "from repid.connections.pubsub import PubsubServer\n"
        "from repid.data import MessageData\n"
        "async def main():\n"
        f"    async with PubsubServer('{PROJECT}', emulator_host='{host}').connection() as s:\n"
        f"        await s.publish(channel='{name}', message=MessageData(b'ok'))\n"
        "    try:\n"
        "        await PubsubServer('p', emulator_host=None, endpoint='127.0.0.1:9').connect()\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
        "asyncio.run(main())\n"
    )
    assert result.returncode == 0, result.stderr
    assert "needs google-auth" in result.stdout and "pip install repid[pubsub]" in result.stdout
    assert [_data(m) for m in pull(host, name)] == [b"ok"]


async def test_a_stale_ack_id_does_not_fail_the_acks_batched_with_it(
    server: PubsubServer, channel: str, host: str
) -> None:
    collector = Collector(DeliveryCapacity(5), action=None)
    subscriber = await consume(server, channel, collector)
    await server.publish_batch(channel=channel, messages=[MessageData(b"1"), MessageData(b"2")])
    await collector.wait_for(2)
    state = subscriber.subscriptions[0]  # type: ignore[attr-defined]
    # The three settlements share one Acknowledge call, which the emulator refuses as a whole
    # (INVALID_ARGUMENT) because of the stale id; the valid ones must still be acked.
    results = await asyncio.gather(
        state.settle_ack("projects/x/subscriptions/y:999999"),
        collector.messages[0].ack(),
        collector.messages[1].ack(),
        return_exceptions=True,
    )
    assert isinstance(results[0], grpc.aio.AioRpcError)
    assert results[0].code() == grpc.StatusCode.INVALID_ARGUMENT
    assert results[1:] == [None, None]
    await subscriber.close()
    assert pull(host, channel) == []


async def test_keep_alive_drops_stale_ack_ids_and_keeps_the_rest(
    server: PubsubServer, channel: str
) -> None:
    collector = Collector(DeliveryCapacity(5), action=None)
    subscriber = await consume(server, channel, collector)
    await server.publish(channel=channel, message=MessageData(b"held"))
    await collector.wait_for(1)
    state = subscriber.subscriptions[0]  # type: ignore[attr-defined]
    stale = "projects/x/subscriptions/y:999999"
    state.leased[stale] = time.monotonic()
    await state.keep_alive()  # the batch fails on the stale id; singly, only it is refused
    assert stale not in state.leased
    held = collector.messages[0]
    assert held.ack_id in state.leased  # type: ignore[attr-defined]
    await collector.settle(held, "ack")
    assert held.ack_id not in state.leased  # type: ignore[attr-defined]
    await subscriber.close()


async def test_a_full_topic_name_as_channel_is_used_as_is(host: str) -> None:
    name = create_pair(host)
    server = PubsubServer(PROJECT, emulator_host=host, channel_prefix="ignored-")
    async with server.connection():
        await server.publish(channel=f"projects/{PROJECT}/topics/{name}", message=MessageData(b"f"))
    assert [_data(m) for m in pull(host, name)] == [b"f"]
