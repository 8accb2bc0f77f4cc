"""Crash recovery, keep-alive, connection loss and credential hygiene, on real redis-servers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis_helpers import (
    Collector,
    OwnRedis,
    OwnTlsRedis,
    dlq,
    free_port,
    group,
    stream,
    wait_until,
)

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.redis import RedisConnectionError, RedisServer
from repid.data import MessageData

pytestmark = pytest.mark.redis

DRIVER = Path(__file__).with_name("redis_worker_driver.py")


@pytest.mark.parametrize("xautoclaim", [True, False], ids=["xautoclaim", "xpending+xclaim"])
async def test_dead_consumer_messages_are_claimed(
    redis_url: str, raw: aioredis.Redis, channel: str, xautoclaim: bool
):
    await raw.xgroup_create(stream(channel), group(channel), id="0", mkstream=True)
    for i in range(5):
        await raw.xadd(stream(channel), {"payload": b"%d" % i})
    # A consumer reads everything and dies without settling anything.
    taken = await raw.xreadgroup(
        group(channel), "dead-host-1-abc", {stream(channel): ">"}, count=10
    )
    assert len(taken[0][1]) == 5

    server = RedisServer(redis_url, block=0.1, claim_idle=0.3, claim_interval=0.1)
    await server.connect()
    server._has_xautoclaim = xautoclaim  # False: the path for Redis < 6.2
    try:
        collector = Collector(DeliveryCapacity(2), settle="ack")
        sub = await server.subscribe(
            channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
        )
        await collector.wait_for(5)
        assert sorted(m.payload for m in collector.messages) == [b"%d" % i for i in range(5)]
        assert all(m.delivery_count == 1 for m in collector.messages)
        assert collector.max_in_use <= 2
        await wait_until(lambda: not collector.tasks, what="acks")
        await sub.close()
        assert await raw.xlen(stream(channel)) == 0
        assert (await raw.xpending(stream(channel), group(channel)))["pending"] == 0
    finally:
        await server.disconnect()


@pytest.mark.parametrize("keepalive", [True, False])
async def test_keepalive_prevents_stealing(
    redis_url: str, raw: aioredis.Redis, channel: str, keepalive: bool
):
    # The holder refreshes its claim every 0.1 s (or, for the control case, never).
    holder = RedisServer(
        redis_url,
        block=0.1,
        claim_idle=0.8,
        keepalive_interval=0.1 if keepalive else 60.0,
        claim_interval=60.0,
    )
    thief = RedisServer(redis_url, block=0.1, claim_idle=0.8, claim_interval=0.05)
    await holder.connect()
    await thief.connect()
    try:
        await holder.publish(channel=channel, message=MessageData(payload=b"long job"))
        slow = Collector(DeliveryCapacity(1))
        sub_h = await holder.subscribe(
            channels_to_callbacks={channel: slow.callback}, capacity=slow.capacity
        )
        await slow.wait_for(1)
        other = Collector(DeliveryCapacity(1))
        sub_t = await thief.subscribe(
            channels_to_callbacks={channel: other.callback}, capacity=other.capacity
        )
        if keepalive:
            # The long-running actor works for 3 idle periods (keep-alive every 1/8 of one).
            await asyncio.sleep(2.4)
            assert other.messages == []
            await slow.finish(slow.messages[0], "ack")
            assert await raw.xlen(stream(channel)) == 0
        else:
            await other.wait_for(1)
            assert other.messages[0].payload == b"long job"
            assert other.messages[0].delivery_count == 1
            await other.finish(other.messages[0], "ack")
            await slow.finish(slow.messages[0], "ack")  # late ack of a stolen message: harmless
        assert (await raw.xpending(stream(channel), group(channel)))["pending"] == 0
        await sub_h.close()
        await sub_t.close()
    finally:
        await holder.disconnect()
        await thief.disconnect()


@pytest.mark.slow
async def test_kill_9_worker_loses_nothing(redis_url: str, raw: aioredis.Redis, channel: str):
    total = 150
    server = RedisServer(redis_url, block=0.1, claim_idle=1.0, claim_interval=0.2)
    await server.connect()
    worker = subprocess.Popen(
        [sys.executable, str(DRIVER), redis_url, channel, "10", "0.1"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == b"ready"
        await server.publish_batch(
            channel=channel, messages=[MessageData(payload=b"%d" % i) for i in range(total)]
        )
        done_key = f"{channel}:done"
        # Kill it while it works. How much it held at that moment is a race on a loaded
        # machine (it may even have finished): only what is guaranteed is asserted below -
        # every message ends up processed, none is lost, nothing stays pending.
        await wait_until(lambda: _at_least(raw, done_key, 20), what="the worker to be busy")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)

        collector_done: set[bytes] = set()
        capacity = DeliveryCapacity(10)

        async def finish(message: ReceivedMessageT) -> None:
            try:
                await raw.sadd(done_key, message.payload)
                collector_done.add(message.payload)
                await message.ack()
            finally:
                capacity.release()

        tasks: set[asyncio.Task[None]] = set()

        async def callback(message: ReceivedMessageT) -> None:
            capacity.acquire()
            task = asyncio.get_running_loop().create_task(finish(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        sub = await server.subscribe(channels_to_callbacks={channel: callback}, capacity=capacity)
        # Deadlines are generous (measured: a few seconds) for a loaded machine.
        await wait_until(lambda: _at_least(raw, done_key, total), timeout=60, what="all messages")
        # Messages the dead worker recorded but never acked come back too (at-least-once).
        await wait_until(
            lambda: _stream_empty(raw, channel), timeout=60, what="the stream to drain"
        )
        await wait_until(lambda: not tasks, what="acks")
        await sub.close()
        done = await raw.smembers(done_key)
        assert done == {b"%d" % i for i in range(total)}
        assert await raw.xlen(stream(channel)) == 0
        assert (await raw.xpending(stream(channel), group(channel)))["pending"] == 0
        await raw.delete(done_key)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        await server.disconnect()


async def _at_least(raw: aioredis.Redis, key: str, count: int) -> bool:
    return int(await raw.scard(key)) >= count


@pytest.mark.slow
async def test_redis_restart_loses_nothing(own_redis: OwnRedis, caplog: pytest.LogCaptureFixture):
    total = 200
    channel = "restart-test"
    server = RedisServer(own_redis.url, block=0.2, claim_idle=1.0, claim_interval=0.2)
    recorder = aioredis.Redis.from_url(own_redis.url)
    await server.connect()
    done: set[bytes] = set()
    capacity = DeliveryCapacity(5)
    tasks: set[asyncio.Task[None]] = set()
    failed_acks = 0

    async def finish(message: ReceivedMessageT) -> None:
        nonlocal failed_acks
        try:
            await asyncio.sleep(0.005)
            done.add(message.payload)
            await message.ack()
        except RedisConnectionError:
            failed_acks += 1  # left pending: it is reclaimed after claim_idle
        finally:
            capacity.release()

    async def callback(message: ReceivedMessageT) -> None:
        capacity.acquire()
        task = asyncio.get_running_loop().create_task(finish(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        await server.publish_batch(
            channel=channel, messages=[MessageData(payload=b"%d" % i) for i in range(total)]
        )
        with caplog.at_level(logging.WARNING, logger="repid.connections.redis"):
            sub = await server.subscribe(
                channels_to_callbacks={channel: callback}, capacity=capacity
            )
            await wait_until(lambda: len(done) >= 40, what="progress before the restart")
            own_redis.stop()
            await wait_until(lambda: not server.is_connected, what="is_connected to drop")
            # Keep it down until the read loop has given up on redis-py's own retries.
            await wait_until(
                lambda: any("connection_lost" in r.getMessage() for r in caplog.records),
                timeout=15,
                what="the read loop to notice",
            )
            own_redis.start()
            await wait_until(lambda: server.is_connected, what="is_connected to come back")
            await wait_until(lambda: len(done) >= total, timeout=30, what="every message")
            await wait_until(lambda: not tasks, what="acks")
        assert done == {b"%d" % i for i in range(total)}
        await wait_until(
            lambda: _stream_empty(recorder, channel), timeout=10, what="the stream to drain"
        )
        await sub.close()
        lost = [r.getMessage() for r in caplog.records if "connection_lost" in r.getMessage()]
        assert lost, "the loss of connection was logged"
        assert all(f"127.0.0.1:{own_redis.port}" in line for line in lost)
        assert all(own_redis.password not in r.getMessage() for r in caplog.records)
    finally:
        await server.disconnect()
        await recorder.aclose()


async def _stream_empty(client: aioredis.Redis, channel: str) -> bool:
    return int(await client.xlen(stream(channel))) == 0 and (
        (await client.xpending(stream(channel), group(channel)))["pending"] == 0
    )


async def test_password_never_shows(own_redis: OwnRedis):
    secret = own_redis.password
    good = RedisServer(own_redis.url)
    assert secret not in repr(good)
    assert good.host == f"127.0.0.1:{own_redis.port}"
    assert good.pathname == "/0"
    assert good.protocol == "redis"
    assert good.protocol_version == "5.0"
    for value in vars(good).values():
        if isinstance(value, str) and value != secret:
            assert secret not in value
    async with good.connection():
        assert good.is_connected
    assert not good.is_connected

    wrong = RedisServer(f"redis://:wrong-{secret}@127.0.0.1:{own_redis.port}/0")
    with pytest.raises(RedisConnectionError) as info:
        await wrong.connect()
    _assert_clean(info.value, secret, f"127.0.0.1:{own_redis.port}")

    port = free_port()
    nobody = RedisServer(f"redis://user:{secret}@127.0.0.1:{port}/3")
    assert nobody.pathname == "/3"
    with pytest.raises(RedisConnectionError) as info:
        await nobody.connect()
    _assert_clean(info.value, secret, f"127.0.0.1:{port}")
    await wrong.disconnect()
    await nobody.disconnect()

    with pytest.raises(ValueError) as bad:
        RedisServer(f"amqp://:{secret}@127.0.0.1:1/0")
    assert secret not in str(bad.value)
    with pytest.raises(ValueError) as bad:
        RedisServer(f"redis://:{secret}@127.0.0.1:99999999/0")
    assert secret not in str(bad.value)


async def test_credentials_as_arguments_and_tls_url(own_redis: OwnRedis):
    server = RedisServer(f"redis://127.0.0.1:{own_redis.port}/0", password=own_redis.password)
    async with server.connection():
        await server.publish(channel="args", message=MessageData(payload=b"x"))
    tls = RedisServer("rediss://user:pw@example.invalid:6380/2")
    assert (tls.host, tls.pathname) == ("example.invalid:6380", "/2")
    assert "pw" not in repr(tls)


def _assert_clean(exc: BaseException, secret: str, host: str) -> None:
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert host in str(exc)
    assert secret not in text


@pytest.mark.slow
async def test_is_connected_follows_the_broker_while_the_worker_is_full(own_redis: OwnRedis):
    server = RedisServer(own_redis.url, block=0.2, claim_idle=3.0, keepalive_interval=0.1)
    await server.connect()
    try:
        await server.publish(channel="full", message=MessageData(payload=b"long"))
        collector = Collector(DeliveryCapacity(1))
        sub = await server.subscribe(
            channels_to_callbacks={"full": collector.callback}, capacity=collector.capacity
        )
        await collector.wait_for(1)  # the only slot is taken: the read loop waits for capacity
        assert server.is_connected
        own_redis.stop()
        await wait_until(lambda: not server.is_connected, timeout=15, what="the drop to show")
        own_redis.start()
        await wait_until(lambda: server.is_connected, timeout=15, what="the return to show")
        await collector.finish(collector.messages[0], "ack")  # still ours after the restart
        await sub.close()
        check = aioredis.Redis.from_url(own_redis.url)
        assert await check.xlen("full") == 0
        await check.aclose()
    finally:
        await server.disconnect()


APP_DRIVER = Path(__file__).with_name("redis_app_driver.py")


def _start_app_worker(url: str, channel: str, claim_idle: float, delay: float, tasks: int):
    process = subprocess.Popen(
        [sys.executable, str(APP_DRIVER), url, channel, str(claim_idle), str(delay), str(tasks)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    return process


@pytest.mark.slow
async def test_app_workers_kill_9_then_sigterm(redis_url: str, raw: aioredis.Redis, channel: str):
    """Two `app.run_worker` processes: the first is SIGKILLed mid-run, the second finishes all
    messages (taking over the dead one's after claim_idle) and then shuts down on SIGTERM."""
    total = 120
    done_key = f"{channel}:done"
    server = RedisServer(redis_url)
    await server.connect()
    first = _start_app_worker(redis_url, channel, 1.0, 0.05, 5)  # ~1.2 s for everything
    second = None
    try:
        await server.publish_batch(
            channel=channel,
            messages=[
                MessageData(payload=b'{"n": %d}' % i, headers={"topic": "work"})
                for i in range(total)
            ],
        )
        await wait_until(lambda: _at_least(raw, done_key, 15), what="the first worker to start")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert int(await raw.scard(done_key)) < total
        second = _start_app_worker(redis_url, channel, 1.0, 0.0, 1000)
        await wait_until(lambda: _at_least(raw, done_key, total), timeout=30, what="every message")
        await wait_until(
            lambda: _stream_empty(raw, channel), timeout=20, what="the stream to drain"
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
        assert await raw.smembers(done_key) == {b"%d" % i for i in range(total)}
        assert await raw.xlen(dlq(channel)) == 0
        # The graceful worker removed its consumer; only the killed one's is left in the group.
        consumers = await raw.xinfo_consumers(stream(channel), group(channel))
        assert len(consumers) == 1
        assert consumers[0]["pending"] == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        await raw.delete(done_key)
        await server.disconnect()


async def test_idle_consumers_with_nothing_pending_are_pruned(
    redis_url: str, raw: aioredis.Redis, channel: str
):
    await raw.xgroup_create(stream(channel), group(channel), id="0", mkstream=True)
    await raw.xadd(stream(channel), {"payload": b"held"})
    await raw.xreadgroup(group(channel), "dead-holding", {stream(channel): ">"}, count=1)
    await raw.xgroup_createconsumer(stream(channel), group(channel), "dead-empty")
    await asyncio.sleep(0.3)
    server = RedisServer(redis_url, block=0.1, claim_idle=60.0, prune_idle=0.2)
    await server.connect()
    try:
        collector = Collector(DeliveryCapacity(1))
        sub = await server.subscribe(
            channels_to_callbacks={channel: collector.callback}, capacity=collector.capacity
        )

        async def names() -> set[bytes]:
            return {c["name"] for c in await raw.xinfo_consumers(stream(channel), group(channel))}

        await wait_until(lambda: _lacks(names, b"dead-empty"), what="the empty consumer to go")
        # The one still holding a message stays: deleting it would drop its pending entry.
        assert b"dead-holding" in await names()
        assert (await raw.xpending(stream(channel), group(channel)))["pending"] == 1
        await sub.close()
    finally:
        await server.disconnect()


async def _lacks(names: Any, name: bytes) -> bool:
    return name not in await names()


async def test_tls_round_trip():
    tls = OwnTlsRedis()
    tls.start()
    try:
        server = RedisServer(tls.url, block=0.1)
        assert server.host == f"127.0.0.1:{tls.port}"
        async with server.connection():
            await server.publish(channel="tls", message=MessageData(payload=b"secret stuff"))
            collector = Collector(DeliveryCapacity(1), settle="ack")
            sub = await server.subscribe(
                channels_to_callbacks={"tls": collector.callback}, capacity=collector.capacity
            )
            await collector.wait_for(1)
            assert collector.messages[0].payload == b"secret stuff"
            await wait_until(lambda: not collector.tasks, what="ack")
            await sub.close()
        # Plain TCP to the TLS port fails, naming the host and not the password.
        plain = RedisServer(f"redis://:{tls.password}@127.0.0.1:{tls.port}/0")
        with pytest.raises(RedisConnectionError) as info:
            await plain.connect()
        _assert_clean(info.value, tls.password, f"127.0.0.1:{tls.port}")
        await plain.disconnect()
    finally:
        tls.cleanup()


@pytest.mark.slow
async def test_two_worker_processes_process_each_message_exactly_once(
    redis_url: str, raw: aioredis.Redis, channel: str
):
    total = 300
    server = RedisServer(redis_url)
    await server.connect()
    workers = []
    try:
        for _ in range(2):
            worker = subprocess.Popen(
                [sys.executable, str(DRIVER), redis_url, channel, "10", "0.005"],
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            )
            workers.append(worker)
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == b"ready"
        await server.publish_batch(
            channel=channel, messages=[MessageData(payload=b"%d" % i) for i in range(total)]
        )
        await wait_until(lambda: _stream_empty(raw, channel), timeout=30, what="all processed")
        counts = await raw.hgetall(f"{channel}:count")
        assert {int(k) for k in counts} == set(range(total))
        assert set(counts.values()) == {b"1"}  # nobody processed a message twice
        shares = await raw.hgetall(f"{channel}:by")
        assert len(shares) == 2  # both processes took part
        consumers = await raw.xinfo_consumers(stream(channel), group(channel))
        assert len(consumers) == 2
        assert all(c["pending"] == 0 for c in consumers)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(10)
        await raw.delete(f"{channel}:done", f"{channel}:count", f"{channel}:by")
        await server.disconnect()
