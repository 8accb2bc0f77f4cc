"""The pieces under uniqueness, cancellation and delays: the job-state stores (in memory and in
Redis) behave alike, a unique job's claim lives through its retries and ends with its last
outcome, a job that arrives before it is due waits again (what carries RabbitMQ delays past
the chain's 77 days), and the RabbitMQ delay chain's addressing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from repid import (
    Connection,
    DuplicateJobError,
    InMemoryMessageBroker,
    Job,
    Queue,
    Worker,
)
from repid.data import MessageData
from repid.jobs.brokers import rabbit_delay
from repid.jobs.headers import JobHeaders
from repid.jobs.priorities import PrioritiesT
from repid.jobs.state import InMemoryJobState, JobStateStoreT, cancel_mark
from tests.jobs.conftest import redis_jobs_url, reset_redis


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, queue_name: str) -> AsyncIterator[JobStateStoreT]:
    if request.param == "memory":
        yield InMemoryJobState()
        return
    from repid import RedisBucketBroker

    buckets = RedisBucketBroker(redis_jobs_url())
    await buckets.connect()
    try:
        yield buckets.job_state
    finally:
        await buckets.disconnect()
        await reset_redis(redis_jobs_url(), queue_name)


async def test_claims(store: JobStateStoreT, queue_name: str) -> None:
    assert await store.claim(queue_name, "unique:a", "t1:")
    assert not await store.claim(queue_name, "unique:a", "t2:")
    assert await store.get(queue_name, "unique:a") == "t1:"
    assert await store.claim("other-" + queue_name, "unique:a", "t3:")  # per queue
    await store.release(queue_name, "unique:a", owner="t2:")  # not the owner: stays
    assert await store.get(queue_name, "unique:a") == "t1:"
    await store.release(queue_name, "unique:a", owner="t1:")
    assert await store.get(queue_name, "unique:a") is None
    assert await store.claim(queue_name, "unique:b", "x", ttl=0.1)
    await asyncio.sleep(0.25)
    assert await store.claim(queue_name, "unique:b", "y")  # the first one expired
    await store.release("other-" + queue_name, "unique:a")


async def test_advance_and_rewind(store: JobStateStoreT, queue_name: str) -> None:
    assert await store.advance(queue_name, "schedule:k", 1000) == (True, None)
    assert await store.advance(queue_name, "schedule:k", 1000) == (False, 1000)
    assert await store.advance(queue_name, "schedule:k", 999) == (False, 1000)
    assert await store.advance(queue_name, "schedule:k", 2000) == (True, 1000)
    assert not await store.rewind(queue_name, "schedule:k", 1000, None)  # not its value
    assert await store.rewind(queue_name, "schedule:k", 2000, 1000)
    assert await store.advance(queue_name, "schedule:k", 2000) == (True, 1000)
    assert await store.rewind(queue_name, "schedule:k", 2000, 1000)
    assert await store.rewind(queue_name, "schedule:k", 1000, None)
    assert await store.advance(queue_name, "schedule:k", 5) == (True, None)


async def test_cancellation_marks(store: JobStateStoreT, queue_name: str) -> None:
    now = time.time()
    await store.mark_cancelled(queue_name, "a", now + 60)
    await store.mark_cancelled(queue_name, cancel_mark("b", "tok"), now + 60)
    await store.mark_cancelled(queue_name, "gone", now - 1)  # already expired
    assert await store.cancelled(queue_name) == {"a", "b@tok"}
    await store.unmark_cancelled(queue_name, "a")
    assert await store.cancelled(queue_name) == {"b@tok"}
    assert await store.cancelled("other-" + queue_name) == frozenset()


async def test_a_unique_job_keeps_its_id_through_retries_and_frees_it_at_the_end() -> None:
    broker = InMemoryMessageBroker()
    connection = Connection(broker)
    await connection.connect()
    await Queue("default", connection).declare()
    attempts: list[float] = []
    worker = Worker(messages_limit=3, handle_signals=[], _connection=connection)

    @worker.actor(retry_policy=lambda retry_number=1: 0.3)
    async def flaky() -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError("not yet")

    job = Job("flaky", id_="flaky-1", retries=2, _connection=connection)
    await job.enqueue()
    task = asyncio.get_running_loop().create_task(worker.run())
    while len(attempts) < 1:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    with pytest.raises(DuplicateJobError):  # its retry waits: still pending
        await Job("flaky", id_="flaky-1", _connection=connection).enqueue()
    await asyncio.wait_for(task, 10)
    assert len(attempts) == 3
    await Job("flaky", id_="flaky-1", _connection=connection).enqueue()  # free after success
    # The last failure (dead letter) frees it too.
    failing = Worker(messages_limit=1, handle_signals=[], _connection=connection)

    @failing.actor(name="flaky")
    async def always_fails() -> None:
        raise RuntimeError("no")

    await asyncio.wait_for(failing.run(), 10)
    assert len(broker.dead_letters["default"]) == 1
    await Job("flaky", id_="flaky-1", _connection=connection).enqueue()
    await connection.disconnect()


async def test_a_job_that_arrives_early_waits_again() -> None:
    """A broker that delivers before `job-due` (RabbitMQ past its chain's 77 days)."""
    broker = InMemoryMessageBroker()
    connection = Connection(broker)
    await connection.connect()
    await Queue("default", connection).declare()
    due = time.time() + 1.5
    headers = JobHeaders(
        job_id="early",
        attempt=1,
        retries=0,
        timeout=None,
        priority=PrioritiesT.MEDIUM,
        args_id=None,
        result_id=None,
        result_ttl=None,
        due=due,
    ).to_headers("record")
    # Published with no delay: delivered at once, 1.5 s before it is due.
    await broker.publish_job(
        queue="default",
        message=MessageData(b"{}", headers, "application/json"),
        priority=PrioritiesT.MEDIUM,
        message_id="early",
    )
    ran: list[float] = []
    worker = Worker(messages_limit=2, handle_signals=[], _connection=connection)

    @worker.actor
    async def record() -> None:
        ran.append(time.time())

    await asyncio.wait_for(worker.run(), 10)  # two messages: the early one, then the real run
    assert len(ran) == 1 and ran[0] >= due - 0.01
    await connection.disconnect()


def routing_key(address: str) -> list[str]:
    from urllib.parse import unquote

    prefix = f"/exchanges/{rabbit_delay.ENTRY_EXCHANGE}/"
    assert address.startswith(prefix)
    return unquote(address[len(prefix) :]).split(".")


def units(words: list[str]) -> int:
    bits = words[: rabbit_delay.LEVELS]
    return sum(1 << (rabbit_delay.LEVELS - 1 - i) for i, bit in enumerate(bits) if bit == "1")


@pytest.mark.parametrize(
    ("delay", "expected_units"),
    [(0.001, 1), (0.1, 1), (0.1001, 2), (1, 10), (5, 50), (2.25, 23), (1e12, 2**26 - 1)],
)
def test_delay_chain_routing_keys(delay: float, expected_units: int) -> None:
    words = routing_key(rabbit_delay.delay_address("jobs.emails", delay))
    assert words[rabbit_delay.LEVELS :] == ["jobs", "emails"]
    assert units(words) == expected_units  # rounded up: never early


def test_delay_chain_topology_routes_every_bit() -> None:
    requests = rabbit_delay.topology()
    queues = {path: body for method, path, body in requests if path.startswith("/queues/")}
    assert len(queues) == rabbit_delay.LEVELS
    for level in range(rabbit_delay.LEVELS):
        arguments: Any = queues[f"/queues/{rabbit_delay.level_queue(level)}"]["arguments"]
        assert arguments["x-message-ttl"] == 100 * 2**level
        assert arguments["x-dead-letter-strategy"] == "at-least-once"
    assert max(q["arguments"]["x-message-ttl"] for q in queues.values()) < 2**32  # RabbitMQ's cap
    bindings = [body for method, path, body in requests if path == "/bindings"]
    assert len(bindings) == 2 * rabbit_delay.LEVELS + 1
    binding = rabbit_delay.queue_binding("orders")
    assert binding["binding_key"].endswith(".orders")
    with pytest.raises(ValueError, match="wildcard"):
        rabbit_delay.delay_address("a.#.b", 1)
    with pytest.raises(ValueError, match="too long"):
        rabbit_delay.delay_address("q" * 250, 1)
