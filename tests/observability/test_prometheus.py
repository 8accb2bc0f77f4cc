"""Prometheus: the counters, histogram and gauges against the messages a worker handled, and
`/metrics` on the health server. (A real Prometheus scraping `repid run --workers 2` is in
test_prometheus_server.py.)"""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")  # the opentelemetry/prometheus extras and test tools

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import repid.prometheus
from repid import HealthCheckServerSettings, InMemoryServer, Message, Repid, Router, TestClient
from repid.health.server import HealthCheckServer
from repid.prometheus import PrometheusObserver
from tests.health.http_client import get


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def make_app() -> tuple[Repid, CollectorRegistry]:
    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    registry = CollectorRegistry()
    repid.prometheus.instrument(app, registry=registry)
    router = Router()

    @router.actor(channel="orders")
    async def place(n: int) -> None:
        if n < 0:
            raise ValueError("negative")

    @router.actor(channel="orders", confirmation_mode="manual")
    async def audit(message: Message) -> None:
        await message.reject()

    app.include_router(router)
    return app, registry


async def test_counters_follow_the_messages() -> None:
    app, registry = make_app()
    async with TestClient(app) as client:
        for n in (1, 2, -1):
            await client.send_message_json(
                channel="orders", payload={"n": n}, headers={"topic": "place"}
            )
        await client.send_message_json(channel="orders", payload={}, headers={"topic": "nobody"})
    labels = {"actor": "place", "channel": "orders"}
    assert value(registry, "repid_messages_processed_total", outcome="ack", **labels) == 2
    assert value(registry, "repid_messages_processed_total", outcome="nack", **labels) == 1
    assert value(registry, "repid_messages_failed_total", error_type="ValueError", **labels) == 1
    assert value(registry, "repid_message_processing_seconds_count", **labels) == 3
    assert value(registry, "repid_messages_in_flight", **labels) == 0
    assert value(registry, "repid_messages_unrouted_total", channel="orders") == 1
    assert value(registry, "repid_messages_received_total", channel="orders") == 4
    assert value(registry, "repid_messages_published_total", channel="orders") == 4


async def test_metrics_endpoint_of_the_health_server() -> None:
    app, registry = make_app()
    observer = next(o for o in app.observers if isinstance(o, PrometheusObserver))
    release = asyncio.Event()
    router = Router()

    @router.actor(channel="slow")
    async def hold() -> None:
        await release.wait()

    app.include_router(router)
    async with app.servers.default.connection():
        for n in range(3):
            await app.send_message_json(
                channel="orders", payload={"n": n}, headers={"topic": "place"}
            )
        await app.send_message_json(channel="slow", payload={}, headers={"topic": "hold"})
        runner = app.create_runner()
        health = await HealthCheckServer(
            HealthCheckServerSettings(port=0), runner, observer
        ).start()
        worker = asyncio.create_task(runner.run(()))
        try:
            async with asyncio.timeout(10):
                while (
                    value(registry, "repid_messages_in_flight", actor="hold", channel="slow") != 1
                ):
                    await asyncio.sleep(0.01)
            answer = await get(health.port, "/metrics")
            assert answer.status == 200
            assert answer.headers["content-type"].startswith("text/plain")
            found = samples(answer.body.decode())
            ack = (("actor", "place"), ("channel", "orders"), ("outcome", "ack"))
            assert found[("repid_messages_processed_total", ack)] == 3
            assert (
                found[("repid_messages_in_flight", (("actor", "hold"), ("channel", "slow")))] == 1
            )
            assert (await get(health.port, "/readyz")).status == 200
        finally:
            release.set()
            runner.stop()
            await asyncio.wait_for(worker, 10)
            await health.close()
    assert value(registry, "repid_messages_in_flight", actor="hold", channel="slow") == 0


async def test_no_metrics_endpoint_without_instrumentation() -> None:
    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    async with app.servers.default.connection():
        runner = app.create_runner()
        health = await HealthCheckServer(HealthCheckServerSettings(port=0), runner).start()
        try:
            assert (await get(health.port, "/metrics")).status == 404
        finally:
            await health.close()


def test_instrument_twice_and_shared_registry() -> None:
    registry = CollectorRegistry()
    first, second = Repid(), Repid()
    a = repid.prometheus.instrument(first, registry=registry)
    b = repid.prometheus.instrument(second, registry=registry)
    assert a.metrics is b.metrics  # one set of collectors per registry
    with pytest.raises(RuntimeError, match="already instrumented"):
        repid.prometheus.instrument(first, registry=registry)
