"""Seed 002, "Quickstart" (and "Integration with FastAPI"): the examples, verbatim.

Where an example's subject is not the broker itself, `AmqpServer("amqp://localhost")` is replaced
by `InMemoryServer()` (marked `# seed: ...`); the original construction lines run in
`test_the_repid_application_with_amqp_server`, which only constructs the servers.
`if __name__ == "__main__": asyncio.run(main())` becomes `await main()` in the test.
"""

import asyncio
import json
import signal

import pytest

from repid import InMemoryServer, Repid, ServerNotConnectedError

from ._support import send_signal, signal_guard, wait_until

# --- The Repid Application ----------------------------------------------------------------


def test_the_repid_application_with_amqp_server() -> None:
    pytest.importorskip("repid.connections.amqp")
    try:
        from repid import AmqpServer  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"repid.AmqpServer is not importable yet: {exc}")

    import os  # noqa: F401

    from repid import AmqpServer, Repid

    # 1. Create your application
    app = Repid(title="My Awesome App")

    # 2. Register a server and mark it as default
    server = AmqpServer("amqp://localhost")
    app.servers.register_server("my_rabbitmq", server, is_default=True)

    # Added: registering does not connect; the registry hands the same object back.
    assert app.title == "My Awesome App"
    assert app.servers.default is server
    assert app.servers.get_server("my_rabbitmq") is server
    assert app.servers["my_rabbitmq"] is server
    assert server.is_connected is False


def test_the_repid_application_registry_behaviour() -> None:
    # The same example on the in-memory broker, for the registry's documented behaviour.
    app = Repid(title="My Awesome App")
    server = InMemoryServer()  # seed: AmqpServer("amqp://localhost")
    app.servers.register_server("my_rabbitmq", server, is_default=True)
    assert app.servers.default is server
    assert app.servers["my_rabbitmq"] is server


# --- Sending Messages (Producer) ----------------------------------------------------------


async def test_sending_messages_producer() -> None:
    app = Repid()
    server = InMemoryServer()  # seed: AmqpServer("amqp://localhost")
    app.servers.register_server("my_rabbitmq", server, is_default=True)

    async def main():
        # Retrieve the default server and open a connection
        async with app.servers.default.connection():
            # You can now safely publish messages
            await app.send_message_json(
                channel="default_queue",
                payload={"message": "Hello, Repid!"},
                headers={"topic": "my_actor"},  # Don't forget the topic if using topic routing!
            )

    await main()

    # Added: the message is on the broker, as JSON, with its topic.
    (stored,) = server.queued("default_queue")
    assert json.loads(stored.payload) == {"message": "Hello, Repid!"}
    assert stored.headers == {"topic": "my_actor"}
    assert stored.content_type == "application/json"
    # The connection was closed on leaving the block; publishing now says so.
    assert server.is_connected is False
    with pytest.raises(ServerNotConnectedError, match="not connected"):
        await app.send_message_json(channel="default_queue", payload={})


# --- Running Workers (Consumer): worker.py -----------------------------------------------


async def test_running_workers_consumer(capsys: pytest.CaptureFixture[str]) -> None:
    from repid import Repid, Router

    # 1. Initialize an app for the worker to use
    app = Repid()
    server = InMemoryServer()  # seed: AmqpServer("amqp://localhost")
    app.servers.register_server("my_rabbitmq", server, is_default=True)

    # 2. Create a router and an actor
    router = Router()

    @router.actor(channel="default_queue")
    async def my_action(message: str):
        print(f"Executing with payload: {message}")

    app.include_router(router)

    # 3. Start the worker loop!
    async def run_worker():
        # Like the producer, the connection must be opened first
        async with app.servers.default.connection():
            # Blocks forever, constantly pulling new messages and running actors
            await app.run_worker()

    # Added: a producer (as in the previous example) enqueues a message for the worker; the
    # worker blocks until SIGTERM, its documented way to stop.
    async with server.connection():
        await app.send_message_json(
            channel="default_queue", payload={"message": "Hello"}, headers={"topic": "my_action"}
        )
    with signal_guard(signal.SIGTERM) as fallback_hits:
        worker = asyncio.create_task(run_worker())
        await wait_until(lambda: "Executing with payload" in capsys.readouterr().out, "output")
        await asyncio.sleep(0.01)
        assert not worker.done()  # still running: it blocks until told to stop
        send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker, 30)
    assert fallback_hits == []  # the worker, not our fallback, handled SIGTERM
    assert server.queued("default_queue") == []
    assert server.dead_letters == {}
    assert server.is_connected is False


