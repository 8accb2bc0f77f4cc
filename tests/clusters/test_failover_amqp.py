"""Kill the RabbitMQ node a worker is connected to mid-run (three nodes, a quorum queue).

The worker and the producer get the three URLs in the same order, so both are on node 1, and
the quorum queue is declared through node 1, so its leader is there too: the kill takes the
worker's connection, the producer's connection and the queue's leader at once. The worker
must reconnect to another node and re-attach its link, the producer must send again what was
not confirmed, and the queue elects a new leader from its two other replicas. Quorum queues
confirm a message once a majority of replicas has it, so nothing confirmed may be lost.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from urllib.parse import quote

import pytest

from repid import Repid, Router
from repid.connections.amqp import AmqpServer
from repid.data import MessageData
from tests.clusters import RunningCluster
from tests.core.helpers import run_until

from .failover import Tally, produce, wait_until

pytestmark = pytest.mark.cluster

COUNT = 600
RATE = 60.0


async def test_rabbitmq_kill_the_node_the_worker_is_connected_to(
    rabbitmq_cluster: RunningCluster,
) -> None:
    urls = rabbitmq_cluster.urls
    queue = f"failover-{uuid.uuid4().hex[:8]}"
    producer = AmqpServer(urls)
    worker_server = AmqpServer(urls)
    tally = Tally()
    app = Repid(title="failover worker")
    app.servers.register_server("cluster", worker_server, is_default=True)
    router = Router()

    @router.actor(channel=queue, name="count")
    async def count(n: int) -> None:
        tally.seen(n)

    app.include_router(router)

    async def publish(n: int) -> None:
        payload = json.dumps({"n": n}).encode()
        await producer.publish(
            channel=queue, message=MessageData(payload, {"topic": "count"}, "application/json")
        )

    try:
        await producer.connect()
        status, body = await producer.management_request(
            "PUT",
            f"/queues/{quote(queue, safe='')}",
            {"durable": True, "arguments": {"x-queue-type": "quorum"}},
        )
        assert status in (200, 201), (status, body)
        assert producer.connected_url == urls[0].replace("guest:guest", "guest:***")
        await worker_server.connect()
        feeding = asyncio.create_task(produce(tally, publish, COUNT, RATE))
        work = asyncio.create_task(
            run_until(
                app,
                lambda: feeding.done() and tally.all_confirmed_arrived(),
                timeout=120,
            )
        )
        await wait_until(lambda: len(tally.processed) >= COUNT // 4, 30, "a quarter processed")
        await asyncio.to_thread(rabbitmq_cluster.kill, 1)
        killed = time.monotonic()
        tally.killed_at = killed
        await asyncio.wait_for(feeding, 90)
        try:
            await asyncio.wait_for(asyncio.shield(work), 60)
        except asyncio.TimeoutError:
            work.cancel()
        report = tally.report("rabbitmq-cluster quorum queue")
        moved_to = worker_server.connected_url
    finally:
        try:
            if producer.is_connected:
                await producer.management_request("DELETE", f"/queues/{quote(queue, safe='')}")
        finally:
            await producer.disconnect()
            await worker_server.disconnect()
            await asyncio.to_thread(rabbitmq_cluster.revive)

    assert moved_to is not None and moved_to != urls[0].replace("guest:guest", "guest:***")
    assert report.lost == 0, report
    assert report.resume_s is not None and report.resume_s <= 15.0, report
