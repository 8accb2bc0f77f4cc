"""Job-layer behaviour on every broker: results, retries and their delays, dead letters,
timeouts, chaining, uniqueness, the undeclared-queue error. Broker-specific features
(priorities, TTL sweeping) have their own tests below."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from repid import (
    Connection,
    InMemoryBucketBroker,
    InMemoryMessageBroker,
    Job,
    Queue,
    QueueNotDeclaredError,
    Repid,
    Worker,
)
from tests import brokers as rabbit
from tests.jobs.conftest import redis_jobs_url, reset_redis

TOLERANCE = 0.01  # timers may fire up to a clock tick early; delays are checked as lower bounds


@dataclass
class Brokers:
    kind: str
    connection: Connection
    queue: str

    async def dead_letters(self, expect: int) -> list[dict[str, str]]:
        """The queue's dead letters' headers (RabbitMQ dead-letters asynchronously: wait for
        `expect` of them, a bounded while)."""
        broker: Any = self.connection.message_broker
        if self.kind == "memory":
            return [m.headers for m in broker.dead_letters.get(self.queue, [])]
        if self.kind in ("redis", "redis-cluster"):
            return [d.headers for d in await broker.read_dead_letters(self.queue)]
        found: list[dict[str, str]] = []
        for _ in range(30 if expect else 5):
            items = await asyncio.to_thread(
                rabbit.rabbitmq_get_messages, broker.dead_letter_queue(self.queue), 10
            )
            found += [item["properties"].get("headers", {}) for item in items]
            if expect and len(found) >= expect:
                break
            await asyncio.sleep(0.1)
        return found


@pytest.fixture(
    params=["memory", "redis", "rabbitmq", pytest.param("redis-cluster", marks=pytest.mark.cluster)]
)
async def brokers(request: pytest.FixtureRequest, queue_name: str) -> AsyncIterator[Brokers]:
    """`redis-cluster`: messages, delays, arguments and results on the Redis Cluster of
    tests/clusters (three masters), found from one node's URL; run with --clusters."""
    kind = request.param
    if kind == "memory":
        buckets = InMemoryBucketBroker(use_result_bucket=True)
        connection = Connection(InMemoryMessageBroker(), buckets, buckets)
        await connection.connect()
        yield Brokers(kind, connection, queue_name)
        await connection.disconnect()
        return
    from repid import RabbitMessageBroker, RedisBucketBroker, RedisMessageBroker

    url = (
        request.getfixturevalue("redis_cluster").url
        if kind == "redis-cluster"
        else redis_jobs_url()
    )
    if kind == "rabbitmq":
        # RabbitMQ for messages; results and arguments in Redis.
        message_broker: Any = RabbitMessageBroker(rabbit.amqp_url())
    else:
        message_broker = RedisMessageBroker(url, block=0.2, delayed_poll_interval=0.02)
    connection = Connection(
        message_broker,
        RedisBucketBroker(url),
        RedisBucketBroker(url, use_result_bucket=True),
    )
    await connection.connect()
    try:
        yield Brokers(kind, connection, queue_name)
    finally:
        await connection.disconnect()
        if kind != "redis-cluster":  # (a fresh cluster per session; queue names are unique)
            await reset_redis(url, queue_name)
        if kind == "rabbitmq":
            for name in (queue_name, f"{queue_name}.dead"):
                await asyncio.to_thread(rabbit.rabbitmq_delete_queue, name)


def worker_for(b: Brokers, limit: int) -> Worker:
    return Worker(messages_limit=limit, handle_signals=[], _connection=b.connection)


async def run_worker(worker: Worker, seconds: float = 10.0) -> int:
    info = await asyncio.wait_for(worker.run(), seconds)
    return info.processed


async def test_results_of_success_and_failure(brokers: Brokers) -> None:
    worker = worker_for(brokers, 2)

    @worker.actor(queue=brokers.queue)
    async def divide(a: int, b: int) -> float:
        return a / b

    await Queue(brokers.queue, brokers.connection).declare()
    ok = Job("divide", brokers.queue, args={"a": 1, "b": 2}, _connection=brokers.connection)
    bad = Job("divide", brokers.queue, args={"a": 1, "b": 0}, _connection=brokers.connection)
    await ok.enqueue()
    await bad.enqueue()
    assert await run_worker(worker) == 2

    good = await ok.result
    assert good is not None and good.success and good.data == 0.5 and good.exception is None
    assert good.started_when <= good.finished_when
    failed = await bad.result
    assert failed is not None and not failed.success and failed.data is None
    assert failed.exception == "ZeroDivisionError: division by zero"
    # retries=0: the failed job is dead-lettered at once.
    (dead,) = await brokers.dead_letters(1)
    assert dead["job-result-id"] == bad.result_id


