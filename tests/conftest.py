"""Shared fixtures: an app on a connected in-memory server; the broker clusters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from repid import InMemoryServer, Repid

if TYPE_CHECKING:
    from tests.clusters import RunningCluster


@pytest.fixture
async def memory_app() -> AsyncIterator[tuple[Repid, InMemoryServer]]:
    app = Repid(title="Test app")
    server = InMemoryServer()
    app.servers.register_server("default", server, is_default=True)
    async with server.connection():
        yield app, server


# Property-based tests check what is computed, not how fast: on a loaded 2-core CI machine one
# example can take longer than hypothesis' default 200 ms deadline, which would fail a correct
# run. The examples stay bounded by their count (max_examples) and the suite's own timeouts.
settings.register_profile(
    "repid", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("repid")


# -- broker clusters (tests/clusters) -------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clusters",
        action="store_true",
        default=False,
        help="run the tests marked `cluster` (starts a Redis Cluster, a Sentinel group and a "
        "RabbitMQ cluster on first use; also REPID_TEST_CLUSTERS=1)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests.clusters import clusters_enabled

    if clusters_enabled(bool(config.getoption("--clusters"))):
        return
    skip = pytest.mark.skip(reason="cluster test: run with --clusters (or REPID_TEST_CLUSTERS=1)")
    for item in items:
        if "cluster" in item.keywords:
            item.add_marker(skip)


def _cluster_fixture(name: str):  # type: ignore[no-untyped-def]
    @pytest.fixture(scope="session")
    def fixture() -> Iterator[RunningCluster]:
        from tests.clusters import start_cluster, stop_cluster

        cluster = start_cluster(name)  # type: ignore[arg-type]
        try:
            yield cluster
        finally:
            stop_cluster(cluster)

    return fixture


redis_cluster = _cluster_fixture("redis-cluster")
redis_sentinel = _cluster_fixture("redis-sentinel")
rabbitmq_cluster = _cluster_fixture("rabbitmq-cluster")
