"""Deferred, unique and cancelled jobs on every job broker (in-memory, Redis, RabbitMQ 4):
delays of 1 s and 5 s run on time, a job weeks ahead does not run early and is cancelled and
enqueued again; cancelling a queued, a delayed and a running job; retries wait in the broker,
not in the worker; a delayed job across a worker kill -9 and a broker restart; unique ids
under concurrent enqueues from several processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from repid import (
    CancelOutcome,
    Connection,
    InMemoryBucketBroker,
    InMemoryMessageBroker,
    Job,
    Queue,
    Worker,
)
from tests import brokers as rabbit
from tests.jobs.conftest import redis_jobs_url, reset_redis

ROOT = Path(__file__).resolve().parents[2]
EARLY = 0.01  # the in-memory timer may fire up to a clock tick early
WITHIN = 1.0  # the bound: a delayed job runs within a second of its due time


@dataclass
class Setup:
    kind: str
    connection: Connection
    queue: str
    ran: list[tuple[str, float]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def job(self, tag: str, **options: Any) -> Job:
        return Job("record", self.queue, args={"tag": tag}, _connection=self.connection, **options)

    def worker(self, **options: Any) -> Worker:
        worker = Worker(
            handle_signals=[], cancel_poll_interval=0.1, _connection=self.connection, **options
        )
        ran, events = self.ran, self.events

        @worker.actor(queue=self.queue)
        async def record(tag: str) -> str:
            ran.append((tag, time.time()))
            if tag.startswith("slow"):
                events.append(f"{tag}:started")
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    events.append(f"{tag}:stopped")
                    raise
            if tag.startswith("fail-once") and sum(t == tag for t, _ in ran) == 1:
                raise RuntimeError("first attempt fails")
            return tag

        return worker

    async def wait_for(self, what: str, condition: Any, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; ran {self.ran}")
            await asyncio.sleep(0.02)

    def times(self, tag: str) -> list[float]:
        return [t for name, t in self.ran if name == tag]


@pytest.fixture(params=["memory", "redis", "rabbitmq"])
async def setup(request: pytest.FixtureRequest, queue_name: str) -> AsyncIterator[Setup]:
    kind = request.param
    if kind == "memory":
        buckets = InMemoryBucketBroker(use_result_bucket=True)
        connection = Connection(InMemoryMessageBroker(), buckets, buckets)
    else:
        from tests.jobs._job_programs import connection_for

        connection = connection_for(kind)
    await connection.connect()
    await Queue(queue_name, connection).declare()
    try:
        yield Setup(kind, connection, queue_name)
    finally:
        await connection.disconnect()
        if kind != "memory":
            await reset_redis(redis_jobs_url(), queue_name)
        if kind == "rabbitmq":
            for name in (queue_name, f"{queue_name}.dead"):
                await asyncio.to_thread(rabbit.rabbitmq_delete_queue, name)


async def run_in_background(worker: Worker) -> asyncio.Task[Any]:
    task = asyncio.get_running_loop().create_task(worker.run())
    await asyncio.sleep(0.2)  # subscribed
    return task


async def stop(worker: Worker, task: asyncio.Task[Any]) -> None:
    worker.stop()
    await asyncio.wait_for(task, 15)


async def test_delays_of_one_and_five_seconds_and_one_weeks_ahead(setup: Setup) -> None:
    one = setup.job("one", deferred_by=timedelta(seconds=1))
    five = setup.job("five", deferred_until=datetime.now(timezone.utc) + timedelta(seconds=5))
    far = setup.job("far", deferred_by=timedelta(weeks=3), id_=f"{setup.queue}-far")
    for job in (one, five, far):
        await job.enqueue()
    assert one.last_due is not None and five.last_due is not None and far.last_due is not None
    worker = setup.worker()
    task = await run_in_background(worker)
    try:
        await setup.wait_for("the 1 s and 5 s jobs", lambda: setup.times("five"))
        assert setup.times("one")[0] - one.last_due >= -EARLY  # not early
        assert setup.times("five")[0] - five.last_due >= -EARLY
        assert setup.times("one")[0] - one.last_due < WITHIN  # and on time
        assert setup.times("five")[0] - five.last_due < WITHIN
        assert setup.times("far") == []  # three weeks ahead: not run early
        broker: Any = setup.connection.message_broker
        if setup.kind == "memory":
            assert broker.is_delayed(setup.queue, far.id_)
        # Cancelled: taken off the broker (in-memory, Redis), or marked (RabbitMQ, whose delay
        # chain cannot give a message back); either way its id is free again at once...
        outcome = await far.cancel()
        expected = CancelOutcome.MARKED if setup.kind == "rabbitmq" else CancelOutcome.REMOVED
        assert outcome is expected
        if setup.kind == "memory":
            assert not broker.is_delayed(setup.queue, far.id_)
        if setup.kind == "redis":
            client = broker._require_client()
            assert await client.zcard(broker.keys.delayed(setup.queue)) == 0
        # ...so it can be moved: enqueued again, for half a second from now.
        moved = setup.job("far", id_=far.id_, deferred_by=0.5)
        await moved.enqueue()
        await setup.wait_for("the moved job", lambda: setup.times("far"))
        assert setup.times("far")[0] - (moved.last_due or 0) >= -EARLY
        assert len(setup.times("far")) == 1
    finally:
        await stop(worker, task)
        if setup.kind == "rabbitmq":  # the cancelled original waits in the 19-day level
            await asyncio.to_thread(
                rabbit._mgmt, "DELETE", "/api/queues/%2F/repid.delay.24.wait/contents"
            )


async def test_cancel_a_queued_a_delayed_and_a_running_job(setup: Setup) -> None:
    queued = setup.job("queued")
    queued_unique = setup.job("queued-unique", id_=f"{setup.queue}-u")
    delayed = setup.job("delayed", deferred_by=2)
    running = setup.job("slow-running")
    for job in (queued, queued_unique, delayed):
        await job.enqueue()
    outcomes = [await job.cancel() for job in (queued, queued_unique, delayed)]
    removed, marked = CancelOutcome.REMOVED, CancelOutcome.MARKED
    assert (
        outcomes
        == {
            "memory": [removed, removed, removed],
            "redis": [marked, removed, removed],  # a queued non-unique job is marked on Redis
            "rabbitmq": [marked, marked, marked],  # a queue gives no message back
        }[setup.kind]
    )
    await running.enqueue()
    worker = setup.worker()
    task = await run_in_background(worker)
    try:
        await setup.wait_for("the running job", lambda: "slow-running:started" in setup.events)
        assert await running.cancel() is marked
        await setup.wait_for("the stop", lambda: "slow-running:stopped" in setup.events, 5)

        async def cancelled() -> bool:
            result = await running.result
            return result is not None and result.cancelled

        deadline = time.monotonic() + 5
        while not await cancelled():
            assert time.monotonic() < deadline, "the result bucket does not say cancelled"
            await asyncio.sleep(0.05)
        result = await running.result
        assert result is not None and not result.success
        assert result.exception is not None and result.exception.startswith("JobCancelledError")
        # The marked ones are dropped on receipt, the delayed one when it comes due.
        await setup.wait_for("the end of the delay", lambda: time.time() > (delayed.last_due or 0))
        await asyncio.sleep(1.0)
        await setup.job("after").enqueue()
        await setup.wait_for("a later job", lambda: setup.times("after"))
    finally:
        await stop(worker, task)
    assert [tag for tag, _ in setup.ran] == ["slow-running", "after"]
    if setup.kind != "memory":
        dropped = await queued.result
        assert dropped is not None and dropped.cancelled
    # The message of the stopped job was acked as cancelled: nothing comes back.
    second = setup.worker(messages_limit=1)
    await setup.job("last").enqueue()
    await asyncio.wait_for(second.run(), 15)
    assert [tag for tag, _ in setup.ran] == ["slow-running", "after", "last"]


async def test_retries_wait_in_the_broker_not_in_the_worker(setup: Setup) -> None:
    job = setup.job("fail-once", retries=1)
    first = Worker(
        handle_signals=[], messages_limit=1, _connection=setup.connection, cancel_poll_interval=0.1
    )
    ran = setup.ran

    @first.actor(queue=setup.queue, retry_policy=lambda retry_number=1: 2.0)
    async def record(tag: str) -> None:
        ran.append((tag, time.time()))
        raise RuntimeError("first attempt fails")

    await job.enqueue()
    started = time.monotonic()
    await asyncio.wait_for(first.run(), 15)
    # The failed attempt was acked as soon as the retry was handed to the broker's delay: the
    # worker did not hold it for the 2 s (it would have, before retries went through delays).
    assert time.monotonic() - started < 1.8
    failed_at = setup.ran[0][1]
    second = setup.worker(messages_limit=1)
    await asyncio.wait_for(second.run(), 15)
    retried_at = setup.ran[1][1]
    assert 2.0 - EARLY <= retried_at - failed_at < 2.0 + WITHIN
    result = await job.result
    assert result is not None and result.success


async def test_delayed_job_survives_a_worker_restart(setup: Setup) -> None:
    """In-memory: the worker stops and another starts in the process. Redis and RabbitMQ:
    a worker process killed with SIGKILL before the job is due, then a new process."""
    job = setup.job("restart", deferred_by=3)
    if setup.kind == "memory":
        await job.enqueue()
        first = setup.worker()
        task = await run_in_background(first)
        await stop(first, task)
        second = setup.worker(messages_limit=1)
        await asyncio.wait_for(second.run(), 15)
        assert setup.times("restart")[0] >= (job.last_due or 0) - EARLY
        return
    import redis.asyncio as aioredis

    records = f"{setup.queue}:records"
    client = aioredis.Redis.from_url(redis_jobs_url())
    processes: list[subprocess.Popen[bytes]] = []
    try:
        first = start_worker(setup.kind, setup.queue, records)
        processes.append(first)
        await job.enqueue()
        await asyncio.sleep(1.0)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = start_worker(setup.kind, setup.queue, records)
        processes.append(second)
        deadline = time.monotonic() + 20
        while not await client.llen(records):
            assert time.monotonic() < deadline, "the delayed job did not run after the restart"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        entries = [json.loads(e) for e in await client.lrange(records, 0, -1)]
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(20)
        await client.delete(records)
        await client.aclose()
    assert len(entries) == 1 and entries[0]["pid"] == second.pid
    assert entries[0]["t"] - (job.last_due or 0) >= -EARLY


def start_worker(kind: str, queue: str, records: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.jobs._job_programs", "worker", kind, queue, records],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    return process


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
async def test_unique_ids_under_concurrent_enqueues_from_processes(
    kind: str, queue_name: str
) -> None:
    from tests.jobs._job_programs import connection_for

    connection = connection_for(kind)
    await connection.connect()
    await Queue(queue_name, connection).declare()
    try:
        job_id = f"{queue_name}-only"
        command = [sys.executable, "-m", "tests.jobs._job_programs", "unique", kind, queue_name]
        processes = [
            subprocess.Popen([*command, job_id, "25"], cwd=ROOT, stdout=subprocess.PIPE)
            for _ in range(3)
        ]
        reports = []
        for process in processes:
            out, _ = process.communicate(timeout=60)
            reports.append(json.loads(out.decode().strip().splitlines()[-1]))
        assert all(r["errors"] == [] for r in reports), reports
        assert sum(r["ok"] for r in reports) == 1, reports
        assert sum(r["refused"] for r in reports) == 74, reports
        # One message in the queue; after its run the id may be enqueued again.
        worker = Worker(messages_limit=1, handle_signals=[], _connection=connection)
        seen: list[str] = []

        @worker.actor(queue=queue_name)
        async def record(tag: str) -> None:
            seen.append(tag)

        await asyncio.wait_for(worker.run(), 20)
        assert seen == [job_id]
        assert (
            await Job(
                "record", queue_name, args={"tag": "x"}, id_=job_id, _connection=connection
            ).enqueue()
            == job_id
        )
    finally:
        await connection.disconnect()
        await reset_redis(redis_jobs_url(), queue_name)
        if kind == "rabbitmq":
            for name in (queue_name, f"{queue_name}.dead"):
                await asyncio.to_thread(rabbit.rabbitmq_delete_queue, name)


async def test_redis_delayed_job_survives_a_redis_restart(queue_name: str) -> None:
    from repid import RedisBucketBroker, RedisMessageBroker
    from tests.redis.redis_helpers import OwnRedis

    own = OwnRedis()
    own.start()
    try:
        connection = Connection(
            RedisMessageBroker(own.url, block=0.2),
            results_bucket_broker=RedisBucketBroker(own.url, use_result_bucket=True),
        )
        setup = Setup("redis", connection, queue_name)
        await connection.connect()
        await Queue(queue_name, connection).declare()
        job = setup.job("persisted", deferred_by=3)
        await job.enqueue()
        await connection.disconnect()
        own.stop()  # SIGTERM: Redis writes its AOF and exits
        own.start()
        await connection.connect()
        worker = setup.worker(messages_limit=1)
        await asyncio.wait_for(worker.run(), 20)
        assert setup.times("persisted")[0] - (job.last_due or 0) >= -EARLY
        result = await job.result
        assert result is not None and result.success
        await connection.disconnect()
    finally:
        own.cleanup()


@pytest.mark.slow
async def test_rabbitmq_delayed_job_survives_a_broker_restart(queue_name: str) -> None:
    from tests.jobs._job_programs import connection_for

    connection = connection_for("rabbitmq")
    setup = Setup("rabbitmq", connection, queue_name)
    await connection.connect()
    try:
        await Queue(queue_name, connection).declare()
        job = setup.job("persisted", deferred_by=3)
        await job.enqueue()
        await asyncio.to_thread(rabbit.restart_broker, "rabbitmq")
        worker = setup.worker(messages_limit=1)
        await asyncio.wait_for(worker.run(), 60)
        assert setup.times("persisted")[0] - (job.last_due or 0) >= -EARLY
    finally:
        await connection.disconnect()
        await reset_redis(redis_jobs_url(), queue_name)
        for name in (queue_name, f"{queue_name}.dead"):
            await asyncio.to_thread(rabbit.rabbitmq_delete_queue, name)


async def test_redis_mover_stops_when_a_cancellation_is_lost(queue_name: str) -> None:
    """redis-py sends each command inside `asyncio.wait_for`, which before Python 3.12 drops a
    cancellation that arrives just as the send completes; the mover of delayed jobs then looped
    on and `disconnect` waited for it forever (seen on Redis Cluster). A look that swallows
    its cancellation stands in for that race here: `disconnect` must still end, promptly."""
    from repid import RedisMessageBroker
    from repid.connections.abc import DeliveryCapacity, ReceivedMessageT

    broker = RedisMessageBroker(redis_jobs_url(), block=0.2, delayed_poll_interval=0.02)
    await broker.connect()
    looking = asyncio.Event()
    swallowed = 0

    async def lossy_look(queue: str) -> tuple[int, float | None]:
        nonlocal swallowed
        if swallowed == 0:
            looking.set()
            try:
                await asyncio.Event().wait()  # until cancelled
            except asyncio.CancelledError:
                swallowed += 1  # ... and carry on, as the race does
        return 0, None

    broker._move_due = lossy_look  # type: ignore[method-assign]

    async def callback(message: ReceivedMessageT) -> None:
        await message.ack()

    try:
        await broker.subscribe(
            channels_to_callbacks={queue_name: callback}, capacity=DeliveryCapacity(1)
        )
        await asyncio.wait_for(looking.wait(), 10)
        started = time.monotonic()
        await asyncio.wait_for(broker.disconnect(), 10)
        assert swallowed == 1
        assert time.monotonic() - started < 5  # measured: a few ms
    finally:
        await broker.disconnect()
        await reset_redis(redis_jobs_url(), queue_name)