async def test_retries_follow_the_policy_then_succeed(brokers: Brokers) -> None:
    worker = worker_for(brokers, 3)
    runs: list[tuple[float, str]] = []

    @worker.actor(queue=brokers.queue, retry_policy=lambda retry_number=1: 0.2 * retry_number)
    async def flaky() -> str:
        runs.append((time.monotonic(), "run"))
        if len(runs) < 3:
            raise RuntimeError(f"failure {len(runs)}")
        return "finally"

    await Queue(brokers.queue, brokers.connection).declare()
    job = Job("flaky", brokers.queue, retries=2, _connection=brokers.connection)
    await job.enqueue()
    assert await run_worker(worker) == 3

    first, second, third = (t for t, _ in runs)
    assert second - first >= 0.2 - TOLERANCE  # retry 1 after policy(1) = 0.2 s
    assert third - second >= 0.4 - TOLERANCE  # retry 2 after policy(2) = 0.4 s
    result = await job.result
    assert result is not None and result.success and result.data == "finally"
    assert await brokers.dead_letters(0) == []


async def test_dead_letter_after_the_last_retry(brokers: Brokers) -> None:
    worker = worker_for(brokers, 2)
    attempts: list[int] = []

    @worker.actor(queue=brokers.queue, retry_policy=lambda retry_number=1: 0.05)
    async def always_fails(n: int) -> None:
        attempts.append(n)
        raise ValueError("nope")

    await Queue(brokers.queue, brokers.connection).declare()
    job = Job(
        "always_fails", brokers.queue, args={"n": 7}, retries=1, _connection=brokers.connection
    )
    job_id = await job.enqueue()
    assert await run_worker(worker) == 2
    assert attempts == [7, 7]
    (dead,) = await brokers.dead_letters(1)
    assert dead["job-id"] == job_id
    assert dead["job-attempt"] == "2"  # the last attempt is the one dead-lettered
    result = await job.result
    assert result is not None and not result.success and result.exception == "ValueError: nope"


async def test_timeout_is_a_reason_to_retry(brokers: Brokers) -> None:
    worker = worker_for(brokers, 2)
    attempts: list[float] = []

    @worker.actor(queue=brokers.queue, retry_policy=lambda retry_number=1: 0.0)
    async def slow_once() -> str:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            await asyncio.sleep(5)
        return "done"

    await Queue(brokers.queue, brokers.connection).declare()
    job = Job(
        "slow_once",
        brokers.queue,
        retries=1,
        timeout=timedelta(seconds=0.2),
        _connection=brokers.connection,
    )
    await job.enqueue()
    assert await run_worker(worker) == 2
    assert len(attempts) == 2
    result = await job.result
    assert result is not None and result.success and result.data == "done"


async def test_timeout_without_retries_is_a_failure(brokers: Brokers) -> None:
    worker = worker_for(brokers, 1)

    @worker.actor(queue=brokers.queue)
    async def sleepy() -> None:
        await asyncio.sleep(5)

    await Queue(brokers.queue, brokers.connection).declare()
    job = Job("sleepy", brokers.queue, timeout=0.1, _connection=brokers.connection)
    await job.enqueue()
    assert await run_worker(worker) == 1
    result = await job.result
    assert result is not None and not result.success
    assert result.exception is not None and result.exception.startswith("JobTimeoutError")
    assert len(await brokers.dead_letters(1)) == 1


async def test_chaining_result_into_args(brokers: Brokers) -> None:
    worker = worker_for(brokers, 1)

    @worker.actor(queue=brokers.queue)
    async def first(x: int) -> dict[str, int]:
        return {"y": x + 1}

    @worker.actor(queue=brokers.queue)
    async def second(y: int) -> int:
        return y * 10

    await Queue(brokers.queue, brokers.connection).declare()
    conn = brokers.connection
    await Job(
        "first", brokers.queue, args={"x": 1}, result_id=f"{brokers.queue}-chain", _connection=conn
    ).enqueue()
    assert await run_worker(worker) == 1
    chained = Job("second", brokers.queue, args_id=f"{brokers.queue}-chain", _connection=conn)
    await chained.enqueue()
    assert await run_worker(worker) == 1
    result = await chained.result
    assert result is not None and result.data == 20


async def test_missing_args_bucket_is_a_failure(brokers: Brokers) -> None:
    worker = worker_for(brokers, 1)

    @worker.actor(queue=brokers.queue)
    async def needs_args(x: int) -> int:
        return x

    await Queue(brokers.queue, brokers.connection).declare()
    job = Job("needs_args", brokers.queue, args_id="never-stored", _connection=brokers.connection)
    await job.enqueue()
    assert await run_worker(worker) == 1
    result = await job.result
    assert result is not None and not result.success
    assert result.exception is not None and "never-stored" in result.exception


