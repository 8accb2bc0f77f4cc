"""A broker restart, on every server with a broker to restart (issue 12's evidence).

One scenario per broker, on a broker of the test's own where that is cheap (a private
redis-server, a private Pub/Sub emulator; RabbitMQ is the test broker, stopped and started by
`scripts/brokers.sh`):

* a worker's subscription shows RECOVERING as soon as it notices the broker is gone
  (`Runner.is_ready` False), and ACTIVE again only once it is re-subscribed;
* a producer-only connection (no worker on it, like a web app's) gets a clear error within a
  bounded time while the broker is down, and succeeds again within 10 s of the broker being
  back, without any reconnect call.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from repid import Repid, Router, ServerT, SubscriptionState
from tests import brokers

STOPPED_ERROR_WITHIN = 30.0  # seconds a send may take to fail while the broker is down
BACK_WITHIN = 10.0  # seconds after the broker is back by which sends succeed again


@dataclass
class Restartable:
    name: str
    make_server: Callable[..., ServerT]
    stop: Callable[[], None]
    start: Callable[[], None]
    provision: Callable[[str], None]
    send_errors: tuple[type[BaseException], ...]


def _redis(tmp_path: Path) -> Restartable:
    from repid.connections.redis import RedisConnectionError, RedisServer
    from tests.redis.redis_helpers import OwnRedis

    own = OwnRedis()
    own.start()
    return Restartable(
        "redis",
        lambda **kw: RedisServer(own.url, block=0.5, **kw),
        own.stop,
        own.start,
        lambda channel: None,
        (RedisConnectionError,),
    )


def _amqp(tmp_path: Path) -> Restartable:
    from repid.connections.amqp import AmqpServer

    url = brokers.amqp_url()

    def provision(channel: str) -> None:
        brokers.rabbitmq_declare_queue(channel, {"x-queue-type": "quorum"})

    return Restartable(
        "amqp",
        lambda **kw: AmqpServer(url, publish_timeout=3.0, **kw),
        lambda: brokers.stop_broker("rabbitmq"),
        lambda: brokers.start_broker("rabbitmq"),
        provision,
        (ConnectionError,),
    )


def _pubsub(tmp_path: Path) -> Restartable:
    import grpc.aio

    from repid.connections.pubsub import PubsubServer
    from tests.pubsub.pubsub_helpers import PROJECT, OwnEmulator, create_pair

    own = OwnEmulator(tmp_path)
    own.start()
    made: list[str] = []

    def provision(channel: str) -> None:
        made.append(channel)
        create_pair(own.host, channel)

    def start() -> None:
        own.start()
        for channel in made:  # the emulator starts empty
            create_pair(own.host, channel)

    return Restartable(
        "pubsub",
        lambda **kw: PubsubServer(PROJECT, emulator_host=own.host, publish_timeout=3.0, **kw),
        own.stop,
        start,
        provision,
        (grpc.aio.AioRpcError, ConnectionError),
    )


@pytest.fixture(params=["redis", "amqp", "pubsub"])
async def restartable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Restartable]:
    made = {"redis": _redis, "amqp": _amqp, "pubsub": _pubsub}[request.param](tmp_path)
    try:
        yield made
    finally:
        if made.name == "amqp":
            try:
                made.start()  # the shared broker is left running, whatever happened
            except Exception:
                pass
        else:
            # A private broker of this test. Starting it again here (it is usually running)
            # spawned a second process that lost the port race while the first was leaked.
            made.stop()


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_a_broker_restart_is_survived_by_producer_and_worker(
    restartable: Restartable,
) -> None:
    channel = f"restart-{uuid.uuid4().hex[:10]}"
    restartable.provision(channel)
    producer_server = restartable.make_server()
    worker_server = restartable.make_server()
    producer = Repid()
    producer.servers.register_server("broker", producer_server, is_default=True)
    worker = Repid()
    worker.servers.register_server("broker", worker_server, is_default=True)
    router = Router()
    seen: list[bytes] = []

    @router.actor(channel=channel)
    async def job() -> None: ...

    async def record(call_next: Any, message: Any, actor: Any) -> Any:
        seen.append(message.payload)
        return await call_next(message, actor)

    worker.actor_middlewares.append(record)
    worker.include_router(router)

    async def send(payload: bytes) -> None:
        await producer.send_message(channel=channel, payload=payload, headers={"topic": "job"})

    await producer_server.connect()
    await worker_server.connect()
    runner = worker.create_runner(graceful_shutdown_time=2.0)
    run = asyncio.create_task(runner.run(()))
    try:
        await _until(lambda: runner.is_ready, 30, "the worker to be ready")
        await send(b"before")
        await _until(lambda: b"before" in seen, 30, "the first message")

        await asyncio.to_thread(restartable.stop)
        # The worker notices, and says so at once: not ready, RECOVERING.
        await _until(
            lambda: runner.subscription_state is not SubscriptionState.ACTIVE, 30, "RECOVERING"
        )
        assert runner.subscription_state is SubscriptionState.RECOVERING
        assert not runner.is_ready
        # The producer gets a clear error, after a bounded wait.
        began = time.monotonic()
        try:
            await asyncio.wait_for(send(b"lost"), STOPPED_ERROR_WITHIN)
        except asyncio.TimeoutError:
            pytest.fail(f"send_message blocked for {STOPPED_ERROR_WITHIN} s with the broker down")
        except restartable.send_errors as exc:
            assert str(exc)  # it says what failed
        else:
            pytest.fail("send_message succeeded with the broker down")
        assert time.monotonic() - began < STOPPED_ERROR_WITHIN

        await asyncio.to_thread(restartable.start)
        back = time.monotonic()
        # The producer gets through again within 10 s, with no reconnect call.
        while True:
            try:
                await asyncio.wait_for(send(b"after"), STOPPED_ERROR_WITHIN)
                break
            except restartable.send_errors:
                if time.monotonic() - back > BACK_WITHIN:
                    raise
                await asyncio.sleep(0.1)
        assert time.monotonic() - back <= BACK_WITHIN
        # The worker subscribes again, then consumes what was sent meanwhile.
        await _until(lambda: runner.subscription_state is SubscriptionState.ACTIVE, 60, "ACTIVE")
        await _until(lambda: b"after" in seen, 60, "the message sent after the restart")
        assert runner.is_ready
    finally:
        runner.stop()
        await asyncio.wait_for(run, 30)
        await producer_server.disconnect()
        await worker_server.disconnect()
        if restartable.name == "amqp":
            brokers.rabbitmq_delete_queue(channel)
