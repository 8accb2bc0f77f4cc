"""The message layer over every broker: the same tests, parametrised by `kit`."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated

from repid import Header, Message, Router
from tests.core.helpers import run_for, run_until

from .conftest import BrokerKit


async def test_round_trip_payload_headers_content_type(kit: BrokerKit) -> None:
    app = kit.app()
    channel = await kit.channel()
    router = Router()
    seen: list[tuple] = []

    @router.actor(channel=channel)
    async def job(
        user_id: int,
        names: list[str],
        message: Message,
        trace: Annotated[str, Header(alias="X-Trace")],
    ) -> None:
        seen.append((user_id, names, trace, message.content_type, message.message_id))

    app.include_router(router)
    await app.send_message_json(
        channel=channel,
        payload={"user_id": "5", "names": ["a", "b"]},
        headers={"topic": "job", "X-Trace": "t-1"},
    )
    await app.send_message(
        channel=channel,
        payload=b'{"user_id": 6, "names": []}',
        headers={"topic": "job", "X-Trace": "t-2"},
        content_type="application/vnd.custom+json",
    )
    _, info = await run_until(app, lambda: len(seen) == 2, timeout=20)
    assert info.processed == 2
    assert sorted(s[:4] for s in seen) == [
        (5, ["a", "b"], "t-1", "application/json"),
        (6, [], "t-2", "application/vnd.custom+json"),
    ]
    assert all(s[4] for s in seen)  # every broker gives an id


async def test_ack_is_final(kit: BrokerKit) -> None:
    app = kit.app()
    channel = await kit.channel()
    router = Router()
    runs: list[int] = []

    @router.actor(channel=channel)
    async def job(n: int) -> None:
        runs.append(n)

    app.include_router(router)
    for n in range(3):
        await app.send_message_json(channel=channel, payload={"n": n}, headers={"topic": "job"})
    await run_until(app, lambda: len(runs) == 3, timeout=20)
    # A second worker finds nothing to redo.
    await run_for(app, 1.5)
    assert sorted(runs) == [0, 1, 2]


async def test_reject_redelivers(kit: BrokerKit) -> None:
    app = kit.app()
    channel = await kit.channel()
    router = Router()
    deliveries: list[int | None] = []

    @router.actor(channel=channel)
    async def job(message: Message) -> None:
        deliveries.append(message.delivery_count)
        if len(deliveries) == 1:
            await message.reject()

    app.include_router(router)
    await app.send_message(channel=channel, payload=b"", headers={"topic": "job"})
    _, info = await run_until(app, lambda: len(deliveries) == 2, timeout=30)
    assert len(deliveries) == 2 and info.processed == 2


async def test_nack_leaves_the_channel_for_the_dead_letters(kit: BrokerKit) -> None:
    app = kit.app()
    channel = await kit.channel()
    router = Router()
    runs: list[int] = []

    @router.actor(channel=channel)
    async def job() -> None:
        runs.append(1)
        raise RuntimeError("fails")  # auto mode: nack

    app.include_router(router)
    await app.send_message(channel=channel, payload=b"", headers={"topic": "job"})
    await run_until(app, lambda: len(runs) >= 1, timeout=20)
    if kit.nack_redelivers:
        await run_until(app, lambda: len(runs) >= 2, timeout=20)
        assert len(runs) >= 2
        return
    await run_for(app, 1.5)
    assert runs == [1]
    assert await kit.dead_letters(channel) == 1


async def test_reply_goes_to_the_reply_channel(kit: BrokerKit) -> None:
    app = kit.app()
    requests, replies = await kit.channel("req"), await kit.channel("rep")
    router = Router()
    answers: list[dict] = []

    @router.actor(channel=requests)
    async def ping(n: int, message: Message) -> None:
        await message.reply_json(payload={"pong": n}, channel=replies, headers={"topic": "pong"})

    @router.actor(channel=replies)
    async def pong(message: Message) -> None:
        answers.append(json.loads(message.payload))

    app.include_router(router)
    await app.send_message_json(channel=requests, payload={"n": 7}, headers={"topic": "ping"})
    _, info = await run_until(app, lambda: bool(answers), timeout=20)
    assert answers == [{"pong": 7}]
    # The request was acked by the reply: nothing comes back.
    await run_for(app, 1.0)
    assert answers == [{"pong": 7}]


async def test_tasks_limit_bounds_concurrency(kit: BrokerKit) -> None:
    app = kit.app()
    channel = await kit.channel()
    router = Router()
    running = peak = done = 0

    @router.actor(channel=channel)
    async def job() -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        done += 1

    app.include_router(router)
    for _ in range(10):
        await app.send_message(channel=channel, payload=b"", headers={"topic": "job"})
    await run_until(app, lambda: done == 10, timeout=30, tasks_limit=2)
    assert peak == 2


async def test_shutdown_rejects_unfinished_work_for_the_next_worker(kit: BrokerKit) -> None:
    app = kit.app()
    channel = await kit.channel()
    router = Router()
    started: list[int] = []
    finished: list[int] = []

    @router.actor(channel=channel)
    async def job(n: int) -> None:
        started.append(n)
        await asyncio.sleep(0.2 if len(started) > 1 else 30)
        finished.append(n)

    app.include_router(router)
    await app.send_message_json(channel=channel, payload={"n": 1}, headers={"topic": "job"})
    await run_until(app, lambda: bool(started), timeout=20, graceful_shutdown_time=0.2)
    assert finished == []
    # The cancelled message went back to the broker: the next worker runs it to the end.
    await run_until(app, lambda: bool(finished), timeout=30)
    assert finished == [1]


async def test_unrouted_message_becomes_poison_after_ten_deliveries(kit: BrokerKit, caplog) -> None:
    app = kit.app()
    channel = await kit.channel()
    router = Router()

    @router.actor(channel=channel)
    async def known() -> None: ...

    app.include_router(router)
    caplog.set_level(logging.WARNING, logger="repid.worker")
    await app.send_message(channel=channel, payload=b"x", headers={"topic": "unknown"})

    def poisoned() -> bool:
        return any("actor.route.poison_message" in r.getMessage() for r in caplog.records)

    _, info = await run_until(app, poisoned, timeout=60)
    assert info.processed == 0
    # One line at WARNING or above for the message: the ERROR when it is given up as poison;
    # its rejects before are logged at DEBUG.
    lines = [
        r for r in caplog.records if r.name == "repid.worker" and "actor.route" in r.getMessage()
    ]
    assert [(r.levelno, "poison_message" in r.getMessage()) for r in lines] == [
        (logging.ERROR, True)
    ]
    if not kit.nack_redelivers:
        assert await kit.dead_letters(channel) == 1


async def test_run_worker_closes_the_connection_and_disconnect_is_idempotent(
    kit: BrokerKit,
) -> None:
    app = kit.app()
    channel = await kit.channel()
    router = Router()
    runs: list[int] = []

    @router.actor(channel=channel)
    async def job(n: int) -> None:
        runs.append(n)

    app.include_router(router)
    await app.send_message_json(channel=channel, payload={"n": 1}, headers={"topic": "job"})
    info = await asyncio.wait_for(app.run_worker(messages_limit=1, register_signals=[]), 30)
    assert info.processed == 1 and runs == [1]
    assert kit.server.is_connected is False
    await kit.server.disconnect()  # a second disconnect is harmless
    await kit.server.connect()  # and the server can connect again
    assert kit.server.is_connected