async def test_unique_job_keeps_its_id(brokers: Brokers) -> None:
    await Queue(brokers.queue, brokers.connection).declare()
    job = Job("u", brokers.queue, id_="fixed-id", _connection=brokers.connection)
    assert job.is_unique
    assert await job.enqueue() == "fixed-id"
    other = Job("u", brokers.queue, _connection=brokers.connection)
    assert not other.is_unique
    first, second = await other.enqueue(), await other.enqueue()
    assert first != second  # a new id on every enqueue


async def test_enqueue_to_undeclared_queue(brokers: Brokers) -> None:
    job = Job("x", brokers.queue, _connection=brokers.connection)
    with pytest.raises(KeyError) as caught:
        await job.enqueue()
    assert isinstance(caught.value, QueueNotDeclaredError)
    assert caught.value.args == (brokers.queue,)
    assert f"await Queue({brokers.queue!r}).declare()" in str(caught.value)
    assert not await Queue(brokers.queue, brokers.connection).is_declared()
    await Queue(brokers.queue, brokers.connection).declare()
    await Queue(brokers.queue, brokers.connection).declare()  # declaring again is harmless
    assert await Queue(brokers.queue, brokers.connection).is_declared()
    await job.enqueue()


async def test_plain_messages_pass_through_the_job_middleware(brokers: Brokers) -> None:
    worker = worker_for(brokers, 1)
    got: list[int] = []

    @worker.actor(queue=brokers.queue)
    async def plain(n: int) -> None:
        got.append(n)

    await Queue(brokers.queue, brokers.connection).declare()
    app = Repid()
    app.servers.register_server("s", brokers.connection.message_broker, is_default=True)
    await app.send_message_json(channel=brokers.queue, payload={"n": 5}, headers={"topic": "plain"})
    assert await run_worker(worker) == 1
    assert got == [5]


# -- in-memory specifics --------------------------------------------------------------------


async def test_priorities_high_first_fifo_within_a_level() -> None:
    from repid import PrioritiesT

    app = Repid(Connection(InMemoryMessageBroker()))
    worker = Worker(messages_limit=6, handle_signals=[], tasks_limit=1)
    order: list[str] = []

    @worker.actor
    async def record(tag: str) -> None:
        order.append(tag)

    async with app.magic(auto_disconnect=True):
        await Queue().declare()
        for tag, priority in [
            ("low-1", PrioritiesT.LOW),
            ("medium-1", PrioritiesT.MEDIUM),
            ("high-1", PrioritiesT.HIGH),
            ("low-2", PrioritiesT.LOW),
            ("high-2", PrioritiesT.HIGH),
            ("medium-2", PrioritiesT.MEDIUM),
        ]:
            await Job("record", args={"tag": tag}, priority=priority).enqueue()
        await worker.run()
    assert order == ["high-1", "high-2", "medium-1", "medium-2", "low-1", "low-2"]


async def test_in_memory_unique_job_is_not_queued_twice() -> None:
    from repid import DuplicateJobError

    broker = InMemoryMessageBroker()
    app = Repid(Connection(broker))
    async with app.magic():
        await Queue().declare()
        await Job("u", id_="same").enqueue()
        with pytest.raises(DuplicateJobError) as refused:
            await Job("u", id_="same").enqueue()
        assert (refused.value.job_id, refused.value.queue) == ("same", "default")
        await Job("u").enqueue()
        await Job("u").enqueue()
    assert [m.message_id for m in broker.queued("default")][0] == "same"
    assert len(broker.queued("default")) == 3


async def test_in_memory_bucket_ttl_expiry_and_purge() -> None:
    buckets = InMemoryBucketBroker(purge_interval=0.05)
    await buckets.store_raw("short", b'{"data":1,"id":"short"}', 0.05)
    await buckets.store_raw("forever", b'{"data":2,"id":"forever"}', None)
    assert (await buckets.get("short")).data == 1  # type: ignore[union-attr]
    await asyncio.sleep(0.1)
    assert await buckets.get("short") is None  # expired on read
    await buckets.store_raw("short2", b'{"data":3,"id":"short2"}', 0.05)
    await asyncio.sleep(0.1)
    await buckets.store_raw("trigger", b'{"data":4,"id":"trigger"}', None)  # sweeps
    assert len(buckets) == 2  # "short2" was purged without being read
    assert (await buckets.get("forever")).data == 2  # type: ignore[union-attr]
    await buckets.delete("forever")
    assert await buckets.get("forever") is None


