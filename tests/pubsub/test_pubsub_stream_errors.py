"""Stream failures the emulator cannot produce on demand, from a scripted gRPC server.

The emulator never fails a StreamingPull with INTERNAL or DEADLINE_EXCEEDED, so this real
gRPC server (speaking the same wire format through the codec) fails the first streams with
those codes, then serves messages. It also shows what the client sends: the first
StreamingPullRequest's fields and the routing header on every call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.pubsub import PubsubServer
from repid.connections.pubsub import _proto as p

SUBSCRIPTION = "projects/scripted/subscriptions/jobs"
FAILURES = [
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
]


class ScriptedPubsub:
    """Fails the first streams with `failures`, serves two messages on the next, idles after."""

    def __init__(self, failures: list[grpc.StatusCode]) -> None:
        self.failures = failures
        self.half_closed = 0
        self.first_requests: list[p.StreamingPullRequest] = []
        self.stream_metadata: list[dict[str, str]] = []
        self.acked: list[str] = []
        self.ack_metadata: list[dict[str, str]] = []
        self.port = 0
        self._server: grpc.aio.Server | None = None

    async def streaming_pull(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        first = p.decode_streaming_pull_request(await requests.__anext__())
        attempt = len(self.first_requests)
        self.first_requests.append(first)
        self.stream_metadata.append(dict(context.invocation_metadata() or ()))
        if attempt < len(self.failures):
            await context.abort(self.failures[attempt], f"scripted failure {attempt}")
        if attempt == len(self.failures):
            yield p.encode_streaming_pull_response(
                [
                    p.ReceivedMessage(
                        ack_id=f"ack-{i}",
                        message=p.PubsubMessage(
                            data=b"m%d" % i,
                            attributes={"content-type": "text/plain"},
                            message_id=str(i),
                        ),
                        delivery_attempt=0,
                    )
                    for i in range(2)
                ]
            )
        async for _ in requests:  # heartbeats, until the client half-closes
            pass
        self.half_closed += 1

    async def acknowledge(
        self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        self.acked += p.decode_acknowledge_request(request).ack_ids
        self.ack_metadata.append(dict(context.invocation_metadata() or ()))
        return b""

    async def start(self) -> None:
        self._server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Subscriber",
            {
                "StreamingPull": grpc.stream_stream_rpc_method_handler(self.streaming_pull),
                "Acknowledge": grpc.unary_unary_rpc_method_handler(self.acknowledge),
            },
        )
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=1)


@pytest.fixture
async def scripted(request: pytest.FixtureRequest) -> AsyncIterator[ScriptedPubsub]:
    server = ScriptedPubsub(getattr(request, "param", FAILURES))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_internal_deadline_and_unavailable_streams_are_reopened(
    scripted: ScriptedPubsub, caplog: pytest.LogCaptureFixture
) -> None:
    server = PubsubServer(
        "scripted",
        emulator_host=f"127.0.0.1:{scripted.port}",
        ack_deadline=10,
        initial_backoff=0.05,
        max_backoff=0.2,
        pull_streams=1,
    )
    capacity = DeliveryCapacity(7)
    received: list[ReceivedMessageT] = []
    done = asyncio.Event()

    async def callback(message: ReceivedMessageT) -> None:
        received.append(message)
        await message.ack()
        if len(received) == 2:
            done.set()

    caplog.set_level(logging.WARNING, logger="repid.connections.pubsub")
    async with server.connection():
        subscriber = await server.subscribe(
            channels_to_callbacks={"jobs": callback}, capacity=capacity
        )
        await asyncio.wait_for(done.wait(), 15)
        await subscriber.close()

    assert [m.payload for m in received] == [b"m0", b"m1"]
    assert [m.content_type for m in received] == ["text/plain", "text/plain"]
    assert scripted.acked == ["ack-0", "ack-1"]
    # One failed stream per scripted code, then the one that delivered.
    assert len(scripted.first_requests) == len(FAILURES) + 1
    codes = [
        r.__dict__.get("code")
        for r in caplog.records
        if r.getMessage().startswith("pubsub.stream_lost")
    ]
    assert codes == [code.name for code in FAILURES]
    for first in scripted.first_requests:
        assert first.subscription == SUBSCRIPTION
        assert first.stream_ack_deadline_seconds == 10
        assert first.max_outstanding_messages == 7  # the worker's task slots
    # The same client id on every reopened stream, as Pub/Sub asks.
    assert len({r.client_id for r in scripted.first_requests}) == 1
    routing = "subscription=projects%2Fscripted%2Fsubscriptions%2Fjobs"
    assert all(m.get("x-goog-request-params") == routing for m in scripted.stream_metadata)
    assert all(m.get("x-goog-request-params") == routing for m in scripted.ack_metadata)


@pytest.mark.parametrize("scripted", [[]], indirect=True)
async def test_streams_share_the_slots_and_each_keeps_its_client_id(
    scripted: ScriptedPubsub,
) -> None:
    server = PubsubServer(
        "scripted", emulator_host=f"127.0.0.1:{scripted.port}", ack_deadline=10, pull_streams=3
    )
    received: list[ReceivedMessageT] = []
    done = asyncio.Event()

    async def callback(message: ReceivedMessageT) -> None:
        received.append(message)
        await message.ack()
        if len(received) == 2:
            done.set()

    async with server.connection():
        subscriber = await server.subscribe(
            channels_to_callbacks={"jobs": callback}, capacity=DeliveryCapacity(7)
        )
        await asyncio.wait_for(done.wait(), 15)
        await subscriber.close()
        # close() half-closed every stream and waited for the server to end it.
        assert scripted.half_closed == 3

    assert [m.payload for m in received] == [b"m0", b"m1"]
    assert scripted.acked == ["ack-0", "ack-1"]
    # Three streams whose max_outstanding_messages add up to the worker's 7 slots.
    assert len(scripted.first_requests) == 3
    assert sorted(r.max_outstanding_messages for r in scripted.first_requests) == [2, 2, 3]
    assert len({r.client_id for r in scripted.first_requests}) == 3


@pytest.mark.parametrize("scripted", [[]], indirect=True)
async def test_no_more_streams_than_slots(scripted: ScriptedPubsub) -> None:
    server = PubsubServer("scripted", emulator_host=f"127.0.0.1:{scripted.port}", pull_streams=4)

    async def callback(message: ReceivedMessageT) -> None:
        await message.ack()

    async with server.connection():
        subscriber = await server.subscribe(
            channels_to_callbacks={"jobs": callback}, capacity=DeliveryCapacity(1)
        )
        await asyncio.sleep(0.5)
        await subscriber.close()
    assert [r.max_outstanding_messages for r in scripted.first_requests] == [1]
