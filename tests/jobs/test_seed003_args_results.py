"""Seed 003 (arguments and results): every example, verbatim, on the in-memory brokers; the
chaining program on Redis."""

from __future__ import annotations

import asyncio

import pytest

from repid import Connection, InMemoryBucketBroker, InMemoryMessageBroker, Job, Queue, Repid, Worker
from tests.jobs._programs import run_program


def make_connection() -> Connection:
    # The seed has a typo (`InMemoryBucketBroker(,`); this is the obvious intended code.
    from repid import Connection, InMemoryMessageBroker

    my_connection = Connection(
        message_broker=InMemoryMessageBroker(),
        args_bucket_broker=InMemoryBucketBroker(),
        results_bucket_broker=InMemoryBucketBroker(
            use_result_bucket=True,
        ),
    )
    return my_connection  # noqa: RET504


def make_router():  # type: ignore[no-untyped-def]
    from repid import Router

    router = Router()

    @router.actor
    async def actor_with_args(user_id: int, user_name: str, user_messages: list[str]) -> list[str]:
        user_message = f"Hi {user_name}! Your id is: {user_id}."
        user_messages.append(user_message)
        return user_messages

    return router


async def test_arguments_go_to_the_args_bucket() -> None:
    app = Repid(make_connection())
    async with app.magic():
        await Queue().declare()
        from repid import Job

        # code above is omitted
        await Job(
            "actor_with_args",
            args=dict(user_id=123, user_name="Alex", user_messages=["This is your first message!"]),  # noqa: C408
        ).enqueue()
        # code below is omitted
    (message,) = app.connection.message_broker.queued("default")
    assert message.payload == b""  # the connection has an args bucket broker: args are there
    bucket = await app.connection.args_bucket_broker.get(message.headers["job-args-id"])
    assert bucket is not None
    assert bucket.data == {
        "user_id": 123,
        "user_name": "Alex",
        "user_messages": ["This is your first message!"],
    }


async def test_arguments_in_the_message_without_args_bucket() -> None:
    app = Repid(Connection(InMemoryMessageBroker()))
    async with app.magic():
        await Queue().declare()
        await Job("actor_with_args", args={"user_id": 1}).enqueue()
    (message,) = app.connection.message_broker.queued("default")
    assert message.payload == b'{"user_id":1}'
    assert "job-args-id" not in message.headers


async def test_results_example(capsys: pytest.CaptureFixture[str]) -> None:
    app = Repid(make_connection())
    worker = Worker(routers=[make_router()], handle_signals=[])
    async with app.magic(auto_disconnect=True):
        await Queue().declare()
        run = asyncio.create_task(worker.run())
        import asyncio as asyncio_  # the seed's own import

        from repid import Job

        # code above is omitted
        myjob = Job(
            "actor_with_args",
            args=dict(user_id=123, user_name="Alex", user_messages=["This is your first message!"]),  # noqa: C408
        )
        await myjob.enqueue()
        await asyncio_.sleep(1.0)  # wait for the job to complete
        result_bucket = await myjob.result
        print(result_bucket)
        # code below is omitted
        worker.stop()
        info = await run
    assert info.processed == 1
    assert result_bucket is not None
    assert result_bucket.success is True
    assert result_bucket.exception is None
    assert result_bucket.data == ["This is your first message!", "Hi Alex! Your id is: 123."]
    assert result_bucket.started_when <= result_bucket.finished_when
    assert result_bucket.id_ == myjob.result_id
    assert "ResultBucket(" in capsys.readouterr().out


async def test_result_is_none_before_the_job_ran_and_without_results_broker() -> None:
    app = Repid(make_connection())
    async with app.magic():
        await Queue().declare()
        job = Job("actor_with_args", args={})
        await job.enqueue()
        assert await job.result is None
    bare = Job("x", _connection=Connection(InMemoryMessageBroker()))
    assert await bare.result is None


def test_ids_default_to_uuid4_and_can_be_given() -> None:
    job = Job("j")
    assert len(job.args_id) == 32 and len(job.result_id) == 32
    assert job.args_id != job.result_id
    given = Job("j", args_id="my-args", result_id="my-result")
    assert (given.args_id, given.result_id) == ("my-args", "my-result")


def test_ttl_example() -> None:
    from datetime import timedelta

    job = Job("some_job", args_ttl=timedelta(weeks=2), result_ttl=timedelta(days=5))
    assert job.args_ttl == timedelta(weeks=2)
    assert job.result_ttl == timedelta(days=5)
    default = Job("some_job")
    assert default.args_ttl is None
    assert default.result_ttl == timedelta(days=1)
    assert Job("some_job", result_ttl=None).result_ttl is None


