"""The per-message metrics kept as plain numbers (`repid.prometheus.local`, one process) expose
exactly what prometheus_client's own collectors (multiprocess mode) would, in both formats."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")

import re

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from repid import InMemoryServer, Message, Repid, Router, TestClient
from repid.prometheus import PrometheusObserver, PrometheusProducerMiddleware, RepidMetrics
from repid.prometheus.local import LocalCollector, LocalHistogram
from repid.prometheus.metrics import PROCESSING_BUCKETS

_CREATED = re.compile(rb"^(\w+_created\{[^}]*\}|\w+_created) \S+$", re.MULTILINE)


def without_created_values(text: bytes) -> bytes:
    """`_created` samples are timestamps of when a child was made: keep the lines, not values."""
    return _CREATED.sub(rb"\1 T", text)


async def run_scenario(local: bool) -> CollectorRegistry:
    registry = CollectorRegistry()
    metrics = RepidMetrics(registry, local=local)
    assert metrics.local is local
    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    app.observers.append(PrometheusObserver(metrics, stats_interval=0))
    app.producer_middlewares.append(PrometheusProducerMiddleware(metrics))
    router = Router()

    @router.actor(channel="orders")
    async def place(n: int) -> None:
        if n < 0:
            raise ValueError("negative")
        if n == 0:
            raise KeyError("zero")

    @router.actor(channel="audit", confirmation_mode="manual")
    async def audit(message: Message) -> None:
        await message.reject()

    app.include_router(router)
    async with TestClient(app) as client:
        for n in (1, 2, -1, 0, 3):
            await client.send_message_json(
                channel="orders", payload={"n": n}, headers={"topic": "place"}
            )
        await client.send_message_json(channel="audit", payload={}, headers={"topic": "audit"})
        await client.send_message_json(channel="orders", payload={}, headers={"topic": "nobody"})
    return registry


def comparable(text: bytes) -> bytes:
    """Processing times differ run to run: their buckets and sums are left out (their counts
    stay), `_created` values too; the rest is compared byte for byte."""
    lines = [
        line
        for line in without_created_values(text).splitlines()
        if not line.startswith(
            (b"repid_message_processing_seconds_bucket", b"repid_message_processing_seconds_sum")
        )
    ]
    return b"\n".join(lines)


async def test_local_and_prometheus_client_collectors_expose_the_same() -> None:
    local, shared = await run_scenario(local=True), await run_scenario(local=False)
    for encode in (generate_latest, generate_openmetrics):
        assert comparable(encode(local)) == comparable(encode(shared))
    labels = {"actor": "place", "channel": "orders", "outcome": "nack"}
    assert local.get_sample_value("repid_messages_processed_total", labels) == 2
    assert local.get_sample_value("repid_messages_received_total", {"channel": "orders"}) == 6
    actor = {"actor": "place", "channel": "orders"}
    assert local.get_sample_value("repid_message_processing_seconds_count", actor) == 5


def test_a_second_collector_of_the_same_names_is_refused() -> None:
    registry = CollectorRegistry()
    RepidMetrics(registry, local=True)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        RepidMetrics(registry, local=False)


@given(
    st.lists(
        st.one_of(
            st.sampled_from(PROCESSING_BUCKETS),  # exactly on a bound: `le` includes it
            st.floats(min_value=0, max_value=1000, allow_nan=False),
        ),
        max_size=50,
    )
)
def test_histogram_buckets_match_prometheus_client(values: list[float]) -> None:
    theirs_registry, ours_registry = CollectorRegistry(), CollectorRegistry()
    theirs = Histogram("h", "h", ("a",), buckets=PROCESSING_BUCKETS, registry=theirs_registry)
    ours = LocalHistogram("h", "h", ("a",), PROCESSING_BUCKETS)
    ours_registry.register(LocalCollector([ours]))
    for v in values:
        theirs.labels("x").observe(v)
        ours.labels("x").observe(v)
    assert without_created_values(generate_latest(ours_registry)) == without_created_values(
        generate_latest(theirs_registry)
    )
