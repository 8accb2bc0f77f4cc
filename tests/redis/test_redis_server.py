"""RedisServer on a real redis-server: publish, consume, outcomes, dead letters, flow control."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import redis.asyncio as aioredis
from redis_helpers import Collector, dlq, group, stream, wait_until

from repid.connections.abc import DeliveryCapacity, MessageAction, ServerT, SubscriberT
from repid.connections.base import Reply
from repid.connections.redis import RedisConnectionError, RedisServer, RedisServerError
from repid.data import MessageData

pytestmark = pytest.mark.redis


async def entries(raw: aioredis.Redis, channel: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return list(await raw.xrange(stream(channel)))


async def pending_count(raw: aioredis.Redis, channel: str) -> int:
    info = await raw.xpending(stream(channel), group(channel))
    return int(info["pending"])


async def test_implements_the_protocols(server: RedisServer, channel: str):
    assert isinstance(server, ServerT)
    sub = await server.subscribe(
        channels_to_callbacks={channel: Collector(DeliveryCapacity(1)).callback},
        capacity=DeliveryCapacity(1),
    )
    assert isinstance(sub, SubscriberT)
    assert sub.is_active
    await sub.pause()
    assert not sub.is_active
    await sub.resume()
    assert sub.is_active
    await sub.close()
    assert not sub.is_active


async def test_round_trip_with_headers_and_content_type(
    server: RedisServer, raw: aioredis.Redis, channel: str
):
    headers = {"topic": "greet", "x-ünïcode": "välue", "reply_to": "answers"}
    await server.publish(
        channel=channel,
        message=MessageData(payload=b"\x00hello\xff", headers=headers, content_type="text/plain"),
    )
    await server.publish(channel=channel, message=MessageData(payload=b"bare"))
    stored = await entries(raw, channel)
    assert stored[0][1][b"payload"] == b"\x00hello\xff"
    assert json.loads(stored[0][1][b"headers"]) == headers
    assert stored[0][1][b"content_type"] == b"text/plain"
    assert stored[1][1] == {b"payload": b"bare"}

    collector = Collector(DeliveryCapacity(10), settle="ack")
    sub = await server.subscribe(
        channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
    )
    await collector.wait_for(2)
    first, second = collector.messages
    assert (first.payload, first.headers, first.content_type) == (
        b"\x00hello\xff",
        headers,
        "text/plain",
    )
    assert first.channel == channel
    assert first.reply_to == "answers"
    assert first.delivery_count == 0
    assert first.message_id == stored[0][0].decode()
    assert (second.payload, second.headers, second.content_type) == (b"bare", None, None)
    await wait_until(lambda: not collector.tasks, what="acks")
    await sub.close()
    assert await raw.xlen(stream(channel)) == 0
    assert await pending_count(raw, channel) == 0


async def test_maxlen_exact_and_approximate(server: RedisServer, raw: aioredis.Redis, channel: str):
    for i in range(10):
        await server.publish(
            channel=channel,
            message=MessageData(payload=str(i).encode()),
            server_specific_parameters={"maxlen": 3, "approximate": False},
        )
    stored = await entries(raw, channel)
    assert [fields[b"payload"] for _, fields in stored] == [b"7", b"8", b"9"]
    # Approximate trimming only removes whole macro nodes (100 entries by default), so a short
    # stream is kept whole: the `~` really was sent.
    approx = f"{channel}-approx"
    for i in range(10):
        await server.publish(
            channel=approx,
            message=MessageData(payload=str(i).encode()),
            server_specific_parameters={"maxlen": 3},
        )
    assert await raw.xlen(stream(approx)) == 10
    await raw.delete(stream(approx))


async def test_nomkstream(server: RedisServer, raw: aioredis.Redis, channel: str):
    with pytest.raises(RedisServerError, match="nomkstream"):
        await server.publish(
            channel=channel,
            message=MessageData(payload=b"x"),
            server_specific_parameters={"nomkstream": True},
        )
    assert not await raw.exists(stream(channel))
    await server.publish(channel=channel, message=MessageData(payload=b"first"))
    await server.publish(
        channel=channel,
        message=MessageData(payload=b"second"),
        server_specific_parameters={"nomkstream": True},
    )
    assert await raw.xlen(stream(channel)) == 2


async def test_stream_id(server: RedisServer, raw: aioredis.Redis, channel: str):
    await server.publish(
        channel=channel,
        message=MessageData(payload=b"x"),
        server_specific_parameters={"stream_id": "12345-7"},
    )
    assert (await entries(raw, channel))[0][0] == b"12345-7"
    with pytest.raises(RedisServerError, match="equal or smaller"):
        await server.publish(
            channel=channel,
            message=MessageData(payload=b"y"),
            server_specific_parameters={"stream_id": "1-1"},
        )


async def test_unknown_parameter_is_refused(server: RedisServer, channel: str):
    with pytest.raises(ValueError, match="unknown"):
        await server.publish(
            channel=channel,
            message=MessageData(payload=b"x"),
            server_specific_parameters={"priority": 5},
        )


async def test_publish_batch(server: RedisServer, raw: aioredis.Redis, channel: str):
    messages = [MessageData(payload=b"%d" % i, headers={"i": str(i)}) for i in range(250)]
    ids = await server.publish_batch(channel=channel, messages=messages)
    assert len(ids) == 250
    stored = await entries(raw, channel)
    assert [entry_id.decode() for entry_id, _ in stored] == ids
    assert [fields[b"payload"] for _, fields in stored] == [m.payload for m in messages]
    await server.publish_batch(
        channel=channel,
        messages=messages[:5],
        server_specific_parameters={"maxlen": 2, "approximate": False},
    )
    assert await raw.xlen(stream(channel)) == 2


async def subscribe_one(server: RedisServer, channel: str, payload: bytes = b"job", **kwargs):
    await server.publish(channel=channel, message=MessageData(payload=payload, **kwargs))
    collector = Collector(DeliveryCapacity(5))
    sub = await server.subscribe(
        channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
    )
    await collector.wait_for(1)
    return collector, sub, collector.messages[0]


async def test_ack_removes_for_good(server: RedisServer, raw: aioredis.Redis, channel: str):
    collector, sub, message = await subscribe_one(server, channel)
    assert await pending_count(raw, channel) == 1
    await collector.finish(message, "ack")
    assert message.action is MessageAction.ACKED
    assert await raw.xlen(stream(channel)) == 0
    assert await pending_count(raw, channel) == 0
    await message.ack()  # a second action is ignored
    await message.nack()
    assert message.action is MessageAction.ACKED
    assert await raw.xlen(dlq(channel)) == 0
    await sub.close()


async def test_reject_puts_back_for_redelivery(
    server: RedisServer, raw: aioredis.Redis, channel: str
):
    collector, sub, message = await subscribe_one(
        server, channel, headers={"h": "1"}, content_type="c/t"
    )
    await collector.finish(message, "reject")
    assert message.action is MessageAction.REJECTED
    await collector.wait_for(2)
    again = collector.messages[1]
    assert (again.payload, again.headers, again.content_type) == (b"job", {"h": "1"}, "c/t")
    assert again.delivery_count == 1
    assert again.message_id == message.message_id  # the same message...
    assert again.entry_id != message.entry_id  # ...in a new stream entry
    await collector.finish(again, "reject")
    await collector.wait_for(3)
    assert collector.messages[2].delivery_count == 2
    await collector.finish(collector.messages[2], "ack")
    await sub.close()
    assert await raw.xlen(stream(channel)) == 0
    assert await pending_count(raw, channel) == 0


async def test_nack_dead_letters_and_replay(server: RedisServer, raw: aioredis.Redis, channel: str):
    collector, sub, message = await subscribe_one(
        server, channel, headers={"k": "v"}, content_type="a/b"
    )
    await sub.pause()
    await collector.finish(message, "nack")
    assert message.action is MessageAction.NACKED
    assert await raw.xlen(stream(channel)) == 0
    assert await pending_count(raw, channel) == 0
    letters = await server.read_dead_letters(channel)
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.payload, letter.headers, letter.content_type) == (b"job", {"k": "v"}, "a/b")
    assert letter.reason == "nack"
    assert letter.original_id == message.message_id
    assert letter.delivery_count == 1

    assert await server.replay_dead_letters(channel) == 1
    assert await raw.xlen(dlq(channel)) == 0
    await sub.resume()
    await collector.wait_for(2)
    replayed = collector.messages[1]
    assert (replayed.payload, replayed.headers, replayed.content_type) == (
        b"job",
        {"k": "v"},
        "a/b",
    )
    assert replayed.delivery_count == 0
    assert replayed.message_id == message.message_id
    await collector.finish(replayed, "ack")
    await sub.close()


async def test_replay_count(server: RedisServer, raw: aioredis.Redis, channel: str):
    dead = dlq(channel)
    assert server.dead_letter_stream(channel) == dead
    for i in range(250):
        await raw.xadd(dead, {"payload": b"%d" % i, "dead_reason": "nack", "delivery_count": "3"})
    assert await server.replay_dead_letters(channel, limit=120) == 120
    assert await raw.xlen(dead) == 130
    assert await server.replay_dead_letters(channel) == 130
    stored = await entries(raw, channel)
    assert [f[b"payload"] for _, f in stored] == [b"%d" % i for i in range(250)]
    assert all(set(f) == {b"payload"} for _, f in stored)


async def test_reply_publishes_and_acks(server: RedisServer, raw: aioredis.Redis, channel: str):
    answers = f"{channel}-answers"
    collector, sub, message = await subscribe_one(server, channel, headers={"reply_to": answers})
    await message.reply(payload=b"answer", headers={"re": "1"}, content_type="text/plain")
    collector.capacity.release()
    assert message.action is MessageAction.REPLIED
    assert await raw.xlen(stream(channel)) == 0
    assert await pending_count(raw, channel) == 0
    (reply,) = await entries(raw, answers)
    assert reply[1] == {
        b"payload": b"answer",
        b"headers": b'{"re":"1"}',
        b"content_type": b"text/plain",
    }
    await sub.close()
    await raw.delete(stream(answers))


async def test_reply_with_parameters_and_failure(
    server: RedisServer, raw: aioredis.Redis, channel: str
):
    other = f"{channel}-other"
    collector, sub, message = await subscribe_one(server, channel)
    with pytest.raises(RedisServerError, match="nomkstream"):
        await message.reply(
            payload=b"r", channel=other, server_specific_parameters={"nomkstream": True}
        )
    # Nothing happened: the request is still pending and may be settled again.
    assert message.action is None
    assert await pending_count(raw, channel) == 1
    assert not await raw.exists(stream(other))
    await message.reply(
        payload=b"r", channel=other, server_specific_parameters={"stream_id": "77-1"}
    )
    collector.capacity.release()
    assert (await entries(raw, other))[0][0] == b"77-1"
    assert await raw.xlen(stream(channel)) == 0
    await sub.close()
    await raw.delete(stream(other))


async def test_malformed_entry_goes_to_dead_letters(
    server: RedisServer, raw: aioredis.Redis, channel: str, caplog: pytest.LogCaptureFixture
):
    await raw.xadd(stream(channel), {"junk": "1"})
    await raw.xadd(stream(channel), {"payload": "x", "headers": "{broken"})
    await server.publish(channel=channel, message=MessageData(payload=b"good"))
    collector = Collector(DeliveryCapacity(5), settle="ack")
    with caplog.at_level(logging.ERROR, logger="repid.connections.redis"):
        sub = await server.subscribe(
            channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
        )
        await collector.wait_for(1)
        await wait_until(lambda: not collector.tasks, what="ack")
    assert [m.payload for m in collector.messages] == [b"good"]

    # The malformed entries are moved by tasks of their own, in order; the good message may be
    # acked before the second move is done.
    async def both_moved() -> bool:
        return len(await server.read_dead_letters(channel)) == 2

    await wait_until(both_moved, what="both malformed entries in the dead letters")
    letters = await server.read_dead_letters(channel)
    assert [letter.reason for letter in letters] == [
        "malformed: the entry has no 'payload' field",
        "malformed: the 'headers' field is not JSON: Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)",
    ]
    assert letters[0].fields[b"junk"] == b"1"
    assert letters[0].payload == b""
    assert sum("redis.malformed_entry" in r.getMessage() for r in caplog.records) == 2
    assert sub.is_active
    await sub.close()
    assert await raw.xlen(stream(channel)) == 0


@pytest.mark.parametrize("limit", [1, 3])
async def test_never_more_in_flight_than_capacity(
    server: RedisServer, raw: aioredis.Redis, channel: str, limit: int
):
    second = f"{channel}-b"
    await server.publish_batch(channel=channel, messages=[MessageData(payload=b"a")] * 8)
    await server.publish_batch(channel=second, messages=[MessageData(payload=b"b")] * 8)
    collector = Collector(DeliveryCapacity(limit))
    sub = await server.subscribe(
        channels_to_callbacks={channel: collector.callback, second: collector.callback},
        capacity=collector.capacity,
    )
    done = 0
    while done < 16:
        await collector.wait_for(done + 1)
        assert collector.capacity.in_use <= limit
        # Let the loop run: it must not deliver more while the worker is full.
        await asyncio.sleep(0.05)
        assert len(collector.messages) - done <= limit
        batch = collector.messages[done:]
        for message in batch:
            await collector.finish(message, "ack")
        done += len(batch)
    assert collector.max_in_use <= limit
    assert sorted(m.payload for m in collector.messages) == [b"a"] * 8 + [b"b"] * 8
    await sub.close()
    assert await raw.xlen(stream(channel)) == 0
    assert await raw.xlen(stream(second)) == 0
    await raw.delete(stream(second))


async def test_unbounded_capacity_reads_in_batches(server: RedisServer, channel: str):
    await server.publish_batch(channel=channel, messages=[MessageData(payload=b"m")] * 50)
    collector = Collector(DeliveryCapacity(None, unbounded_batch=7), settle="ack")
    sub = await server.subscribe(
        channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
    )
    await collector.wait_for(50)
    await sub.close()


async def test_message_published_before_group_exists_is_delivered(
    server: RedisServer, raw: aioredis.Redis, channel: str
):
    await server.publish(channel=channel, message=MessageData(payload=b"early"))
    assert await raw.xinfo_groups(stream(channel)) == []
    collector, sub, message = await subscribe_one(server, channel, payload=b"later")
    await collector.wait_for(2)
    assert [m.payload for m in collector.messages] == [b"early", b"later"]
    groups = await raw.xinfo_groups(stream(channel))
    assert [g["name"] for g in groups] == [group(channel).encode()]
    await sub.close()


async def test_two_subscribers_share_the_work(server: RedisServer, redis_url: str, channel: str):
    other = RedisServer(redis_url, block=0.2)
    await other.connect()
    try:
        a = Collector(DeliveryCapacity(5), settle="ack")
        b = Collector(DeliveryCapacity(5), settle="ack")
        sub_a = await server.subscribe(
            channels_to_callbacks={channel: a.callback}, capacity=a.capacity
        )
        sub_b = await other.subscribe(
            channels_to_callbacks={channel: b.callback}, capacity=b.capacity
        )
        assert sub_a.consumer != sub_b.consumer
        await server.publish_batch(
            channel=channel, messages=[MessageData(payload=b"%d" % i) for i in range(200)]
        )
        await wait_until(lambda: len(a.messages) + len(b.messages) >= 200, what="200 deliveries")
        await asyncio.sleep(0.2)
        payloads = [m.payload for m in a.messages + b.messages]
        assert sorted(payloads) == sorted(b"%d" % i for i in range(200))  # each exactly once
        await sub_a.close()
        await sub_b.close()
    finally:
        await other.disconnect()


async def test_close_releases_undelivered(server: RedisServer, raw: aioredis.Redis, channel: str):
    second = f"{channel}-b"
    await server.publish(channel=channel, message=MessageData(payload=b"a"))
    await server.publish(channel=second, message=MessageData(payload=b"b"))
    # One slot, two channels: one XREADGROUP with COUNT 1 per stream returns both, one waits.
    collector = Collector(DeliveryCapacity(1))
    sub = await server.subscribe(
        channels_to_callbacks={channel: collector.callback, second: collector.callback},
        capacity=collector.capacity,
    )
    await collector.wait_for(1)
    delivered = collector.messages[0]
    await wait_until(
        lambda: _sum_pending(raw, [channel, second], 2), what="both read by the consumer"
    )
    await sub.close()
    # The undelivered one went back (as a fresh entry nobody holds); the delivered one is still
    # this consumer's until it is settled.
    assert await pending_count(raw, channel) + await pending_count(raw, second) == 1
    await collector.finish(delivered, "ack")
    assert await pending_count(raw, channel) + await pending_count(raw, second) == 0
    left = await entries(raw, channel) + await entries(raw, second)
    assert len(left) == 1
    assert left[0][1][b"payload"] != delivered.payload
    assert b"delivery_count" not in left[0][1]
    await raw.delete(stream(second))


async def _sum_pending(raw: aioredis.Redis, keys: list[str], expected: int) -> bool:
    total = 0
    for key in keys:
        total += await pending_count(raw, key)
    return total == expected


@pytest.mark.parametrize("fast_fetch", [True, False], ids=["fetch-script", "xreadgroup"])
async def test_publish_batch_chunks_and_mixed_fields(
    server: RedisServer, raw: aioredis.Redis, channel: str, fast_fetch: bool
):
    messages = [
        MessageData(
            payload=bytes([i % 256]) * (i % 7) + b"1:x\r\n",
            headers={"i": str(i), "colon:": "a:b"} if i % 2 else None,
            content_type="text/x" if i % 3 else None,
        )
        for i in range(2500)
    ]
    ids = await server.publish_batch(channel=channel, messages=messages)
    assert len(ids) == len(set(ids)) == 2500
    stored = await entries(raw, channel)
    assert [entry_id.decode() for entry_id, _ in stored] == ids
    collector = Collector(DeliveryCapacity(None), settle="ack")
    sub = await server.subscribe(
        channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
    )
    sub._fast_fetch = fast_fetch
    await collector.wait_for(2500)
    got = [(m.payload, m.headers, m.content_type) for m in collector.messages]
    assert got == [(m.payload, m.headers, m.content_type) for m in messages]
    await wait_until(lambda: not collector.tasks, what="acks")
    await sub.close()
    assert await raw.xlen(stream(channel)) == 0


async def test_publish_batch_after_script_flush(
    server: RedisServer, raw: aioredis.Redis, channel: str
):
    await raw.script_flush()  # what a broker restart does to the script cache
    ids = await server.publish_batch(channel=channel, messages=[MessageData(payload=b"x")] * 3)
    assert len(ids) == 3
    assert await raw.xlen(stream(channel)) == 3


async def test_publish_batch_refusals(server: RedisServer, raw: aioredis.Redis, channel: str):
    with pytest.raises(RedisServerError, match="nomkstream"):
        await server.publish_batch(
            channel=channel,
            messages=[MessageData(payload=b"x")] * 3,
            server_specific_parameters={"nomkstream": True},
        )
    assert not await raw.exists(stream(channel))
    with pytest.raises(ValueError, match="stream_id"):
        await server.publish_batch(
            channel=channel,
            messages=[MessageData(payload=b"x")],
            server_specific_parameters={"stream_id": "1-1"},
        )
    assert await server.publish_batch(channel=channel, messages=[]) == []


async def test_publish_survives_a_killed_connection(
    server: RedisServer, raw: aioredis.Redis, channel: str
):
    await server.publish(channel=channel, message=MessageData(payload=b"before"))
    writer = server._writer
    assert writer is not None
    client_id = await writer.submit([b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n"])
    assert await raw.client_kill_filter(_id=client_id) == 1
    # The writer's connection is dead: the publish falls back to redis-py and still lands once.
    await server.publish(channel=channel, message=MessageData(payload=b"after"))
    await server.publish(channel=channel, message=MessageData(payload=b"later"))
    stored = await entries(raw, channel)
    assert [fields[b"payload"] for _, fields in stored] == [b"before", b"after", b"later"]


async def test_concurrent_publishes_are_pipelined(
    server: RedisServer, raw: aioredis.Redis, channel: str
):
    payloads = [b"%d" % i for i in range(500)]
    await asyncio.gather(
        *(server.publish(channel=channel, message=MessageData(payload=p)) for p in payloads)
    )
    stored = await entries(raw, channel)
    assert [fields[b"payload"] for _, fields in stored] == payloads  # submission order kept
    results = await asyncio.gather(
        server.publish(channel=channel, message=MessageData(payload=b"ok")),
        server.publish(
            channel=channel,
            message=MessageData(payload=b"bad"),
            server_specific_parameters={"stream_id": "1-1"},
        ),
        server.publish(channel=channel, message=MessageData(payload=b"ok too")),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], RedisServerError)
    assert await raw.xlen(stream(channel)) == 502


async def test_settling_after_disconnect_fails_cleanly(redis_url: str, channel: str):
    server = RedisServer(redis_url, block=0.1)
    await server.connect()
    collector, sub, message = await subscribe_one(server, channel)
    await server.disconnect()
    assert not server.is_connected
    for action in ("ack", "nack", "reject"):
        with pytest.raises(RedisConnectionError, match="not connected"):
            await asyncio.wait_for(getattr(message, action)(), 5)
        assert message.action is None  # not taken: it may be settled again later
    with pytest.raises(RedisConnectionError, match="not connected"):
        await server.publish(channel=channel, message=MessageData(payload=b"x"))


async def test_settlement_scripts_are_idempotent(
    server: RedisServer, raw: aioredis.Redis, channel: str
):
    """A settlement retried after a lost reply (the script ran) does nothing the second time."""
    collector, sub, message = await subscribe_one(server, channel)
    entry = message.entry_id.encode()
    key, dead, grp = stream(channel).encode(), dlq(channel).encode(), group(channel)
    move = server._move_entries
    assert await move(key, grp, dead, [entry], extra_deliveries=1, reason="nack") == 1
    assert await move(key, grp, dead, [entry], extra_deliveries=1, reason="nack") == 0
    assert await move(key, grp, key, [entry], extra_deliveries=1, reason="") == 0
    assert await raw.xlen(dlq(channel)) == 1
    assert await raw.xlen(stream(channel)) == 0

    await server.publish(channel=channel, message=MessageData(payload=b"second"))
    await collector.wait_for(2)
    second = collector.messages[1]
    answers = f"{channel}-answers"
    for _ in range(2):
        await server._reply_entry(
            key, grp, second.entry_id.encode(), Reply(answers, b"r", None, None, None)
        )
    assert await raw.xlen(stream(answers)) == 1  # one reply, not two
    assert await raw.xlen(stream(channel)) == 0
    await sub.close()
    await raw.delete(stream(answers))


async def test_many_concurrent_settlements_share_the_pool(
    redis_url: str, raw: aioredis.Redis, channel: str
):
    # 300 nacks and 300 rejects in flight at once with a pool of 5 connections: they queue
    # for connections instead of failing.
    server = RedisServer(redis_url, block=0.1, max_connections=5)
    await server.connect()
    try:
        await server.publish_batch(channel=channel, messages=[MessageData(payload=b"x")] * 300)
        collector = Collector(DeliveryCapacity(None), settle="nack")
        sub = await server.subscribe(
            channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
        )
        await collector.wait_for(300)
        await wait_until(lambda: not collector.tasks, what="nacks")
        assert all(m.action is MessageAction.NACKED for m in collector.messages)
        assert await raw.xlen(dlq(channel)) == 300
        assert await raw.xlen(stream(channel)) == 0
        await sub.close()
    finally:
        await server.disconnect()


async def test_settlements_after_script_flush(
    server: RedisServer, raw: aioredis.Redis, channel: str
):
    collector, sub, message = await subscribe_one(server, channel)
    await raw.script_flush()  # what a broker restart does to the script cache
    await collector.finish(message, "reject")
    await collector.wait_for(2)
    await raw.script_flush()
    await collector.finish(collector.messages[1], "nack")
    assert await raw.xlen(dlq(channel)) == 1
    assert await raw.xlen(stream(channel)) == 0
    await sub.close()


async def test_disconnect_stops_the_keepalive_of_a_closed_subscription(
    redis_url: str, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Bug: the subscription removed itself from the server when it closed, so `disconnect`
    # could not stop its keep-alive, which then failed every tick ("redis.keepalive_failed").
    server = RedisServer(redis_url, block=0.1, keepalive_interval=0.05)
    await server.connect()
    collector, sub, message = await subscribe_one(server, channel)
    await sub.close()  # what the worker does before the app disconnects; `message` is held
    await server.disconnect()
    caplog.set_level(logging.WARNING, logger="repid.connections.redis")
    await asyncio.sleep(0.5)  # ten keep-alive intervals
    assert not [r for r in caplog.records if "keepalive" in r.getMessage()]
    assert not [t for t in asyncio.all_tasks() if "keepalive" in t.get_name()]
