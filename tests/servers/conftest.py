"""One message-layer suite over every server: each broker plugs in through a `BrokerKit`.

A kit makes a server, provisions channels the way that broker needs (Redis and the in-memory
broker need nothing; RabbitMQ needs a quorum queue with a dead-letter queue; Pub/Sub needs a
topic and a subscription of the same name) and counts dead letters where the broker keeps them.

`sqlite` is not a built-in server: it is the worked example of the "Write your own server"
page (examples/sqlite_server.py), held to the same contract.

The cluster kits (`redis-cluster`: three masters and three replicas, found from one node's URL;
`redis-sentinel`: the master found through three sentinels; `amqp-cluster`: three RabbitMQ
nodes given as a list of URLs) are marked `cluster`: they run with `--clusters`, which starts
the clusters on first use (tests/clusters).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from repid import InMemoryServer, Repid, ServerT
from tests import brokers

KitFactory = Callable[..., Awaitable["BrokerKit"]]


@dataclass
class BrokerKit:
    name: str
    server: ServerT
    provision: Callable[[str], Awaitable[None]]
    dead_letters: Callable[[str], Awaitable[int | None]]
    # Pub/Sub's nack is a redelivery request (ack deadline 0); it dead-letters only through a
    # subscription policy after several attempts.
    nack_redelivers: bool = False
    cleanup: list[Callable[[], Any]] = field(default_factory=list)
    # The reason stored with the first dead letter of a channel (None: the broker keeps none).
    dead_reason: Callable[[str], Awaitable[str | None]] | None = None
    # Another server of the same kind on the same broker (a second worker process's).
    another: Callable[..., ServerT] | None = None
    # Variables a subprocess needs to make the same server (python_version_driver.py).
    env: dict[str, str] = field(default_factory=dict)
    # Run while the server is still connected.
    async_cleanup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def channel(self, prefix: str = "c") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        await self.provision(name)
        return name

    def app(self) -> Repid:
        app = Repid(title=f"contract-{self.name}")
        app.servers.register_server(self.name, self.server, is_default=True)
        return app


async def _memory_kit(**options: Any) -> BrokerKit:
    server = InMemoryServer(**options)

    async def provision(channel: str) -> None:
        return None

    async def dead(channel: str) -> int | None:
        return len(server.dead_letters.get(channel, []))

    async def reason(channel: str) -> str | None:
        return server.dead_letters[channel][0].dead_reason

    # One process, one in-memory broker: a "second worker" shares the server.
    return BrokerKit(
        "memory", server, provision, dead, dead_reason=reason, another=lambda **_: server
    )


async def _redis_kit(*, url: str | None = None, name: str = "redis", **options: Any) -> BrokerKit:
    url = url or brokers.redis_url()
    from repid.connections.redis import RedisServer

    options.setdefault("claim_idle", 5.0)
    server = RedisServer(url, **options)

    async def provision(channel: str) -> None:
        return None

    async def dead(channel: str) -> int | None:
        return len(await server.read_dead_letters(channel))

    async def reason(channel: str) -> str | None:
        return (await server.read_dead_letters(channel))[0].reason

    return BrokerKit(
        name,
        server,
        provision,
        dead,
        dead_reason=reason,
        another=lambda **more: RedisServer(url, **{**options, **more}),
    )


async def _amqp_kit(**options: Any) -> BrokerKit:
    url = brokers.amqp_url()
    from repid.connections.amqp import AmqpServer

    server = AmqpServer(url, **options)
    made: list[str] = []

    async def provision(channel: str) -> None:
        brokers.rabbitmq_declare_queue(f"{channel}.dead", {"x-queue-type": "quorum"})
        brokers.rabbitmq_declare_queue(
            channel,
            {
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": f"{channel}.dead",
            },
        )
        made.extend([channel, f"{channel}.dead"])

    async def dead(channel: str) -> int | None:
        return brokers.rabbitmq_wait_message_count(f"{channel}.dead", 1, timeout=5.0)

    async def reason(channel: str) -> str | None:
        (letter,) = brokers.rabbitmq_get_messages(f"{channel}.dead", 1)
        headers = letter["properties"].get("headers") or {}
        return headers.get("x-opt-repid-dead-letter-reason")

    kit = BrokerKit(
        "amqp",
        server,
        provision,
        dead,
        dead_reason=reason,
        another=lambda **more: AmqpServer(url, **{**options, **more}),
    )
    kit.cleanup.append(lambda: [brokers.rabbitmq_delete_queue(q) for q in made])
    return kit


async def _amqp_cluster_kit(urls: list[str], **options: Any) -> BrokerKit:
    """Queues are declared through the server's own management link (any node will do),
    quorum queues replicated on all three nodes."""
    from urllib.parse import quote

    from repid.connections.amqp import AmqpServer

    server = AmqpServer(urls, **options)
    made: list[str] = []

    async def declare(name: str, arguments: dict[str, Any]) -> None:
        status, body = await server.management_request(
            "PUT", f"/queues/{quote(name, safe='')}", {"durable": True, "arguments": arguments}
        )
        assert status in (200, 201, 204), (status, body)
        made.append(name)

    async def provision(channel: str) -> None:
        await declare(f"{channel}.dead", {"x-queue-type": "quorum"})
        await declare(
            channel,
            {
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": f"{channel}.dead",
            },
        )

    async def dead(channel: str) -> int | None:
        # Dead-lettering happens after the settlement: poll (like the single node's kit).
        deadline = asyncio.get_running_loop().time() + 5.0
        while True:
            count = (await server.channel_stats(channel)).dead_letters
            if count or asyncio.get_running_loop().time() > deadline:
                return count
            await asyncio.sleep(0.1)

    async def reason(channel: str) -> str | None:
        (letter,) = await server.read_dead_letters(channel, limit=1)
        return letter.reason

    kit = BrokerKit(
        "amqp-cluster",
        server,
        provision,
        dead,
        dead_reason=reason,
        another=lambda **more: AmqpServer(urls, **{**options, **more}),
    )

    async def drop() -> None:
        for name in made:
            await server.management_request("DELETE", f"/queues/{quote(name, safe='')}")

    kit.async_cleanup.append(drop)
    return kit


async def _pubsub_kit(**options: Any) -> BrokerKit:
    host = brokers.pubsub_host()
    project = brokers.pubsub_project()
    from repid.connections.pubsub import PubsubServer

    server = PubsubServer(project=project, emulator_host=host, **options)

    async def provision(channel: str) -> None:
        brokers.pubsub_create_topic(project, channel)
        brokers.pubsub_create_subscription(project, channel, channel, ack_deadline_seconds=10)

    async def dead(channel: str) -> int | None:
        return None

    return BrokerKit(
        "pubsub",
        server,
        provision,
        dead,
        nack_redelivers=True,
        another=lambda **more: PubsubServer(
            project=project, emulator_host=host, **{**options, **more}
        ),
    )


async def _sqlite_kit(**options: Any) -> BrokerKit:
    from examples.sqlite_server import SqliteServer

    folder = tempfile.mkdtemp(prefix="repid-sqlite-")
    path = f"{folder}/queue.db"
    server = SqliteServer(path, **options)

    async def provision(channel: str) -> None:
        return None

    async def dead(channel: str) -> int | None:
        return len(await server.read_dead_letters(channel))

    async def reason(channel: str) -> str | None:
        return (await server.read_dead_letters(channel))[0].reason

    kit = BrokerKit(
        "sqlite",
        server,
        provision,
        dead,
        dead_reason=reason,
        another=lambda **more: SqliteServer(path, **{**options, **more}),
        env={"REPID_TEST_SQLITE_PATH": path},
    )
    kit.cleanup.append(lambda: shutil.rmtree(folder, ignore_errors=True))
    return kit


KITS = {
    "memory": _memory_kit,
    "redis": _redis_kit,
    "amqp": _amqp_kit,
    "pubsub": _pubsub_kit,
    "sqlite": _sqlite_kit,
}


CLUSTER_KITS = ["redis-cluster", "redis-sentinel", "amqp-cluster"]


async def _make_kit(request: pytest.FixtureRequest, name: str, **options: Any) -> BrokerKit:
    if name == "redis-cluster":
        url = request.getfixturevalue("redis_cluster").url
        return await _redis_kit(url=url, name=name, **options)
    if name == "redis-sentinel":
        url = request.getfixturevalue("redis_sentinel").url
        return await _redis_kit(url=url, name=name, **options)
    if name == "amqp-cluster":
        return await _amqp_cluster_kit(request.getfixturevalue("rabbitmq_cluster").urls, **options)
    return await KITS[name](**options)


@pytest.fixture(
    params=[*KITS, *(pytest.param(name, marks=pytest.mark.cluster) for name in CLUSTER_KITS)]
)
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[BrokerKit]:
    made = await _make_kit(request, request.param)
    async with made.server.connection():
        yield made
        for step in made.async_cleanup:
            try:
                await step()
            except Exception:
                pass
    _clean(made)


@pytest.fixture(params=list(KITS))
async def kit_with(request: pytest.FixtureRequest) -> AsyncIterator[KitFactory]:
    """`await kit_with(**server_options)`: a connected kit whose server takes those options."""
    made: list[BrokerKit] = []

    async def factory(**options: Any) -> BrokerKit:
        new = await KITS[request.param](**options)
        await new.server.connect()
        made.append(new)
        return new

    yield factory
    for new in made:
        await new.server.disconnect()
        _clean(new)


def _clean(kit: BrokerKit) -> None:
    for step in kit.cleanup:
        try:
            step()
        except Exception:
            pass
