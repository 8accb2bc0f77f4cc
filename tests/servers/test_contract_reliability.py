"""Reliability over every server: several workers, unsettled messages, parse failures, shared
executor pools, TestClient churn and eager task factories (issue 12's evidence)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from repid import InMemoryServer, Message, Router, TestClient
from tests.core.helpers import run_until

from .conftest import BrokerKit, KitFactory

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("python_version_driver.py")


async def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_two_workers_on_one_channel_get_every_message_once(kit: BrokerKit) -> None:
    assert kit.another is not None
    app = kit.app()
    second = kit.another()
    if second is not kit.server:
        await second.connect()
        app.servers.register_server("second", second)
    channel = await kit.channel()
    router = Router()
    seen: list[int] = []

    @router.actor(channel=channel)
    async def job(n: int) -> None:
        seen.append(n)
        await asyncio.sleep(0.01)

    app.include_router(router)
    runners = [
        app.create_runner(tasks_limit=3),
        app.create_runner(
            server_name="second" if second is not kit.server else None, tasks_limit=3
        ),
    ]
    tasks = [asyncio.create_task(r.run(())) for r in runners]
    try:
        total = 60
        for n in range(total):
            await app.send_message_json(channel=channel, payload={"n": n}, headers={"topic": "job"})
        await _wait_for(lambda: len(seen) >= total, 60, "every message")
        await asyncio.sleep(0.5)  # a duplicate would show up now
    finally:
        for runner in runners:
            runner.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        if second is not kit.server:
            await second.disconnect()
    assert sorted(seen) == list(range(total))  # every message, each once


async def test_message_left_unsettled_comes_back_after_the_max_lease(
    kit_with: KitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    kit = await kit_with(max_lease=1.0)
    app = kit.app()
    channel = await kit.channel()
    router = Router()
    deliveries: list[float] = []

    @router.actor(channel=channel, confirmation_mode="manual")
    async def job(message: Message) -> None:
        deliveries.append(time.monotonic())
        if len(deliveries) > 1:
            await message.ack()  # the second time; the first one is left unsettled on purpose

    app.include_router(router)
    caplog.set_level(logging.WARNING, logger="repid.connections")
    await app.send_message(channel=channel, payload=b"", headers={"topic": "job"})
    _, info = await run_until(app, lambda: len(deliveries) >= 2, timeout=30)
    assert len(deliveries) >= 2
    assert deliveries[1] - deliveries[0] >= 0.9  # not before the lease ran out
    expired = [r for r in caplog.records if r.getMessage().startswith("message.lease_expired")]
    assert expired and expired[0].channel == channel  # type: ignore[attr-defined]


async def test_a_payload_that_does_not_parse_is_dead_lettered_with_what_failed(
    kit: BrokerKit, caplog: pytest.LogCaptureFixture
) -> None:
    app = kit.app()
    channel = await kit.channel()
    router = Router()

    @router.actor(channel=channel)
    async def job(n: int) -> None: ...

    app.include_router(router)
    caplog.set_level(logging.ERROR, logger="repid.worker")

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith("actor.payload_invalid")]

    await app.send_message(channel=channel, payload=b"not json", headers={"topic": "job"})
    await run_until(app, lambda: bool(logged()), timeout=20)
    record = logged()[0]
    # The reason names the error's type and says what it found (pydantic's or the basic
    # converter's wording), on one line, without a traceback.
    assert "ValidationError: " in record.getMessage()
    assert "json" in record.getMessage().lower()
    assert "\n" not in record.getMessage() and record.exc_info is None
    if kit.dead_reason is not None:
        assert await kit.dead_letters(channel) == 1
        reason = await kit.dead_reason(channel)
        assert reason is not None and "ValidationError: " in reason and "json" in reason.lower()


async def test_a_worker_ending_does_not_stop_another_workers_sync_actors(
    kit: BrokerKit, caplog: pytest.LogCaptureFixture
) -> None:
    # Two workers of one app, on two servers: one ends while the other's sync actors run and
    # wait in the shared thread pool (more of them than threads, so some are queued there).
    app = kit.app()
    side = InMemoryServer()
    app.servers.register_server("side", side)
    channel, side_channel = await kit.channel(), await kit.channel("side")
    router = Router()
    gate = threading.Event()
    started: list[int] = []
    done: list[int] = []

    @router.actor(channel=channel)
    def work(n: int) -> None:
        started.append(n)
        gate.wait(30)
        done.append(n)

    @router.actor(channel=side_channel)
    async def side_job() -> None: ...

    app.include_router(router)
    caplog.set_level(logging.ERROR, logger="repid.worker")
    total = 24
    for n in range(total):
        await app.send_message_json(channel=channel, payload={"n": n}, headers={"topic": "work"})
    main = app.create_runner(tasks_limit=total)
    main_task = asyncio.create_task(main.run(()))
    try:
        await _wait_for(lambda: len(started) >= 2, 30, "sync actors to start")
        async with side.connection():
            await app.send_message(
                channel=side_channel,
                payload=b"",
                headers={"topic": "side_job"},
                server_name="side",
            )
            info = await asyncio.wait_for(
                app.run_worker(server_name="side", messages_limit=1, register_signals=[]), 20
            )
        assert info.processed == 1
        gate.set()
        await _wait_for(lambda: len(done) >= total, 60, "every sync actor")
    finally:
        gate.set()
        main.stop()
        await asyncio.wait_for(main_task, 60)
    assert sorted(done) == list(range(total))
    assert not [r for r in caplog.records if r.getMessage().startswith("actor.error")]
    if not kit.nack_redelivers:
        assert await kit.dead_letters(channel) in (0, None)


async def test_a_test_client_opened_100_times_does_not_grow(kit: BrokerKit) -> None:
    app = kit.app()

    async def passthrough(call_next: Any, channel: str, message: Any, params: Any) -> Any:
        return await call_next(channel, message, params)

    app.producer_middlewares.append(passthrough)  # the path that caches a chain per server
    router = Router()

    @router.actor(channel="c")
    async def job() -> None: ...

    app.include_router(router)
    channel = await kit.channel()
    stand_ins: list[weakref.ref[Any]] = []
    for _ in range(100):
        async with TestClient(app) as client:
            await client.send_message(channel="c", payload=b"", headers={"topic": "job"})
            assert client.get_processed_messages()[0].success
            stand_ins.append(weakref.ref(client.get_server()))
    del client
    await app.send_message(channel=channel, payload=b"")  # back on the real server
    gc.collect()
    assert sum(ref() is not None for ref in stand_ins) == 0


def _python(version: str) -> str | None:
    found = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python"))
    return str(found[-1]) if found else None


def _run_driver(python: str, scenario: str, kit: BrokerKit, channel: str) -> dict[str, Any]:
    site = next((ROOT / ".venv" / "lib").glob("python3.*/site-packages"))
    env = {**os.environ, **kit.env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    proc = subprocess.run(
        [python, str(DRIVER), scenario, kit.name, channel],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


async def test_a_worker_under_the_eager_task_factory_leaves_nothing_in_flight(
    kit: BrokerKit,
) -> None:
    python = _python("3.12")
    if python is None:
        pytest.skip("no Python 3.12 under ~/.pyenv/versions (asyncio.eager_task_factory)")
    if kit.name == "pubsub":
        pytest.skip("grpcio is built per Python version; only the 3.11 build is installed")
    if kit.name.endswith(("-cluster", "-sentinel")):
        pytest.skip("about the event loop, not the broker: the single brokers cover it")
    channel = await kit.channel()
    result = await asyncio.to_thread(_run_driver, python, "eager", kit, channel)
    assert result == {"in_flight": 0, "processed": 40}


async def test_an_actors_own_cancelled_error_settles_its_message_on_python_310() -> None:
    # On Python 3.10 a task cannot tell its own CancelledError from a cancellation; the
    # runner, which knows whom it cancelled, settles it as the actor's failure (nack).
    python = _python("3.10")
    if python is None:
        pytest.skip("no Python 3.10 under ~/.pyenv/versions")
    kit = BrokerKit("memory", InMemoryServer(), _nothing, _nothing)  # type: ignore[arg-type]
    result = await asyncio.to_thread(_run_driver, python, "own-cancel", kit, "c")
    assert result == {"processed": 1, "dead": 1, "left": 0, "runs": 1}


async def _nothing(_: str) -> None:
    return None
