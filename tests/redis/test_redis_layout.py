"""RedisServer's key layout (repid 2.x's) and its repid 2.x keyword names, on a real Redis."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
import redis.asyncio as aioredis
from redis_helpers import Collector, dlq, group, stream, wait_until

from repid.connections.abc import DeliveryCapacity
from repid.connections.redis import RedisServer
from repid.data import MessageData
from repid.errors import ConfigurationError

pytestmark = pytest.mark.redis


def test_2x_keyword_names_mean_the_same():
    server = RedisServer(dsn="redis://127.0.0.1:6390/2", min_idle_ms=45_000, block_ms=1500)
    assert (server.host, server.pathname) == ("127.0.0.1:6390", "/2")
    assert server.claim_idle == 45.0
    assert server.block == 1.5
    assert server.claim_interval == 45.0 / 6
    assert server.stream_name_for("orders") == "repid:orders"
    off = RedisServer(claim_interval=0.0)
    assert not off.claims_enabled  # 2.x: 0 turns reclaiming off
    assert RedisServer().claims_enabled


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"url": "redis://a", "dsn": "redis://b"}, "url= and dsn="),
        ({"claim_idle": 5.0, "min_idle_ms": 5000}, "claim_idle= and min_idle_ms="),
        ({"block": 1.0, "block_ms": 1000}, "block= and block_ms="),
        ({"group": "g", "consumer_group_strategy": str}, "group= and consumer_group_strategy="),
    ],
)
def test_a_name_and_its_2x_spelling_together_are_refused(kwargs, names):
    with pytest.raises(ConfigurationError, match=names):
        RedisServer(**kwargs)


async def test_strategies_name_stream_group_and_dead_letters(
    redis_url: str, raw: aioredis.Redis, channel: str
):
    server = RedisServer(
        redis_url,
        block=0.2,
        stream_name_strategy=lambda c: f"app:{c}:s",
        consumer_group_strategy=lambda c: f"app:{c}:g",
        dlq_stream_strategy=lambda c: f"app:{c}:d",
    )
    async with server.connection():
        await server.publish(channel=channel, message=MessageData(payload=b"x"))
        assert await raw.xlen(f"app:{channel}:s") == 1
        collector = Collector(DeliveryCapacity(5), settle="nack")
        sub = await server.subscribe(
            channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
        )
        await collector.wait_for(1)
        await wait_until(lambda: not collector.tasks, what="the nack")
        await sub.close()
        groups = await raw.xinfo_groups(f"app:{channel}:s")
        assert [g["name"] for g in groups] == [f"app:{channel}:g".encode()]
        ((_, fields),) = await raw.xrange(f"app:{channel}:d")
        assert fields[b"original_stream"] == f"app:{channel}:s".encode()
        assert (await server.read_dead_letters(channel))[0].payload == b"x"
    await raw.delete(f"app:{channel}:s", f"app:{channel}:d")


async def test_no_dead_letter_stream_drops_nacked(
    redis_url: str, raw: aioredis.Redis, channel: str, caplog: pytest.LogCaptureFixture
):
    server = RedisServer(redis_url, block=0.2, dlq_stream_strategy=None)
    async with server.connection():
        await server.publish(channel=channel, message=MessageData(payload=b"x"))
        collector = Collector(DeliveryCapacity(5), settle="nack")
        with caplog.at_level(logging.WARNING, logger="repid.connections.redis"):
            sub = await server.subscribe(
                channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
            )
            await collector.wait_for(1)
            await wait_until(lambda: not collector.tasks, what="the nack")
        await sub.close()
        assert await raw.xlen(stream(channel)) == 0
        assert not await raw.exists(dlq(channel))
        assert (await raw.xpending(stream(channel), group(channel)))["pending"] == 0
        assert any(r.getMessage().startswith("redis.nack_dropped") for r in caplog.records)
        assert await server.read_dead_letters(channel) == []
        assert await server.replay_dead_letters(channel) == 0


async def test_dlq_maxlen_trims_dead_letters(redis_url: str, raw: aioredis.Redis, channel: str):
    server = RedisServer(redis_url, block=0.2, dlq_maxlen=0)
    async with server.connection():
        await server.publish_batch(channel=channel, messages=[MessageData(payload=b"x")] * 300)
        collector = Collector(DeliveryCapacity(None), settle="nack")
        sub = await server.subscribe(
            channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
        )
        await collector.wait_for(300)
        await wait_until(lambda: not collector.tasks, what="the nacks")
        await sub.close()
        # MAXLEN ~ 0 trims whole macro nodes (100 entries each): far fewer than 300 remain.
        assert await raw.xlen(dlq(channel)) < 300
    await raw.delete(dlq(channel))


async def test_group_start_id_dollar_skips_older_messages(
    redis_url: str, raw: aioredis.Redis, channel: str
):
    server = RedisServer(redis_url, block=0.2, consumer_group_start_id="$")
    async with server.connection():
        await server.publish(channel=channel, message=MessageData(payload=b"old"))
        collector = Collector(DeliveryCapacity(5), settle="ack")
        sub = await server.subscribe(
            channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
        )
        await server.publish(channel=channel, message=MessageData(payload=b"new"))
        await collector.wait_for(1)
        await asyncio.sleep(0.3)
        assert [m.payload for m in collector.messages] == [b"new"]
        await sub.close()


async def test_batch_size_caps_each_read(redis_url: str, channel: str):
    server = RedisServer(redis_url, block=0.2, batch_size=3)
    async with server.connection():
        await server.publish_batch(channel=channel, messages=[MessageData(payload=b"x")] * 10)
        collector = Collector(DeliveryCapacity(100), settle="ack")
        counts: list[int] = []
        sub = await server.subscribe(
            channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
        )
        fetch = sub._fetch

        async def recording_fetch(per_stream: int) -> bytes:
            counts.append(per_stream)
            return await fetch(per_stream)

        sub._fetch = recording_fetch  # type: ignore[method-assign]
        await collector.wait_for(10)
        await sub.close()
        assert counts and max(counts) == 3


@pytest.mark.parametrize("fast_fetch", [True, False], ids=["fetch-script", "xreadgroup"])
@pytest.mark.parametrize("shared_group", [False, True], ids=["group-per-channel", "one-group"])
async def test_waiting_reader_wakes_for_any_channel(
    redis_url: str, raw: aioredis.Redis, fast_fetch: bool, shared_group: bool
):
    """Channels read through different groups (the default) wait in XREAD, not XREADGROUP."""
    names = [f"test-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    server = RedisServer(redis_url, block=5.0, group="shared" if shared_group else None)
    async with server.connection():
        collector = Collector(DeliveryCapacity(10), settle="ack")
        sub = await server.subscribe(
            channels_to_callbacks=dict.fromkeys(names, collector.callback),
            capacity=collector.capacity,
        )
        sub._fast_fetch = fast_fetch
        assert sub._single_group is shared_group
        await asyncio.sleep(0.3)  # the reader is now blocked, waiting
        for i, name in enumerate(reversed(names)):
            await server.publish(channel=name, message=MessageData(payload=b"%d" % i))
            # Much less than the 5 s block: the wait ended because the stream grew.
            await collector.wait_for(i + 1, timeout=4.0)
        await wait_until(lambda: not collector.tasks, what="acks")
        await sub.close()
        for name in names:
            assert await raw.xlen(stream(name)) == 0
    await raw.delete(*(stream(name) for name in names))
