"""Seeds 000/001 (initial setup): brokers, `Connection`, `Repid(connection)` and its magic.

The broker examples run verbatim with RABBIT_CONNECTION_STRING / REDIS_*_CONNECTION_STRING set
to the test brokers; the "recap" program runs against the real RabbitMQ 4 and Redis.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from repid import Connection, InMemoryMessageBroker, Job, Queue, Repid
from repid.jobs.errors import ConnectionNotBoundError
from tests import brokers
from tests.jobs._programs import run_program


def test_rabbit_broker_example(seed_env: pytest.MonkeyPatch) -> None:
    brokers.amqp_url()  # skip without RabbitMQ
    import os

    from repid import RabbitMessageBroker

    my_broker = RabbitMessageBroker(dsn=os.environ.get("RABBIT_CONNECTION_STRING"))
    assert my_broker.protocol == "amqp"
    assert "guest:guest" not in repr(my_broker)  # no password in the repr

    import os

    from repid import Connection, RabbitMessageBroker

    my_broker = RabbitMessageBroker(dsn=os.environ.get("RABBIT_CONNECTION_STRING"))

    my_connection = Connection(my_broker)
    assert my_connection.message_broker is my_broker
    assert my_connection.is_open is False
    assert my_connection.args_bucket_broker is None
    assert my_connection.results_bucket_broker is None


async def test_connection_with_bucket_brokers_example(seed_env: pytest.MonkeyPatch) -> None:
    brokers.amqp_url()
    brokers.redis_url()
    import os

    from repid import Connection, RabbitMessageBroker, RedisBucketBroker

    my_connection = Connection(
        message_broker=RabbitMessageBroker(dsn=os.environ.get("RABBIT_CONNECTION_STRING")),
        args_bucket_broker=RedisBucketBroker(dsn=os.environ.get("REDIS_ARGS_CONNECTION_STRING")),
        results_bucket_broker=RedisBucketBroker(
            dsn=os.environ.get("REDIS_RESULT_CONNECTION_STRING"),
            use_result_bucket=True,
        ),
    )
    assert my_connection.args_bucket_broker.use_result_bucket is False  # type: ignore[union-attr]
    assert my_connection.results_bucket_broker.use_result_bucket is True  # type: ignore[union-attr]
    # is_open follows connect()/disconnect() of the connection itself.
    await my_connection.connect()
    assert my_connection.is_open
    assert my_connection.message_broker.is_connected
    await my_connection.disconnect()
    assert not my_connection.is_open
    assert not my_connection.message_broker.is_connected


async def test_magic_example() -> None:
    my_connection = Connection(InMemoryMessageBroker())
    await my_connection.message_broker.declare_queue("default")  # from an earlier setup

    from repid import Job, Repid

    # `my_connection` definition is omitted

    app = Repid(my_connection)

    async def main() -> None:
        async with app.magic():
            j = Job("my_awesome_job")  # (1)
            await j.enqueue()

    # `main` function call is omitted
    await main()
    (queued,) = my_connection.message_broker.queued("default")
    assert queued.headers is not None and queued.headers["topic"] == "my_awesome_job"
    assert my_connection.is_open  # magic() does not disconnect by default


async def test_magic_auto_disconnect() -> None:
    app = Repid(Connection(InMemoryMessageBroker()))
    async with app.magic():
        pass
    assert app.connection.is_open
    async with app.magic(auto_disconnect=True):
        assert app.connection.is_open
    assert not app.connection.is_open


def test_fastapi_example() -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    my_connection = Connection(InMemoryMessageBroker())
    asyncio.run(my_connection.message_broker.declare_queue("default"))

    with pytest.warns(DeprecationWarning):  # FastAPI deprecates on_event; the seed uses it
        from fastapi import FastAPI

        from repid import Job, Repid

        # `my_connection` definition is omitted

        repid_app = Repid(my_connection)

        fastapi_app = FastAPI()

        @fastapi_app.on_event("startup")
        async def open_repid_connection() -> None:
            await repid_app.magic_connect()

        @fastapi_app.on_event("shutdown")
        async def close_repid_connection() -> None:
            await repid_app.magic_disconnect()

        @fastapi_app.post("/create-job")
        async def create_job() -> None:
            await Job("my_awesome_fastapi_job").enqueue()  # (1)

    # The startup hook and each request run in different tasks: the connection is bound
    # process-wide by magic_connect.
    with TestClient(fastapi_app) as client:
        assert client.post("/create-job").status_code == 200
        assert client.post("/create-job").status_code == 200
        assert my_connection.is_open
    assert not my_connection.is_open  # shutdown hook
    queued = my_connection.message_broker.queued("default")
    assert [m.headers["topic"] for m in queued] == ["my_awesome_fastapi_job"] * 2  # type: ignore[index]


RECAP = """
import asyncio
import os

