"""The asyncio transport: URL parsing, backoff, a scripted local peer, and a real RabbitMQ 4."""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from repid.connections.amqp import transport
from repid.connections.amqp.protocol import frames as fr
from repid.connections.amqp.protocol import performatives as p
from repid.connections.amqp.protocol.errors import Condition
from repid.connections.amqp.protocol.message import (
    AmqpMessageProperties,
    Message,
    decode_message,
    encode_message,
)
from repid.connections.amqp.protocol.sasl import SaslAnonymous, SaslExternal, SaslPlain
from repid.connections.amqp.transport import (
    AmqpClient,
    AmqpConnectionLost,
    AmqpLinkError,
    backoff_delays,
    parse_amqp_url,
)
from tests import brokers
from tests.amqp.amqp_peer import frame

# ------------------------------------------------------------------ URL and backoff


def test_url_parsing() -> None:
    a = parse_amqp_url("amqp://user:p%40ss@broker:5673/my%2Fvhost")
    assert (a.host, a.port, a.tls, a.username, a.password, a.vhost) == (
        "broker",
        5673,
        False,
        "user",
        "p@ss",
        "my/vhost",
    )
    assert a.open_hostname == "vhost:my/vhost"
    assert isinstance(a.sasl(), SaslPlain)
    assert "p@ss" not in repr(a) and "p%40ss" not in repr(a)
    b = parse_amqp_url("amqps://host")
    assert (b.port, b.tls, b.vhost, b.open_hostname) == (5671, True, "/", "vhost:/")
    assert isinstance(b.sasl(), SaslAnonymous)
    assert parse_amqp_url("amqp://h/").vhost == "/"
    assert parse_amqp_url("amqp://h/%2F").vhost == "/"
    assert isinstance(parse_amqp_url("amqps://h?auth=external").sasl(), SaslExternal)
    with pytest.raises(ValueError, match="scheme"):
        parse_amqp_url("redis://h")


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    delays = backoff_delays(0.1, 2.0, rng=random.Random(7))
    values = [next(delays) for _ in range(12)]
    for n, value in enumerate(values):
        ceiling = min(2.0, 0.1 * 2**n)
        assert ceiling / 2 <= value <= ceiling
    assert len(set(values)) == len(values)  # jittered
    assert max(values) <= 2.0


# ------------------------------------------------------------------ scripted local peer

PeerScript = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def local_peer() -> AsyncIterator[Callable[[PeerScript], Awaitable[int]]]:
    servers: list[asyncio.base_events.Server] = []

    async def start(script: PeerScript) -> int:
        server = await asyncio.start_server(script, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle_ms: int | None
) -> None:
    await reader.readexactly(8)  # SASL header
    writer.write(fr.SASL_HEADER + frame(p.SaslMechanisms(["PLAIN"]), sasl=True))
    await reader.read(512)  # sasl-init
    writer.write(frame(p.SaslOutcome(code=0), sasl=True))
    await reader.read(512)  # AMQP header + open
    writer.write(fr.AMQP_HEADER + frame(p.Open(container_id="peer", idle_time_out=idle_ms)))
    await reader.read(512)  # two begins: publishing and consuming sessions
    for channel in (0, 1):
        writer.write(
            frame(
                p.Begin(
                    remote_channel=channel,
                    next_outgoing_id=0,
                    incoming_window=10,
                    outgoing_window=10,
                ),
                channel=channel,
            )
        )


async def test_silent_peer_is_dropped_after_our_idle_timeout(local_peer) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer, None)
        await reader.read()  # then say nothing at all, until the client hangs up

    port = await local_peer(script)
    lost: list[AmqpConnectionLost] = []
    client = await AmqpClient.connect(
        parse_amqp_url(f"amqp://u:p@127.0.0.1:{port}/"), idle_timeout=0.3, on_lost=lost.append
    )
    await asyncio.wait_for(client._closed, 3)
    assert not client.is_alive
    assert lost and lost[0].error is not None
    assert lost[0].error.condition == Condition.RESOURCE_LIMIT_EXCEEDED
    await client.close()


async def test_an_unanswered_attach_drops_the_connection(
    local_peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # E.g. an attach on a session whose begin the broker dropped: waiting forever would leave
    # the consumer detached for good; a lost connection is reopened and re-attached instead.
    monkeypatch.setattr(transport, "ATTACH_TIMEOUT", 0.3)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer, None)
        await reader.read()  # the attach is read and never answered

    port = await local_peer(script)
    lost: list[AmqpConnectionLost] = []
    client = await AmqpClient.connect(
        parse_amqp_url(f"amqp://u:p@127.0.0.1:{port}/"), on_lost=lost.append
    )
    with pytest.raises(AmqpConnectionLost, match="attach"):
        await asyncio.wait_for(client.attach_receiver("r", "/queues/q", lambda *_: None), 5)
    assert not client.is_alive
    assert len(lost) == 1
    await client.close()


