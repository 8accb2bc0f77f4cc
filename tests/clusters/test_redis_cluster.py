"""RedisServer on the Redis Cluster of tests/clusters: finding out, slots, redirections.

The cluster is three masters and three replicas on loopback. Slots are checked with the
servers' own `CLUSTER KEYSLOT` and a CRC16 written in tests/clusters (not the code under test).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from repid import Message, Repid, Router
from repid.connections.redis import RedisConnectionError, RedisServer
from repid.connections.redis._client import RedisMode
from repid.data import MessageData
from repid.errors import ConfigurationError
from tests import brokers
from tests.clusters import RunningCluster, key_slot
from tests.core.helpers import run_until

from .failover import Tally, produce, wait_until
from .redis_admin import masters, node_client, node_id, slot_owners

pytestmark = pytest.mark.cluster


def _msg(n: int, topic: str) -> MessageData:
    return MessageData(json.dumps({"n": n}).encode(), {"topic": topic}, "application/json")


async def test_any_node_url_finds_the_cluster_and_the_option_forces_either_mode(
    redis_cluster: RunningCluster,
) -> None:
    for host, port in redis_cluster.nodes:  # masters and replicas alike
        server = RedisServer(f"redis://{host}:{port}/0")
        async with server.connection():
            assert server.mode is RedisMode.CLUSTER and server.is_cluster
            assert server.capabilities.atomic_reply is False
    forced = RedisServer(redis_cluster.url, cluster=False)
    async with forced.connection():
        assert forced.mode is RedisMode.STANDALONE
    # A single node stays a single node; forcing cluster mode on it is refused by the node.
    single = RedisServer(brokers.redis_url())
    async with single.connection():
        assert single.mode is RedisMode.STANDALONE and single.capabilities.atomic_reply
    with pytest.raises(RedisConnectionError, match="Cluster mode is not enabled"):
        await RedisServer(brokers.redis_url(), cluster=True).connect()
    with pytest.raises(ConfigurationError, match="only database 0"):
        await RedisServer(redis_cluster.url.replace("/0", "/3")).connect()


async def test_every_key_of_a_channel_shares_one_slot_and_channels_spread(
    redis_cluster: RunningCluster,
) -> None:
    from repid import Connection, Queue, RedisBucketBroker, RedisMessageBroker

    queue = f"slots-{uuid.uuid4().hex[:8]}"
    broker = RedisMessageBroker(redis_cluster.url, block=0.2, delayed_poll_interval=0.05)
    results = RedisBucketBroker(redis_cluster.url, use_result_bucket=True)
    connection = Connection(broker, RedisBucketBroker(redis_cluster.url), results)
    await connection.connect()
    try:
        await Queue(queue, connection).declare()
        # A nack (a dead letter) and a delayed retry create every key the channel uses.
        await broker.publish_job(
            queue=queue, message=_msg(1, "x"), priority=0, message_id="a", delay=30.0
        )
        await broker.publish(channel=queue, message=_msg(2, "x"))
        subscriber = await broker.subscribe(
            channels_to_callbacks={queue: _nack}, capacity=_capacity()
        )
        await wait_until(
            lambda: bool(_keys_of(redis_cluster, queue)) and _dlq_made(redis_cluster, queue),
            10,
            "the dead letter",
        )
        await subscriber.close()
        found = _keys_of(redis_cluster, queue)
        assert {f"repid:{queue}", f"{{repid:{queue}}}:dlq", f"{{repid:{queue}}}:delayed"} <= {
            k for _, k in found
        }
        assert any(k.startswith(f"{{repid:{queue}}}:delayed:") for _, k in found)
        assert len({node for node, _ in found}) == 1, found
        slots = {
            int(node_client(*node).execute_command("CLUSTER KEYSLOT", key)) for node, key in found
        }
        assert slots == {key_slot(f"repid:{queue}")}
        assert broker.dead_letter_stream(queue) == f"{{repid:{queue}}}:dlq"
    finally:
        await connection.disconnect()
    # Different channels go to different masters.
    owners = slot_owners(redis_cluster)
    used = {owners[key_slot(f"repid:spread-{i}")] for i in range(24)}
    assert used == set(masters(redis_cluster))


async def test_a_custom_dead_letter_name_in_another_slot_is_refused(
    redis_cluster: RunningCluster,
) -> None:
    server = RedisServer(redis_cluster.url, dlq_stream_strategy=lambda c: f"dead-{c}")
    async with server.connection():
        with pytest.raises(ConfigurationError, match="one hash slot"):
            await server.subscribe(channels_to_callbacks={"orders": _nack}, capacity=_capacity())


async def test_reclaim_keepalive_dead_letters_and_replay(redis_cluster: RunningCluster) -> None:
    channel = f"recover-{uuid.uuid4().hex[:8]}"
    holder = RedisServer(redis_cluster.url, claim_idle=1.5, block=0.2)
    thief = RedisServer(redis_cluster.url, claim_idle=1.5, block=0.2)
    raw = aioredis.RedisCluster.from_url(redis_cluster.url)
    held: list[Any] = []
    stolen: list[Any] = []

    async def hold(message: Any) -> None:
        held.append(message)

    async def steal(message: Any) -> None:
        stolen.append(message)

    try:
        await holder.connect()
        await thief.connect()
        await holder.publish(channel=channel, message=MessageData(b"long job"))
        # A consumer that dies holding a message: another worker takes it over.
        await raw.xgroup_create(f"repid:{channel}", f"repid:{channel}:group", id="0", mkstream=True)
        await raw.xreadgroup(f"repid:{channel}:group", "dead", {f"repid:{channel}": ">"})
        sub_t = await thief.subscribe(channels_to_callbacks={channel: steal}, capacity=_capacity())
        await wait_until(lambda: bool(stolen), 10, "the reclaim")
        assert stolen[0].payload == b"long job" and stolen[0].delivery_count == 1
        # A live worker keeps what it holds past the idle time (keep-alive).
        await sub_t.close()
        await thief.publish(channel=channel, message=MessageData(b"kept"))
        sub_h = await holder.subscribe(channels_to_callbacks={channel: hold}, capacity=_capacity())
        await wait_until(lambda: any(m.payload == b"kept" for m in held), 10, "the holder")
        sub_t = await thief.subscribe(channels_to_callbacks={channel: steal}, capacity=_capacity())
        await asyncio.sleep(3.5)  # over twice the idle time
        assert [m.payload for m in stolen] == [b"long job"]
        # Dead letters and replay in the channel's slot.
        kept = next(m for m in held if m.payload == b"kept")
        await kept.nack()
        await stolen[0].ack()
        letters = await holder.read_dead_letters(channel)
        assert [d.payload for d in letters] == [b"kept"]
        assert await holder.replay_dead_letters(channel) == 1
        await wait_until(lambda: len(stolen) + len(held) >= 3, 10, "the replayed message")
        assert await holder.purge_dead_letters(channel) == 0
        for message in [*held, *stolen]:
            if not message.is_acted_on:
                await message.ack()
        await sub_h.close()
        await sub_t.close()
        stats = await holder.channel_stats(channel)
        assert stats.depth == 0 and stats.in_flight == 0 and stats.dead_letters == 0
    finally:
        await holder.disconnect()
        await thief.disconnect()
        await raw.aclose()


async def test_a_slot_moving_to_another_master_mid_run_loses_nothing(
    redis_cluster: RunningCluster,
) -> None:
    """MIGRATING/IMPORTING then MIGRATE, key by key, while a producer and a worker run: the
    clients meet ASK, TRYAGAIN and then MOVED, and nothing is lost (duplicates, which
    at-least-once allows, are reported; none in the runs so far)."""
    channel = f"moving-{uuid.uuid4().hex[:8]}"
    slot = key_slot(f"repid:{channel}")
    source = slot_owners(redis_cluster)[slot]
    target = next(m for m in masters(redis_cluster) if m != source)
    tally = Tally()
    worker_server = RedisServer(redis_cluster.url, block=0.2, claim_idle=5.0)
    producer = RedisServer(redis_cluster.url)
    app = Repid(title="moving")
    app.servers.register_server("c", worker_server, is_default=True)
    router = Router()

    @router.actor(channel=channel, name="count")
    async def count(n: int, message: Message) -> None:
        tally.seen(n)

    app.include_router(router)

    async def publish(n: int) -> None:
        await producer.publish(channel=channel, message=_msg(n, "count"))

    try:
        await producer.connect()
        await worker_server.connect()
        feeding = asyncio.create_task(produce(tally, publish, 600, 100.0))
        work = asyncio.create_task(
            run_until(app, lambda: feeding.done() and tally.all_confirmed_arrived(), timeout=60)
        )
        await wait_until(lambda: len(tally.processed) >= 100, 20, "the run to start")
        moved_at = time.monotonic()
        await asyncio.to_thread(_move_slot, redis_cluster, slot, source, target)
        await asyncio.wait_for(feeding, 60)
        await asyncio.wait_for(work, 60)
    finally:
        await producer.disconnect()
        await worker_server.disconnect()
    assert slot_owners(redis_cluster)[slot] == target
    tally.killed_at = moved_at
    report = tally.report("redis-cluster slot migration")
    assert report.lost == 0 and report.publish_errors == 0, (report, tally.publish_errors)


def _move_slot(
    cluster: RunningCluster, slot: int, source: tuple[str, int], target: tuple[str, int]
) -> None:
    src, dst = node_client(*source), node_client(*target)
    src_id, dst_id = node_id(*source), node_id(*target)
    (stream,) = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1)
    stream = stream.decode() if isinstance(stream, bytes) else stream
    for i in range(12):  # more keys in the slot: the move takes a few seconds
        src.set(f"{{{stream}}}:pad:{i}", b"x")
    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    while True:
        keys = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 10)
        if not keys:
            break
        for key in keys:
            # One key at a time, with pauses, so that clients meet the half-moved slot.
            src.execute_command("MIGRATE", target[0], target[1], key, 0, 5000)
            time.sleep(0.3)
    for host, port in {*masters(cluster), source, target}:
        try:
            node_client(host, port).execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        except redis.RedisError:
            pass


def _keys_of(cluster: RunningCluster, queue: str) -> list[tuple[tuple[str, int], str]]:
    """(master, key) for every key on any master whose name contains `queue`."""
    found = []
    for node in masters(cluster):
        for key in node_client(*node).scan_iter(match=f"*{queue}*"):
            found.append((node, key.decode()))
    return found


def _dlq_made(cluster: RunningCluster, queue: str) -> bool:
    return any(k.endswith(":dlq") for _, k in _keys_of(cluster, queue))


async def _nack(message: Any) -> None:
    await message.nack()


def _capacity() -> Any:
    from repid.connections.abc import DeliveryCapacity

    return DeliveryCapacity(10)
