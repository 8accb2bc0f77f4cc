"""The worker loop on InMemoryServer: limits, concurrency, shutdown, threads."""

from __future__ import annotations

import asyncio
import threading

from repid import Message, Router

from .helpers import make_app, run_worker_bounded


async def test_ten_thousand_messages_with_tasks_limit_one_in_order() -> None:
    seen: list[int] = []
    router = Router()

    @router.actor(channel="c")
    async def record(i: int) -> None:
        seen.append(i)

    app, server = make_app(router)
    await server.connect()
    for i in range(10_000):
        await app.send_message_json(channel="c", payload={"i": i}, headers={"topic": "record"})
    info = await run_worker_bounded(app, within=120, messages_limit=10_000, tasks_limit=1)
    assert info.processed == 10_000
    assert seen == list(range(10_000))
    assert server.queued("c") == []


async def test_tasks_limit_caps_concurrency() -> None:
    running = 0
    peak = 0
    router = Router()

    @router.actor(channel="c")
    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    app, server = make_app(router)
    await server.connect()
    for _ in range(12):
        await app.send_message_json(channel="c", payload={}, headers={"topic": "work"})
    info = await run_worker_bounded(app, messages_limit=12, tasks_limit=3)
    assert info.processed == 12 and peak == 3


async def test_messages_limit_ignores_unrouted_and_poison_is_nacked() -> None:
    router = Router()

    @router.actor(channel="c")
    async def known() -> None:
        pass

    app, server = make_app(router)
    await server.connect()
    await app.send_message_json(channel="c", payload={}, headers={"topic": "nobody"})
    await app.send_message(channel="c", payload=b"{}")  # headers=None
    for _ in range(3):
        await app.send_message_json(channel="c", payload={}, headers={"topic": "known"})
    info = await run_worker_bounded(app, messages_limit=2)
    assert info.processed == 2
    # Unrouted messages never count; after 10 sightings each is dead-lettered.
    assert len(server.dead_letters.get("c", [])) == 2
    assert len(server.queued("c")) == 1


async def test_messages_limit_counts_rejected_messages() -> None:
    attempts = 0
    router = Router()

    @router.actor(channel="c", on_error="reject")
    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("again")

    app, server = make_app(router)
    await server.connect()
    await app.send_message_json(channel="c", payload={}, headers={"topic": "flaky"})
    info = await run_worker_bounded(app, messages_limit=3)
    assert info.processed == 3 and attempts == 3
    assert len(server.queued("c")) == 1


async def test_shutdown_rejects_unfinished_and_runs_finally() -> None:
    started = asyncio.Event()
    cleaned: list[bool] = []
    router = Router()

    @router.actor(channel="c")
    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append(True)

    app, server = make_app(router)
    await server.connect()
    await app.send_message_json(channel="c", payload={}, headers={"topic": "slow"})
    runner = app.create_runner(graceful_shutdown_time=0.05, cancellation_timeout=0.2)
    run = asyncio.create_task(runner.run(register_signals=[]))
    await asyncio.wait_for(started.wait(), 10)
    runner.stop()
    await asyncio.wait_for(run, 10)
    assert cleaned == [True]
    assert len(server.queued("c")) == 1  # back on the queue, once
    assert not server.dead_letters


async def test_actor_finishing_in_grace_period_can_send_and_is_acked_once() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    router = Router()

    @router.actor(channel="c")
    async def chain(message: Message) -> None:
        started.set()
        await release.wait()
        await message.send_message_json(channel="next", payload={"n": 1})

    app, server = make_app(router)
    await server.connect()
    await app.send_message_json(channel="c", payload={}, headers={"topic": "chain"})
    runner = app.create_runner(graceful_shutdown_time=1.0)
    run = asyncio.create_task(runner.run(register_signals=[]))
    await asyncio.wait_for(started.wait(), 10)
    runner.stop()
    await asyncio.sleep(0.01)
    release.set()
    info = await asyncio.wait_for(run, 10)
    assert info.processed == 1
    assert server.queued("c") == []  # acked: not redelivered
    assert len(server.queued("next")) == 1


async def test_manual_mode_unsettled_message_returns_on_shutdown() -> None:
    router = Router()

    @router.actor(channel="c", confirmation_mode="manual")
    async def forgetful() -> None:
        pass

    app, server = make_app(router)
    await server.connect()
    await app.send_message_json(channel="c", payload={}, headers={"topic": "forgetful"})
    info = await run_worker_bounded(app, messages_limit=1)
    assert info.processed == 1
    assert len(server.queued("c")) == 1  # at-least-once: never settled, so redelivered


async def test_run_worker_outside_main_thread_with_default_signals() -> None:
    router = Router()

    @router.actor(channel="c")
    async def job() -> None:
        pass

    result: list[int] = []

    def in_thread() -> None:
        async def main() -> None:
            app, server = make_app(router)
            await server.connect()
            await app.send_message_json(channel="c", payload={}, headers={"topic": "job"})
            info = await asyncio.wait_for(app.run_worker(messages_limit=1), 20)
            result.append(info.processed)

        asyncio.run(main())

    thread = threading.Thread(target=in_thread)
    thread.start()
    await asyncio.to_thread(thread.join, 30)
    assert result == [1]