CHAINING = """
import asyncio
import os

from repid import Connection, Job, RedisBucketBroker, RedisMessageBroker, Repid, Router, Worker

redis_messages_dsn = os.environ.get("REDIS_CONNECTION")
redis_args_and_results_dsn = os.environ.get("REDIS_ARGS_CONNECTION")

my_connection = Connection(
    message_broker=RedisMessageBroker(redis_messages_dsn),
    args_bucket_broker=RedisBucketBroker(redis_args_and_results_dsn),
    results_bucket_broker=RedisBucketBroker(
        redis_args_and_results_dsn,
        use_result_bucket=True,
    ),
)

app = Repid(my_connection)

my_router = Router()


@my_router.actor
async def add_hello(user_name: str, user_id: int, messages: list[str]) -> dict:
    message = f"Hello {user_name}!"
    messages.append(message)
    return dict(user_id=user_id, messages=messages)


@my_router.actor
async def add_id(user_id: int, messages: list[str]) -> list[str]:
    message = f"Your id is {user_id}."
    messages.append(message)
    return messages


async def main() -> None:
    async with app.magic(auto_disconnect=True):
        w = Worker(routers=[my_router], messages_limit=1)
        await Job(
            "add_hello",
            args=dict(user_name="Alex", user_id=123, messages=["This is your first message!"]),
            result_id="chained_id",
        ).enqueue()
        await w.run()
        second_job = Job("add_id", args_id="chained_id")
        await second_job.enqueue()
        await w.run()
        result_bucket = await second_job.result
        print(result_bucket.data)


if __name__ == "__main__":
    asyncio.run(main())
"""


def test_chaining_program_on_redis(
    redis_dsn: str, seed_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The program enqueues before its worker first runs: the queue exists from a setup step.
    from repid import RedisMessageBroker

    async def setup() -> None:
        async with Repid(Connection(RedisMessageBroker(redis_dsn))).magic(auto_disconnect=True):
            await Queue().declare()

    asyncio.run(setup())
    run_program(CHAINING)
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "['This is your first message!', 'Hello Alex!', 'Your id is 123.']"
    )


def test_chaining_program_on_memory(capsys: pytest.CaptureFixture[str]) -> None:
    # The same program on the in-memory brokers: one bucket broker serves both roles so that
    # the first result is readable as the second job's arguments.
    source = CHAINING.replace(
        """my_connection = Connection(
    message_broker=RedisMessageBroker(redis_messages_dsn),
    args_bucket_broker=RedisBucketBroker(redis_args_and_results_dsn),
    results_bucket_broker=RedisBucketBroker(
        redis_args_and_results_dsn,
        use_result_bucket=True,
    ),
)""",
        """from repid import InMemoryBucketBroker, InMemoryMessageBroker
buckets = InMemoryBucketBroker(use_result_bucket=True)
my_connection = Connection(
    message_broker=InMemoryMessageBroker(),
    args_bucket_broker=buckets,
    results_bucket_broker=buckets,
)
# The program enqueues before its worker first runs: the queue exists from a setup step.
asyncio.run(my_connection.message_broker.declare_queue("default"))""",
    )
    assert source != CHAINING
    run_program(source)
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "['This is your first message!', 'Hello Alex!', 'Your id is 123.']"
    )


def test_chaining_program_with_rabbitmq_messages(
    redis_dsn: str, seed_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same program with RabbitMQ 4 carrying the messages (buckets stay in Redis).
    from tests import brokers

    brokers.amqp_url()
    source = CHAINING.replace(
        "message_broker=RedisMessageBroker(redis_messages_dsn),",
        'message_broker=RabbitMessageBroker(dsn=os.environ.get("RABBIT_CONNECTION_STRING")),',
    ).replace("RedisMessageBroker, Repid", "RabbitMessageBroker, Repid")
    assert source.count("RabbitMessageBroker") == 2
    from repid import RabbitMessageBroker

    async def setup() -> None:
        broker = RabbitMessageBroker(brokers.amqp_url())
        async with broker.connection():
            await broker.declare_queue("default")

    for name in ("default", "default.dead"):
        brokers.rabbitmq_delete_queue(name)
    asyncio.run(setup())
    try:
        run_program(source)
    finally:
        for name in ("default", "default.dead"):
            brokers.rabbitmq_delete_queue(name)
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "['This is your first message!', 'Hello Alex!', 'Your id is 123.']"
    )
