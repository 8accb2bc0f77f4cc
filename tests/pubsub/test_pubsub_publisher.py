"""Publish coalescing: concurrent publishes share PublishRequests, order and errors are kept."""

from __future__ import annotations

import asyncio

import pytest
from pubsub_helpers import acknowledge, create_pair, pull

from repid.connections.pubsub import PubsubServer
from repid.connections.pubsub._publisher import MAX_BATCH_BYTES, PublishCoalescer


class Recorder:
    """A stand-in for the Publish RPC that records each request's messages."""

    def __init__(self, fail_first: bool = False) -> None:
        self.requests: list[tuple[str, list[bytes], float]] = []
        self.fail_first = fail_first

    async def __call__(self, topic: str, messages: list[bytes], timeout: float) -> list[str]:
        self.requests.append((topic, messages, timeout))
        await asyncio.sleep(0.01)  # a round trip, during which more publishes queue up
        if self.fail_first and len(self.requests) == 1:
            raise ConnectionError("broker gone")
        return [f"id-{m.decode()}" for m in messages]

    async def in_flight(self, count: int = 1) -> None:
        """Until `count` requests went out (a lone call yields once before it sends)."""
        while len(self.requests) < count:
            await asyncio.sleep(0)


async def test_lone_publish_is_sent_at_once_and_concurrent_ones_share_requests() -> None:
    send = Recorder()
    coalescer = PublishCoalescer(send)
    assert await coalescer.publish("t", b"0", 5.0) == "id-0"
    assert [len(r[1]) for r in send.requests] == [1]
    ids = await asyncio.gather(*(coalescer.publish("t", b"%d" % i, 5.0) for i in range(1, 2501)))
    assert ids == [f"id-{i}" for i in range(1, 2501)]
    sizes = [len(r[1]) for r in send.requests[1:]]
    # Called together, they go together from the first request on (the first caller yields
    # once before sending, and the others queue behind it), at most 1,000 per request.
    assert sizes == [1000, 1000, 500]
    assert b"".join(b for r in send.requests for b in r[1]) == b"".join(
        b"%d" % i for i in range(2501)
    )


async def test_groups_by_topic_and_timeout() -> None:
    send = Recorder()
    coalescer = PublishCoalescer(send)
    first = asyncio.create_task(coalescer.publish("a", b"1", 5.0))
    await send.in_flight()  # the request for "a" is now in flight
    await asyncio.gather(
        first,
        coalescer.publish("b", b"2", 5.0),
        coalescer.publish("a", b"3", 1.0),
        coalescer.publish("a", b"4", 5.0),
        coalescer.publish("a", b"5", 5.0),
    )
    groups = sorted((t, timeout, tuple(m)) for t, m, timeout in send.requests)
    assert groups == [
        ("a", 1.0, (b"3",)),
        ("a", 5.0, (b"1",)),
        ("a", 5.0, (b"4", b"5")),  # queued behind the in-flight request, sent together
        ("b", 5.0, (b"2",)),
    ]


async def test_a_failed_request_fails_its_publishes_only() -> None:
    send = Recorder(fail_first=True)
    coalescer = PublishCoalescer(send)
    first = asyncio.create_task(coalescer.publish("t", b"0", 5.0))
    await send.in_flight()  # the first request (which fails) is in flight
    results = await asyncio.gather(
        first, *(coalescer.publish("t", b"%d" % i, 5.0) for i in (1, 2)), return_exceptions=True
    )
    assert isinstance(results[0], ConnectionError)
    assert results[1:] == ["id-1", "id-2"]


async def test_a_cancelled_lone_publish_hands_the_queue_on() -> None:
    send = Recorder()
    coalescer = PublishCoalescer(send)
    lone = asyncio.create_task(coalescer.publish("t", b"0", 5.0))
    await send.in_flight()  # its request is in flight, sent from its own task
    queued = [asyncio.create_task(coalescer.publish("t", b"%d" % i, 5.0)) for i in (1, 2)]
    await asyncio.sleep(0)
    lone.cancel()
    assert await asyncio.gather(*queued) == ["id-1", "id-2"]
    assert [m for _, m, _ in send.requests] == [[b"0"], [b"1", b"2"]]
    assert all(group.idle for group in coalescer._groups.values())  # nothing left behind


async def test_requests_stay_under_the_size_limit() -> None:
    send = Recorder()
    coalescer = PublishCoalescer(send)
    big = b"x" * (3 * 1024 * 1024)
    await asyncio.gather(*(coalescer.publish("t", big, 5.0) for _ in range(7)))
    assert all(sum(len(m) for m in r[1]) <= MAX_BATCH_BYTES for r in send.requests)
    assert sum(len(r[1]) for r in send.requests) == 7


@pytest.mark.pubsub
async def test_concurrent_publishes_with_an_ordering_key_arrive_in_order(host: str) -> None:
    name = create_pair(host, ordering=True)
    server = PubsubServer("repid-test", emulator_host=host)
    async with server.connection():
        ids = await asyncio.gather(
            *(
                server.publish_raw(
                    channel=name,
                    payload=b"%03d" % i,
                    headers=None,
                    content_type=None,
                    server_specific_parameters={"ordering_key": "k"},
                )
                for i in range(300)
            )
        )
    assert len(set(ids)) == 300
    received: list[bytes] = []
    while len(received) < 300:
        batch = pull(host, name, max_messages=100)
        assert batch, "messages missing"
        received += [_b64(m) for m in batch]
        # Ordered delivery holds back a key's later messages until the earlier ones are acked.
        acknowledge(host, name, [str(m["ackId"]) for m in batch])
    assert received == [b"%03d" % i for i in range(300)]


def _b64(received: dict[str, object]) -> bytes:
    import base64

    message = received["message"]
    assert isinstance(message, dict)
    return base64.b64decode(message["data"])
