"""Concurrent senders and batches on every broker (issue 18).

Concurrent `send_message` calls share round trips (pipelined commands, coalesced requests,
unsettled transfers in flight together); these tests check what must survive that: each
caller's messages arrive in the order it sent them, and a message the broker refuses fails
exactly the call that sent it, never a neighbour in the same round trip. The same for
`send_messages_json` with its per-message results.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from repid import OutgoingMessage, Router
from repid.errors import BatchSendError
from tests import brokers
from tests.core.helpers import run_until

from .conftest import BrokerKit

CALLERS = 20
PER_CALLER = 25


async def _consume_in_order(kit: BrokerKit, channels: list[str], count: int) -> list[tuple]:
    """Deliveries (channel, caller, seq) in the order the actor started them (one at a time)."""
    app = kit.app()
    router = Router()
    seen: list[tuple] = []

    def recorder(channel: str) -> None:
        @router.actor(channel=channel, name=f"record_{channel}")
        async def record(caller: int, seq: int) -> None:
            seen.append((channel, caller, seq))

    for channel in channels:
        recorder(channel)

    app.include_router(router)
    await run_until(app, lambda: len(seen) >= count, timeout=60, tasks_limit=1)
    return seen


async def test_concurrent_senders_keep_their_own_order(kit: BrokerKit) -> None:
    if kit.name == "pubsub":
        pytest.skip("Pub/Sub delivers in publish order only with ordering keys")
    app = kit.app()
    channel = await kit.channel("order")

    async def caller(number: int) -> None:
        for seq in range(PER_CALLER):
            await app.send_message_json(
                channel=channel,
                payload={"caller": number, "seq": seq},
                headers={"topic": f"record_{channel}"},
            )

    await asyncio.gather(*(caller(number) for number in range(CALLERS)))
    seen = await _consume_in_order(kit, [channel], CALLERS * PER_CALLER)
    for number in range(CALLERS):
        assert [seq for _, who, seq in seen if who == number] == list(range(PER_CALLER))
    assert len(seen) == CALLERS * PER_CALLER


async def test_batch_keeps_order_per_channel(kit: BrokerKit) -> None:
    if kit.name == "pubsub":
        pytest.skip("Pub/Sub delivers in publish order only with ordering keys")
    app = kit.app()
    first, second = await kit.channel("batch-a"), await kit.channel("batch-b")
    messages = [
        OutgoingMessage(
            channel=channel,
            payload={"caller": index, "seq": seq},
            headers={"topic": f"record_{channel}"},
        )
        for seq in range(60)
        for index, channel in enumerate((first, second))
    ]
    results = await app.send_messages_json(messages)
    results.raise_on_error()
    assert [r.channel for r in results] == [m.channel for m in messages]
    assert all(r.message_id for r in results)  # every built-in server gives ids
    seen = await _consume_in_order(kit, [first, second], len(messages))
    for channel in (first, second):
        assert [seq for c, _, seq in seen if c == channel] == list(range(60))


# -- a refused message fails its own caller only ------------------------------------------


async def _refusing_target(kit: BrokerKit) -> tuple[str, dict | None, str]:
    """A (channel, server_specific_parameters) the broker refuses, with a normal neighbour.

    Redis: the channel's stream key holds a string (WRONGTYPE). RabbitMQ: a queue with
    max-length 0 and overflow reject-publish. Pub/Sub: the same topic, with a message over
    Pub/Sub's 10 MB limit. In-memory: a priority that is not an int (refused before it is
    queued).
    """
    name = f"refuse-{uuid.uuid4().hex[:10]}"
    if kit.name == "redis":
        import redis.asyncio as aioredis

        raw = aioredis.Redis.from_url(brokers.redis_url())
        key = kit.server.stream_key(name)  # type: ignore[attr-defined]
        await raw.set(key, "not a stream")
        await raw.aclose()
        return name, None, ""
    if kit.name == "amqp":
        brokers.rabbitmq_declare_queue(
            name, {"x-queue-type": "classic", "x-max-length": 0, "x-overflow": "reject-publish"}
        )
        kit.cleanup.append(lambda: brokers.rabbitmq_delete_queue(name))
        return name, None, ""
    if kit.name == "pubsub":
        return await kit.channel("refuse"), None, "x" * (11 * 1024 * 1024)
    return await kit.channel("refuse"), {"priority": "high"}, ""


async def _count(kit: BrokerKit, channel: str, expected: int) -> int:
    app = kit.app()
    router = Router()
    seen: list[int] = []

    @router.actor(channel=channel, name="count")
    async def count(caller: int, seq: int) -> None:
        seen.append(caller)

    app.include_router(router)
    await run_until(app, lambda: len(seen) >= expected, timeout=60)
    await asyncio.sleep(0.2)  # a stray extra delivery would show here
    return len(seen)


async def test_a_refused_publish_fails_only_its_caller(kit: BrokerKit) -> None:
    app = kit.app()
    good = await kit.channel("good")
    bad, parameters, pad = await _refusing_target(kit)
    outcomes: dict[int, BaseException | None] = {}

    async def caller(number: int) -> None:
        refused = number == CALLERS // 2
        try:
            for seq in range(5):
                this = refused and seq == 2
                await app.send_message_json(
                    channel=bad if this else good,
                    payload={"caller": number, "seq": seq, **({"pad": pad} if this else {})},
                    headers={"topic": "count"},
                    server_specific_parameters=parameters if this else None,
                )
        except Exception as exc:
            outcomes[number] = exc
        else:
            outcomes[number] = None

    await asyncio.gather(*(caller(number) for number in range(CALLERS)))
    failed = {number: exc for number, exc in outcomes.items() if exc is not None}
    assert list(failed) == [CALLERS // 2], failed
    # The refused caller stopped at its third message; everyone else sent all five.
    expected = (CALLERS - 1) * 5 + 2
    assert await _count(kit, good, expected) == expected


async def test_batch_reports_each_refused_message(kit: BrokerKit) -> None:
    app = kit.app()
    good = await kit.channel("good")
    bad, parameters, pad = await _refusing_target(kit)
    messages = [
        OutgoingMessage(
            channel=bad if seq in (3, 7) else good,
            payload={"caller": 0, "seq": seq, **({"pad": pad} if seq in (3, 7) else {})},
            headers={"topic": "count"},
            server_specific_parameters=parameters if seq in (3, 7) else None,
        )
        for seq in range(10)
    ]
    results = await app.send_messages_json(messages)
    assert [index for index, _ in results.failures] == [3, 7]
    assert all(r.ok and r.message_id for i, r in enumerate(results) if i not in (3, 7))
    with pytest.raises(BatchSendError) as raised:
        results.raise_on_error()
    assert raised.value.__cause__ is results[3].error
    assert await _count(kit, good, 8) == 8