from repid import Connection, Job, RabbitMessageBroker, RedisBucketBroker, Repid

app = Repid(
    Connection(
        message_broker=RabbitMessageBroker(dsn=os.environ.get("RABBIT_CONNECTION_STRING")),
        args_bucket_broker=RedisBucketBroker(dsn=os.environ.get("REDIS_ARGS_CONNECTION_STRING")),
        results_bucket_broker=RedisBucketBroker(
            dsn=os.environ.get("REDIS_RESULT_CONNECTION_STRING"),
            use_result_bucket=True,
        ),
    )
)


async def main() -> None:
    async with app.magic():
        await Job("my_awesome_job").enqueue()


if __name__ == "__main__":
    asyncio.run(main())
"""


def test_recap_program_on_rabbitmq_and_redis(redis_dsn: str, seed_env: pytest.MonkeyPatch) -> None:
    brokers.amqp_url()
    from repid import RabbitMessageBroker

    # The program enqueues to "default": it exists from a setup step (a worker or declare()).
    async def setup() -> None:
        broker = RabbitMessageBroker(brokers.amqp_url())
        async with broker.connection():
            await broker.declare_queue("default")

    brokers.rabbitmq_delete_queue("default")
    brokers.rabbitmq_delete_queue("default.dead")
    asyncio.run(setup())
    try:
        run_program(RECAP)
        (message,) = brokers.rabbitmq_get_messages("default", 5)
        assert message["properties"]["headers"]["topic"] == "my_awesome_job"
    finally:
        brokers.rabbitmq_delete_queue("default")
        brokers.rabbitmq_delete_queue("default.dead")


# -- magic across tasks ----------------------------------------------------------------------


async def test_concurrent_tasks_use_their_own_apps() -> None:
    apps = [Repid(Connection(InMemoryMessageBroker())) for _ in range(2)]
    for app in apps:
        await app.connection.message_broker.declare_queue("default")
    inside: list[str] = []
    both_inside = asyncio.Event()

    async def producer(app: Repid, name: str) -> None:
        async with app.magic():
            inside.append(name)
            if len(inside) == 2:
                both_inside.set()
            await both_inside.wait()  # both tasks are inside their magic() at once
            for _ in range(3):
                await Job(name).enqueue()
                await asyncio.sleep(0)

    await asyncio.gather(producer(apps[0], "first"), producer(apps[1], "second"))
    for app, name in zip(apps, ("first", "second"), strict=True):
        topics = {m.headers["topic"] for m in app.connection.message_broker.queued("default")}  # type: ignore[index]
        assert topics == {name}


async def test_magic_connect_binds_for_tasks_started_elsewhere() -> None:
    app = Repid(Connection(InMemoryMessageBroker()))
    await app.connection.message_broker.declare_queue("default")

    async def startup() -> None:
        await app.magic_connect()

    async def handler() -> None:
        await Job("from_another_task").enqueue()

    def in_fresh_context(coro: Any) -> asyncio.Task[None]:
        # As a server's startup hook and request handlers are (the task copies this context).
        return contextvars.Context().run(asyncio.create_task, coro)

    await in_fresh_context(startup())
    await in_fresh_context(handler())
    assert len(app.connection.message_broker.queued("default")) == 1
    await app.magic_disconnect()
    assert not app.connection.is_open
    with pytest.raises(ConnectionNotBoundError, match="magic"):
        await in_fresh_context(handler())


async def test_queue_and_job_outside_magic_need_a_connection() -> None:
    with pytest.raises(ConnectionNotBoundError, match="_connection="):
        await Queue("q").declare()
    connection = Connection(InMemoryMessageBroker())
    await connection.connect()
    await Queue("q", connection).declare()
    assert await Job("j", "q", _connection=connection).enqueue()
    await connection.disconnect()
