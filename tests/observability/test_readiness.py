"""Readiness that tells the truth, on every network broker.

The worker reaches its broker through a TCP proxy; cutting the proxy is the broker going away
for the worker (connections reset, new ones refused) while the producer, connected directly,
keeps publishing. `/readyz` must turn 503 within 10 s of the cut and `Runner.is_ready` with
it; once the proxy is back the subscription recovers, `/readyz` is 200 again, `/livez` stayed
200 all along, and every message published meanwhile is processed. Prometheus'
`repid_broker_reconnects_total` stays 0 while nothing happens and counts the recovery (fed by
the server's subscription-state listeners, `SubscriptionEventsT`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import repid.prometheus
from repid import HealthCheckServerSettings, Repid, Router, ServerT
from repid.events import event_of
from repid.health.server import HealthCheckServer
from tests import brokers
from tests.health.http_client import get

from .tcp_proxy import TcpProxy

CUT_DETECTED_WITHIN = 10.0
"""The issue's bound: /readyz is 503 within 10 s of the broker going away."""
BACK_WITHIN = 30.0
"""Reconnect backoff (capped by each server) plus re-subscription, with margin."""


@dataclass
class Setup:
    name: str
    worker_server: ServerT  # through the proxy
    producer_server: ServerT  # direct
    channel: str
    proxy: TcpProxy
    secret: str | None  # the URL's user:password, which no log record may carry


def _split(host_port: str) -> tuple[str, int]:
    host, _, port = host_port.rpartition(":")
    return host, int(port)


async def _redis(proxy_for: Callable[[str, int], Any]) -> tuple[ServerT, ServerT, str, TcpProxy]:
    from repid.connections.redis import RedisServer

    url = brokers.redis_url()
    parts = urllib.parse.urlsplit(url)
    proxy = await proxy_for(parts.hostname or "127.0.0.1", parts.port or 6379)
    via = parts._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    channel = f"ready-{uuid.uuid4().hex[:8]}"
    return RedisServer(via), RedisServer(url), channel, proxy


async def _amqp(proxy_for: Callable[[str, int], Any]) -> tuple[ServerT, ServerT, str, TcpProxy]:
    from repid.connections.amqp import AmqpServer

    url = brokers.amqp_url()
    parts = urllib.parse.urlsplit(url)
    proxy = await proxy_for(parts.hostname or "127.0.0.1", parts.port or 5672)
    userinfo = parts.netloc.rpartition("@")[0]
    via = parts._replace(netloc=f"{userinfo}@127.0.0.1:{proxy.port}").geturl()
    channel = f"ready-{uuid.uuid4().hex[:8]}"
    brokers.rabbitmq_declare_queue(channel, {"x-queue-type": "quorum"})
    return AmqpServer(via), AmqpServer(url), channel, proxy


async def _pubsub(proxy_for: Callable[[str, int], Any]) -> tuple[ServerT, ServerT, str, TcpProxy]:
    from repid.connections.pubsub import PubsubServer

    host = brokers.pubsub_host()
    project = brokers.pubsub_project()
    proxy = await proxy_for(*_split(host))
    channel = f"ready-{uuid.uuid4().hex[:8]}"
    brokers.pubsub_create_topic(project, channel)
    brokers.pubsub_create_subscription(project, channel, channel, ack_deadline_seconds=10)
    return (
        PubsubServer(project=project, emulator_host=f"127.0.0.1:{proxy.port}"),
        PubsubServer(project=project, emulator_host=host),
        channel,
        proxy,
    )


BUILDERS = {"redis": _redis, "amqp": _amqp, "pubsub": _pubsub}


@pytest.fixture(params=list(BUILDERS))
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    proxies: list[TcpProxy] = []

    async def proxy_for(host: str, port: int) -> TcpProxy:
        proxy = await TcpProxy(host, port).start()
        proxies.append(proxy)
        return proxy

    worker, producer, channel, proxy = await BUILDERS[request.param](proxy_for)
    secret = None
    if request.param in ("redis", "amqp"):
        userinfo = urllib.parse.urlsplit(
            brokers.redis_url() if request.param == "redis" else brokers.amqp_url()
        ).netloc.rpartition("@")[0]
        secret = userinfo if ":" in userinfo else None
    try:
        yield Setup(request.param, worker, producer, channel, proxy, secret)
    finally:
        for made in proxies:
            await made.close()
        if request.param == "amqp":
            brokers.rabbitmq_delete_queue(channel)


async def wait_status(port: int, path: str, status: int, within: float) -> float:
    """Seconds until `path` answers `status`; fails after `within`."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < within:
        answer = await get(port, path)
        last = answer
        if answer.status == status:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} still {last.status if last else None} after {within} s: {last}")


async def test_readyz_follows_the_broker_connection(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="repid")
    app = Repid()
    app.servers.register_server("worker", setup.worker_server, is_default=True)
    producer = Repid()
    producer.servers.register_server("direct", setup.producer_server, is_default=True)
    router = Router()
    seen: list[int] = []

    @router.actor(channel=setup.channel)
    async def job(n: int) -> None:
        seen.append(n)

    app.include_router(router)
    registry = CollectorRegistry()
    repid.prometheus.instrument(app, registry=registry, stats_interval=0)

    def reconnects() -> float:
        value = registry.get_sample_value("repid_broker_reconnects_total", {"server": "worker"})
        return value or 0.0

    async def send(numbers: range) -> None:
        for n in numbers:
            await producer.send_message_json(
                channel=setup.channel, payload={"n": n}, headers={"topic": "job"}
            )

    async with setup.producer_server.connection(), setup.worker_server.connection():
        runner = app.create_runner(graceful_shutdown_time=2.0)
        health = await HealthCheckServer(HealthCheckServerSettings(port=0), runner).start()
        task = asyncio.create_task(runner.run(()))
        try:
            await wait_status(health.port, "/readyz", 200, 30)
            await send(range(3))
            await wait_until(lambda: len(seen) == 3, 30)
            assert reconnects() == 0

            await setup.proxy.cut()
            took = await wait_status(health.port, "/readyz", 503, CUT_DETECTED_WITHIN)
            assert runner.is_ready is False
            body = (await get(health.port, "/readyz")).json()
            assert body["status"] == "unavailable" and body["reasons"], body
            assert (await get(health.port, "/livez")).status == 200
            await send(range(3, 8))  # published while the worker cannot reach the broker
            await asyncio.sleep(1.0)
            assert (await get(health.port, "/readyz")).status == 503

            await setup.proxy.restore()
            back = await wait_status(health.port, "/readyz", 200, BACK_WITHIN)
            assert runner.is_ready is True
            assert reconnects() >= 1  # the recovery; a flap while cut may count another
            await wait_until(lambda: set(seen) >= set(range(8)), 30)
            print(f"{setup.name}: 503 after {took:.1f} s, 200 again {back:.1f} s after restore")
        finally:
            runner.stop()
            await asyncio.wait_for(task, 30)
            await health.close()
    # What the cut and the reconnects logged: event names, and never the credentials.
    events = {event_of(record) for record in caplog.records}
    assert "subscription.recovering" in events and "subscription.recovered" in events
    if setup.secret is not None:
        assert setup.secret not in caplog.text
        for record in caplog.records:
            assert setup.secret not in repr(record.__dict__), record.getMessage()


async def wait_until(done: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
