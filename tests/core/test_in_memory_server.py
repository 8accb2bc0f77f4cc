"""Point 13: InMemoryServer outcomes and parameters."""

import asyncio

import pytest

from repid import DeliveryCapacity, InMemoryServer, MessageData, ServerNotConnectedError


async def deliver(server: InMemoryServer, channel: str, count: int, capacity: int = 100):
    got = []
    cap = DeliveryCapacity(capacity)

    async def callback(message):
        cap.acquire()
        got.append(message)

    sub = await server.subscribe(channels_to_callbacks={channel: callback}, capacity=cap)
    for _ in range(100):
        if len(got) >= count:
            break
        await asyncio.sleep(0.005)
    return sub, got, cap


async def test_ack_removes_reject_requeues_nack_dead_letters() -> None:
    server = InMemoryServer()
    async with server.connection():
        for i in range(3):
            await server.publish(channel="q", message=MessageData(str(i).encode()))
        sub, got, _ = await deliver(server, "q", 3)
        await sub.pause()
        a, r, n = got
        await a.ack()
        await r.reject()
        await n.nack()
        assert [m.payload for m in server.queued("q")] == [b"1"]
        assert [m.payload for m in server.dead_letters["q"]] == [b"2"]
        assert server.requeue_dead_letters("q") == 1
        assert [m.payload for m in server.queued("q")] == [b"1", b"2"]
        await sub.close()


async def test_message_id_parameter_and_generated_ids() -> None:
    server = InMemoryServer()
    async with server.connection():
        await server.publish(
            channel="q",
            message=MessageData(b""),
            server_specific_parameters={"message_id": "explicit"},
        )
        await server.publish(channel="q", message=MessageData(b""))
        first, second = server.queued("q")
        assert first.message_id == "explicit"
        assert len(second.message_id) == 32
        with pytest.raises(TypeError, match="message_id"):
            await server.publish(
                channel="q", message=MessageData(b""), server_specific_parameters={"message_id": 1}
            )


async def test_capacity_bounds_deliveries_and_close_requeues_unsettled() -> None:
    server = InMemoryServer()
    async with server.connection():
        for i in range(5):
            await server.publish(channel="q", message=MessageData(str(i).encode()))
        sub, got, cap = await deliver(server, "q", 2, capacity=2)
        await asyncio.sleep(0.02)
        assert len(got) == 2  # full: no more deliveries
        await got[0].ack()
        cap.release()
        await asyncio.sleep(0.02)
        assert len(got) == 3
        await sub.close()
        # Two delivered but unsettled messages went back, at the head.
        assert [m.payload for m in server.queued("q")] == [b"1", b"2", b"3", b"4"]


async def test_publish_and_subscribe_need_a_connection() -> None:
    server = InMemoryServer()
    with pytest.raises(ServerNotConnectedError):
        await server.publish(channel="q", message=MessageData(b""))
    with pytest.raises(ServerNotConnectedError):
        await server.subscribe(channels_to_callbacks={}, capacity=DeliveryCapacity(1))