async def test_the_socket_does_not_delay_small_writes(local_peer) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer, None)
        await reader.read()

    port = await local_peer(script)
    client = await AmqpClient.connect(parse_amqp_url(f"amqp://u:p@127.0.0.1:{port}/"))
    try:
        sock = client._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        await client.close(timeout=0.2)


async def test_heartbeats_are_sent_for_the_peer_idle_timeout(local_peer) -> None:
    heartbeats = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer, 200)  # the peer wants a frame every 200 ms
        while True:
            data = await reader.read(64)
            if not data:
                return
            if fr.EMPTY_FRAME in data:
                heartbeats.set()

    port = await local_peer(script)
    client = await AmqpClient.connect(
        parse_amqp_url(f"amqp://u:p@127.0.0.1:{port}/"), idle_timeout=None
    )
    await asyncio.wait_for(heartbeats.wait(), 3)
    await client.close(timeout=0.2)


async def test_garbage_from_the_peer_loses_the_connection(local_peer) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer, None)
        writer.write(b"\x00\x00\x00\x05garbage")
        await reader.read()

    port = await local_peer(script)
    client = await AmqpClient.connect(parse_amqp_url(f"amqp://u:p@127.0.0.1:{port}/"))
    await asyncio.wait_for(client._closed, 3)
    with pytest.raises(AmqpConnectionLost, match="framing-error"):
        await client.attach_sender("s", None)
    await client.close()


async def test_connect_to_a_closed_port_fails_fast() -> None:
    sock_server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = sock_server.sockets[0].getsockname()[1]
    sock_server.close()
    await sock_server.wait_closed()
    with pytest.raises(OSError):
        await AmqpClient.connect(parse_amqp_url(f"amqp://127.0.0.1:{port}/"), timeout=2)


# ------------------------------------------------------------------ real RabbitMQ 4


@pytest.mark.amqp
async def test_round_trip_through_rabbitmq() -> None:
    url = brokers.amqp_url()
    queue = f"transport-{uuid.uuid4().hex[:8]}"
    brokers.rabbitmq_declare_queue(queue, arguments={"x-queue-type": "quorum"})
    try:
        client = await AmqpClient.connect(parse_amqp_url(url))
        try:
            sender = await client.attach_sender("s", f"/queues/{queue}")
            for i in range(5):
                outcome = await client.send(
                    sender,
                    encode_message(
                        Message(
                            body=[b"m%d" % i], properties=AmqpMessageProperties(message_id=str(i))
                        )
                    ),
                )
                assert outcome == p.Accepted()
            received: asyncio.Queue = asyncio.Queue()
            receiver = await client.attach_receiver(
                "r", f"/queues/{queue}", lambda link, d: received.put_nowait(d)
            )
            client.flow(receiver, 5)
            bodies = []
            for _ in range(5):
                delivery = await asyncio.wait_for(received.get(), 5)
                bodies.append(decode_message(delivery.payload).data)
                assert client.settle(receiver, delivery, p.Accepted())
            assert bodies == [b"m%d" % i for i in range(5)]
            await asyncio.sleep(0.2)
            assert brokers.rabbitmq_queue_message_count(queue) == 0
        finally:
            await client.close()
    finally:
        brokers.rabbitmq_delete_queue(queue)


@pytest.mark.amqp
async def test_attach_to_a_missing_queue_is_a_link_error() -> None:
    client = await AmqpClient.connect(parse_amqp_url(brokers.amqp_url()))
    try:
        with pytest.raises(AmqpLinkError, match="not-found"):
            await client.attach_receiver("r", "/queues/does-not-exist-" + uuid.uuid4().hex, print)
        assert client.is_alive  # only the link failed
    finally:
        await client.close()


@pytest.mark.amqp
async def test_wrong_password_is_an_authentication_error_without_the_password() -> None:
    address = parse_amqp_url(brokers.amqp_url())
    bad = parse_amqp_url(f"amqp://{address.username}:wrong-Pa55@{address.host}:{address.port}/")
    with pytest.raises(AmqpConnectionLost) as info:
        await AmqpClient.connect(bad)
    assert "wrong-Pa55" not in str(info.value)
