"""The clusters are what the failover tests assume: three masters with a replica each and 5 s
failure detection; three sentinels watching a master and its replica; three RabbitMQ nodes
whose quorum queues have a replica on each."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest
import redis

from repid.connections.amqp import AmqpServer
from repid.connections.amqp.protocol.types import Array
from tests.clusters import RunningCluster

from .redis_admin import masters, node_client, slot_owners, wait_healthy

pytestmark = pytest.mark.cluster


def test_redis_cluster_shape(redis_cluster: RunningCluster) -> None:
    wait_healthy(redis_cluster)
    assert len(redis_cluster.nodes) == 6 and len(masters(redis_cluster)) == 3
    assert len(slot_owners(redis_cluster)) == 16384
    for host, port in redis_cluster.nodes:
        timeout: Any = node_client(host, port).config_get("cluster-node-timeout")
        assert timeout["cluster-node-timeout"] == "5000"


def test_sentinel_shape(redis_sentinel: RunningCluster) -> None:
    sentinels = redis_sentinel.url.split("//")[1].split("/")[0].split(",")
    assert len(sentinels) == 3 and len(redis_sentinel.nodes) == 2
    for item in sentinels:
        host, _, port = item.rpartition(":")
        state: Any = redis.Redis(host=host, port=int(port)).sentinel_master("repid")
        assert state["down-after-milliseconds"] == 5000
        assert state["num-other-sentinels"] == 2 and state["num-slaves"] == 1


async def test_rabbitmq_cluster_shape(rabbitmq_cluster: RunningCluster) -> None:
    assert len(rabbitmq_cluster.urls) == 3
    queue = f"infra-{uuid.uuid4().hex[:8]}"
    for url in rabbitmq_cluster.urls:  # every node answers on its own port
        async with AmqpServer(url).connection():
            pass
    server = AmqpServer(rabbitmq_cluster.urls)
    async with server.connection():
        path = f"/queues/{quote(queue, safe='')}"
        status, _ = await server.management_request("PUT", path, {"durable": True, "arguments": {}})
        assert status in (200, 201)
        try:
            _, info = await server.management_request("GET", path)
            assert info["type"] == "quorum"  # default_queue_type = quorum
            replicas = info["replicas"]  # an AMQP array (the management node speaks AMQP)
            assert len(replicas.items if isinstance(replicas, Array) else replicas) == 3
        finally:
            await server.management_request("DELETE", path)
