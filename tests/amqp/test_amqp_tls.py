"""amqps://: TLS to RabbitMQ through a local TLS-terminating relay with a throwaway certificate."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.amqp import AmqpServer
from repid.connections.amqp.transport import AmqpClient, parse_amqp_url
from repid.data import MessageData
from tests import brokers

pytestmark = pytest.mark.amqp


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
async def tls_relay(certificate: tuple[Path, Path]) -> AsyncIterator[int]:
    """A TLS listener that relays plain bytes to the test RabbitMQ."""
    target = parse_amqp_url(brokers.amqp_url())
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target.host, target.port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 2)


async def test_amqps_round_trip(tls_relay: int, certificate: tuple[Path, Path]) -> None:
    queue = f"tls-{uuid.uuid4().hex[:8]}"
    brokers.rabbitmq_declare_queue(queue, arguments={"x-queue-type": "quorum"})
    user = parse_amqp_url(brokers.amqp_url())
    try:
        trust = ssl.create_default_context(cafile=str(certificate[0]))
        server = AmqpServer(
            f"amqps://{user.username}:{user.password}@127.0.0.1:{tls_relay}/", ssl_context=trust
        )
        assert server.protocol == "amqps"
        async with server.connection():
            await server.publish(channel=queue, message=MessageData(b"over tls"))
            capacity = DeliveryCapacity(1)
            got: asyncio.Queue[ReceivedMessageT] = asyncio.Queue()

            async def callback(message: ReceivedMessageT) -> None:
                capacity.acquire()
                got.put_nowait(message)

            subscriber = await server.subscribe(
                channels_to_callbacks={queue: callback}, capacity=capacity
            )
            message = await asyncio.wait_for(got.get(), 10)
            assert message.payload == b"over tls"
            await message.ack()
            await subscriber.close()
    finally:
        brokers.rabbitmq_delete_queue(queue)


async def test_untrusted_certificate_is_refused(
    tls_relay: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []
    original = AmqpClient.connect.__func__  # type: ignore[attr-defined]

    async def counting(cls: type[AmqpClient], *args: Any, **kwargs: Any) -> AmqpClient:
        attempts.append(1)
        return await original(cls, *args, **kwargs)

    monkeypatch.setattr(AmqpClient, "connect", classmethod(counting))
    server = AmqpServer(f"amqps://guest:guest@127.0.0.1:{tls_relay}/", connect_timeout=30.0)
    with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED|certificate"):
        await server.connect()
    assert len(attempts) == 1  # a certificate failure is not retried