async def test_running_workers_consumer_prints(capsys: pytest.CaptureFixture[str]) -> None:
    # The same worker with messages_limit, to compare the exact output with the f-string.
    from repid import Router

    app = Repid()
    app.servers.register_server("my_rabbitmq", InMemoryServer(), is_default=True)
    router = Router()

    @router.actor(channel="default_queue")
    async def my_action(message: str):
        print(f"Executing with payload: {message}")

    app.include_router(router)
    async with app.servers.default.connection():
        await app.send_message_json(
            channel="default_queue", payload={"message": "Hello"}, headers={"topic": "my_action"}
        )
        info = await app.run_worker(messages_limit=1)
    assert capsys.readouterr().out == "Executing with payload: Hello\n"
    assert info.processed == 1


# --- Integration with FastAPI (lifespan) --------------------------------------------------


@pytest.mark.filterwarnings("ignore:Using `httpx` with")  # starlette TestClient notice
def test_integration_with_fastapi() -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")  # fastapi's TestClient needs it
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    from repid import Repid

    app = Repid()
    app.servers.register_server(
        "default",
        InMemoryServer(),  # seed: AmqpServer("amqp://localhost")
        is_default=True,
    )

    @asynccontextmanager
    async def lifespan(fastapi_app: FastAPI):
        # Open the Repid connection on startup
        async with app.servers.default.connection():
            yield
        # The connection automatically closes when the app shuts down

    fastapi_app = FastAPI(lifespan=lifespan)

    @fastapi_app.post("/create-job")
    async def create_repid_job(data: dict) -> dict:
        # We can safely send messages here because
        # the connection is kept alive by the lifespan
        await app.send_message_json(channel="my_background_task", payload=data)
        return {"status": "ok"}

    # Added: drive the web app (lifespan included) and look at the broker.
    from fastapi.testclient import TestClient as HttpClient

    server = app.servers.default
    with HttpClient(fastapi_app) as http:
        assert server.is_connected is True
        response = http.post("/create-job", json={"report": 42})
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    assert server.is_connected is False
    (stored,) = server.queued("my_background_task")
    assert json.loads(stored.payload) == {"report": 42}
    assert stored.content_type == "application/json"


async def test_producer_and_worker_are_separate_apps(capsys: pytest.CaptureFixture[str]) -> None:
    # "It does not need to be the exact same Repid application instance in memory, it just
    # needs to be connected to the same underlying server/broker!"
    from repid import Router

    broker = InMemoryServer()
    producer = Repid()
    producer.servers.register_server("my_rabbitmq", broker, is_default=True)
    worker = Repid()
    worker.servers.register_server("my_rabbitmq", broker, is_default=True)
    router = Router()

    @router.actor(channel="default_queue")
    async def my_action(message: str):
        print(f"Executing with payload: {message}")

    worker.include_router(router)
    async with broker.connection():
        await producer.send_message_json(
            channel="default_queue",
            payload={"message": "Hello, Repid!"},
            headers={"topic": "my_action"},
        )
        info = await worker.run_worker(messages_limit=1, register_signals=[])
    assert info.processed == 1
    assert capsys.readouterr().out == "Executing with payload: Hello, Repid!\n"
