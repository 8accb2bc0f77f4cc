"""Job-layer details: headers and bucket codecs, retry policies, held retries on brokers that
cannot delay, process actors, argument/result options."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repid import (
    Connection,
    InMemoryBucketBroker,
    InMemoryMessageBroker,
    InMemoryServer,
    Job,
    PrioritiesT,
    Queue,
    Repid,
    ResultBucket,
    Router,
    Worker,
    default_retry_policy_factory,
)
from repid.jobs.buckets import (
    ArgsBucket,
    decode_bucket,
    encode_args_bucket,
    encode_result_bucket,
)
from repid.jobs.headers import JobHeaders
from repid.serializers import default_serializer
from tests.jobs import _process_actors

# -- codecs ---------------------------------------------------------------------------------

ids = st.text(min_size=1, max_size=40)
seconds = st.none() | st.floats(min_value=0.001, max_value=1e9, allow_nan=False)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(
    job_id=ids,
    attempt=st.integers(1, 10**6),
    retries=st.integers(0, 10**6),
    timeout=seconds,
    priority=st.sampled_from(PrioritiesT),
    args_id=st.none() | ids,
    result_id=st.none() | ids,
    result_ttl=seconds,
)
def test_job_headers_round_trip(**fields: Any) -> None:
    headers = JobHeaders(**fields)
    encoded = headers.to_headers("topic-name")
    assert encoded["topic"] == "topic-name"
    assert all(isinstance(v, str) for v in encoded.values())
    parsed = JobHeaders.parse(encoded)
    if headers.result_id is None:
        headers.result_ttl = None  # only carried together with a result id
    assert parsed == headers


def test_bad_job_headers_are_value_errors() -> None:
    with pytest.raises(ValueError, match="job-priority"):
        JobHeaders.parse({"job-id": "x", "job-priority": "URGENT"})
    with pytest.raises(ValueError):
        JobHeaders.parse({"job-id": "x", "job-attempt": "first"})


@given(id_=ids, data=json_values, ttl=seconds)
def test_args_bucket_round_trip(id_: str, data: Any, ttl: float | None) -> None:
    bucket = decode_bucket(encode_args_bucket(id_, default_serializer(data), ttl))
    assert isinstance(bucket, ArgsBucket)
    assert (bucket.id_, bucket.data, bucket.ttl) == (id_, data, ttl)


@given(id_=ids, data=json_values, success=st.booleans(), exception=st.none() | st.text())
def test_result_bucket_round_trip(id_: str, data: Any, success: bool, exception: Any) -> None:
    raw = encode_result_bucket(
        id_,
        default_serializer(data),
        success=success,
        exception=exception,
        started_when=1.5,
        finished_when=2.5,
        ttl=10.0,
    )
    bucket = decode_bucket(raw)
    assert isinstance(bucket, ResultBucket)
    assert (bucket.id_, bucket.data, bucket.success, bucket.exception) == (
        id_,
        data,
        success,
        exception,
    )
    assert (bucket.started_when, bucket.finished_when, bucket.ttl) == (1.5, 2.5, 10.0)


def test_not_a_bucket() -> None:
    with pytest.raises(ValueError, match="not a Repid bucket"):
        decode_bucket(b"[1, 2]")


# -- retry policies -------------------------------------------------------------------------


def test_default_retry_policy_is_exponential_and_bounded() -> None:
    policy = default_retry_policy_factory()
    assert [policy(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert policy() == 1.0
    assert policy(10**6) == 86400.0  # max_exponent keeps 2**n finite; max_backoff caps it
    capped = default_retry_policy_factory(min_backoff=1, max_backoff=10**9, max_exponent=3)
    assert capped(100) == 8.0
    with pytest.raises(ValueError, match="max_backoff"):
        default_retry_policy_factory(min_backoff=10, max_backoff=1)
    with pytest.raises(ValueError, match="multiplier"):
        default_retry_policy_factory(multiplier=0)


# -- options --------------------------------------------------------------------------------


def test_connection_needs_a_job_message_broker() -> None:
    with pytest.raises(TypeError, match="not a job-layer message broker"):
        Connection(InMemoryServer())


def test_job_validation() -> None:
    with pytest.raises(ValueError, match="retries"):
        Job("j", retries=-1)
    with pytest.raises(ValueError, match="TTL"):
        Job("j", result_ttl=0)
    with pytest.raises(ValueError, match="queue name"):
        Queue("")


async def test_store_result_and_use_args_bucketer_options() -> None:
    buckets = InMemoryBucketBroker(use_result_bucket=True)
    broker = InMemoryMessageBroker()
    connection = Connection(broker, buckets, buckets)
    async with Repid(connection).magic(auto_disconnect=True):
        await Queue().declare()
        await Job("a", args={"x": 1}, store_result=False, use_args_bucketer=False).enqueue()
        await Job("b", args={"x": 2}).enqueue()
        first, second = broker.queued("default")
    assert first.payload == b'{"x":1}'
    assert "job-result-id" not in first.headers  # type: ignore[operator]
    assert second.payload == b""
    assert "job-result-id" in second.headers  # type: ignore[operator]
    assert "job-args-id" in second.headers  # type: ignore[operator]
    bare = Connection(InMemoryMessageBroker())
    await bare.connect()
    await bare.message_broker.declare_queue("default")
    with pytest.raises(ValueError, match="results_bucket_broker"):
        await Job("c", store_result=True, _connection=bare).enqueue()
    with pytest.raises(ValueError, match="args_bucket_broker"):
        await Job("c", args={}, use_args_bucketer=True, _connection=bare).enqueue()


async def test_enqueue_needs_an_open_connection() -> None:
    connection = Connection(InMemoryMessageBroker())
    with pytest.raises(RuntimeError, match="not open"):
        await Job("j", _connection=connection).enqueue()


async def test_worker_without_auto_declare_does_not_declare() -> None:
    broker = InMemoryMessageBroker()
    worker = Worker(auto_declare=False, messages_limit=0, handle_signals=[])

    @worker.actor(queue="mine")
    async def actor() -> None:
        pass

    async with Repid(Connection(broker)).magic(auto_disconnect=True):
        await worker.run()
        assert not await broker.is_declared("mine")
        await Worker(routers=[worker], messages_limit=0, handle_signals=[]).run()
        assert await broker.is_declared("mine")


# -- retries on a broker without delayed delivery --------------------------------------------


class NoDelayBroker(InMemoryMessageBroker):
    """The in-memory broker pretending it cannot delay (as RabbitMQ): the worker holds."""

    supports_delayed_publish = False


async def test_held_retry_is_published_after_the_delay() -> None:
    broker = NoDelayBroker()
    worker = Worker(messages_limit=2, handle_signals=[])
    calls: list[float] = []
    loop = asyncio.get_running_loop()

    @worker.actor(retry_policy=lambda retry_number=1: 0.2)
    async def flaky() -> None:
        calls.append(loop.time())
        if len(calls) == 1:
            raise RuntimeError("once")

    async with Repid(Connection(broker)).magic(auto_disconnect=True):
        await Queue().declare()
        await Job("flaky", retries=1).enqueue()
        await asyncio.wait_for(worker.run(), 10)
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.2 - 0.01
    assert broker.dead_letters == {}


async def test_shutdown_while_holding_a_retry_gives_the_message_back() -> None:
    broker = NoDelayBroker()
    worker = Worker(graceful_shutdown_time=0.1, handle_signals=[signal.SIGUSR1])
    failed = asyncio.Event()

    @worker.actor(retry_policy=lambda retry_number=1: 60.0)
    async def fails() -> None:
        failed.set()
        raise RuntimeError("boom")

    async with Repid(Connection(broker)).magic(auto_disconnect=True):
        await Queue().declare()
        await Job("fails", retries=3).enqueue()
        run = asyncio.create_task(worker.run())
        await asyncio.wait_for(failed.wait(), 10)
        await asyncio.sleep(0.05)  # now holding the message for the 60 s delay
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(run, 10)
        # At-least-once: the attempt was not acked, no retry was published; the same attempt
        # is back in the queue.
        (back,) = broker.queued("default")
    assert back.headers is not None and back.headers["job-attempt"] == "1"


async def test_in_memory_delayed_retry_survives_disconnect() -> None:
    broker = InMemoryMessageBroker()
    worker = Worker(messages_limit=1, handle_signals=[])

    @worker.actor(retry_policy=lambda retry_number=1: 0.1)
    async def fails() -> None:
        raise RuntimeError("boom")

    async with Repid(Connection(broker)).magic(auto_disconnect=True):
        await Queue().declare()
        await Job("fails", retries=1).enqueue()
        await worker.run()
        assert broker.scheduled == 1
    await asyncio.sleep(0.2)
    (retry,) = broker.queued("default")
    assert retry.headers is not None and retry.headers["job-attempt"] == "2"


# -- process actors ---------------------------------------------------------------------------


async def test_sync_actor_in_a_process() -> None:
    router = Router()
    router.actor(name="square", run_in_process=True)(_process_actors.pid_and_square)
    buckets = InMemoryBucketBroker(use_result_bucket=True)
    async with Repid(Connection(InMemoryMessageBroker(), results_bucket_broker=buckets)).magic(
        auto_disconnect=True
    ):
        await Queue().declare()
        job = Job("square", args={"x": 7})
        await job.enqueue()
        await Worker(routers=[router], messages_limit=1, handle_signals=[]).run()
        result = await job.result
    assert result is not None and result.success
    pid, square = result.data
    assert square == 49 and pid != os.getpid()
