"""Interoperability with an independent AMQP 1.0 client (python-qpid-proton) through RabbitMQ 4."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.amqp import AmqpMessageProperties, AmqpServer
from repid.data import MessageData
from tests import brokers

proton = pytest.importorskip("proton")
proton_utils = pytest.importorskip("proton.utils")

pytestmark = pytest.mark.amqp


@pytest.fixture
def queue() -> Iterator[str]:
    brokers.amqp_url()
    name = f"interop-{uuid.uuid4().hex[:10]}"
    brokers.rabbitmq_declare_queue(name, arguments={"x-queue-type": "quorum"})
    yield name
    brokers.rabbitmq_delete_queue(name)


def _proton_connection() -> Any:
    url = brokers.amqp_url().rstrip("/")
    return proton_utils.BlockingConnection(
        url, timeout=10, allowed_mechs="PLAIN", allow_insecure_mechs=True
    )


def proton_send(queue: str, messages: list[Any]) -> None:
    conn = _proton_connection()
    try:
        sender = conn.create_sender(f"/queues/{queue}")
        for message in messages:
            sender.send(message)
    finally:
        conn.close()


def proton_receive(queue: str, count: int) -> list[Any]:
    conn = _proton_connection()
    try:
        receiver = conn.create_receiver(f"/queues/{queue}", credit=count)
        received = []
        for _ in range(count):
            received.append(receiver.receive(timeout=10))
            receiver.accept()
        return received
    finally:
        conn.close()


async def consume(server: AmqpServer, queue: str, count: int) -> list[ReceivedMessageT]:
    capacity = DeliveryCapacity(count)
    got: list[ReceivedMessageT] = []
    done = asyncio.Event()

    async def callback(message: ReceivedMessageT) -> None:
        capacity.acquire()
        got.append(message)
        if len(got) == count:
            done.set()

    subscriber = await server.subscribe(channels_to_callbacks={queue: callback}, capacity=capacity)
    await asyncio.wait_for(done.wait(), 10)
    for message in got:
        await message.ack()
    await subscriber.close()
    return got


async def test_what_proton_sends_arrives_intact(queue: str) -> None:
    data_body = proton.Message(
        body=b"\x00binary\xff",
        inferred=True,  # a data section
        id="proton-1",
        reply_to="/queues/answers",
        content_type="application/octet-stream",
        properties={"topic": "from-proton", "n": 42, "flag": True},
    )
    value_body = proton.Message(
        body="a string body",  # an amqp-value section
        id=uuid.UUID(int=7),
        content_type="text/plain",
        properties={"topic": "string"},
    )
    await asyncio.to_thread(proton_send, queue, [data_body, value_body])
    server = AmqpServer(brokers.amqp_url())
    async with server.connection():
        first, second = await consume(server, queue, 2)
    assert first.payload == b"\x00binary\xff"
    assert first.headers == {"topic": "from-proton", "n": "42", "flag": "true"}
    assert first.content_type == "application/octet-stream"
    assert first.message_id == "proton-1"
    assert first.reply_to == "/queues/answers"
    assert second.payload == b"a string body"
    assert second.message_id == str(uuid.UUID(int=7))
    assert second.content_type == "text/plain"
    assert second.headers == {"topic": "string"}


async def test_what_we_send_proton_receives_intact(queue: str) -> None:
    server = AmqpServer(brokers.amqp_url())
    async with server.connection():
        await server.publish(
            channel=queue,
            message=MessageData(
                b'{"k": "v"}', {"topic": "to-proton", "x-retry": "1"}, "application/json"
            ),
            server_specific_parameters={
                "properties": AmqpMessageProperties(
                    message_id="ours-1", subject="subj", correlation_id="corr", reply_to="r"
                )
            },
        )
    (received,) = await asyncio.to_thread(proton_receive, queue, 1)
    assert bytes(received.body) == b'{"k": "v"}'
    assert received.properties == {"topic": "to-proton", "x-retry": "1"}
    assert received.content_type == "application/json"
    assert received.id == "ours-1"
    assert received.subject == "subj"
    assert received.correlation_id == "corr"
    assert received.reply_to == "r"
    assert received.durable is True