async def test_result_ttl_is_applied_to_the_result_bucket() -> None:
    buckets = InMemoryBucketBroker(use_result_bucket=True)
    app = Repid(Connection(InMemoryMessageBroker(), results_bucket_broker=buckets))
    worker = Worker(messages_limit=1, handle_signals=[])

    @worker.actor
    async def quick() -> int:
        return 1

    async with app.magic(auto_disconnect=True):
        await Queue().declare()
        job = Job("quick", result_ttl=timedelta(milliseconds=100))
        await job.enqueue()
        await worker.run()
        assert (await job.result) is not None
        await asyncio.sleep(0.15)
        assert (await job.result) is None


async def test_redis_bucket_ttl_expiry(redis_dsn: str) -> None:
    from repid import RedisBucketBroker

    buckets = RedisBucketBroker(redis_dsn)
    await buckets.connect()
    try:
        await buckets.store_raw("ttl-short", b'{"data":1,"id":"ttl-short"}', 0.1)
        await buckets.store_raw("ttl-none", b'{"data":2,"id":"ttl-none"}', None)
        assert (await buckets.get("ttl-short")).data == 1  # type: ignore[union-attr]
        await asyncio.sleep(0.3)
        assert await buckets.get("ttl-short") is None  # Redis expired it (SET PX)
        assert (await buckets.get("ttl-none")).data == 2  # type: ignore[union-attr]
    finally:
        await buckets.disconnect()


async def test_redis_delayed_messages_wait_in_the_sorted_set(
    redis_dsn: str, queue_name: str
) -> None:
    from repid import PrioritiesT, RedisMessageBroker
    from repid.data import MessageData

    broker = RedisMessageBroker(redis_dsn)
    await broker.connect()
    try:
        await broker.declare_queue(queue_name)
        await broker.publish_job(
            queue=queue_name,
            message=MessageData(b"x", {"a": "b"}),
            priority=PrioritiesT.MEDIUM,
            message_id="m",
            delay=0.2,
        )
        assert await broker.move_due(queue_name) == 0  # not due yet
        await asyncio.sleep(0.25)
        assert await broker.move_due(queue_name) == 1
        assert await broker.move_due(queue_name) == 0
    finally:
        await broker.disconnect()
        await reset_redis(redis_dsn, queue_name)


async def test_rabbitmq_priority_queue_orders_by_priority(queue_name: str) -> None:
    from repid import PrioritiesT, RabbitMessageBroker

    broker = RabbitMessageBroker(
        rabbit.amqp_url(), queue_arguments={"x-queue-type": "classic", "x-max-priority": 10}
    )
    app = Repid(Connection(broker))
    worker = Worker(messages_limit=6, handle_signals=[], tasks_limit=1)
    order: list[str] = []

    @worker.actor(queue=queue_name)
    async def record(tag: str) -> None:
        order.append(tag)

    try:
        async with app.magic(auto_disconnect=True):
            await Queue(queue_name).declare()
            for tag, priority in [
                ("low-1", PrioritiesT.LOW),
                ("medium-1", PrioritiesT.MEDIUM),
                ("high-1", PrioritiesT.HIGH),
                ("low-2", PrioritiesT.LOW),
                ("high-2", PrioritiesT.HIGH),
                ("medium-2", PrioritiesT.MEDIUM),
            ]:
                await Job("record", queue_name, args={"tag": tag}, priority=priority).enqueue()
            await asyncio.wait_for(worker.run(), 20)
    finally:
        await asyncio.to_thread(rabbit.rabbitmq_delete_queue, queue_name)
    assert order == ["high-1", "high-2", "medium-1", "medium-2", "low-1", "low-2"]


async def test_in_memory_server_priority_levels_and_reject() -> None:
    from repid import DeliveryCapacity, MessageData

    server = InMemoryMessageBroker()
    async with server.connection():
        for payload, priority in [(b"n1", 0), (b"h1", 1), (b"l1", -1), (b"n2", 0), (b"h2", 1)]:
            await server.publish(
                channel="q",
                message=MessageData(payload),
                server_specific_parameters={"priority": priority},
            )
        assert [m.payload for m in server.queued("q")] == [b"h1", b"h2", b"n1", b"n2", b"l1"]
        got: list[Any] = []
        capacity = DeliveryCapacity(1)

        async def callback(message: Any) -> None:
            capacity.acquire()
            got.append(message)

        sub = await server.subscribe(channels_to_callbacks={"q": callback}, capacity=capacity)
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.005)
        await sub.pause()
        await got[0].reject()  # back to the head of its own level
        assert [m.payload for m in server.queued("q")] == [b"h1", b"h2", b"n1", b"n2", b"l1"]
        await sub.close()
        with pytest.raises(TypeError, match="priority"):
            await server.publish(
                channel="q", message=MessageData(b""), server_specific_parameters={"priority": "1"}
            )
