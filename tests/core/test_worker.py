"""Point 11: the worker - limits, concurrency, signals and the graceful shutdown sequence."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

from repid import Router, RunnerInfo

from .helpers import run_until


async def test_messages_limit_returns_runner_info(memory_app) -> None:
    app, server = memory_app
    router = Router()

    @router.actor
    async def a(n: int) -> None: ...

    app.include_router(router)
    for i in range(5):
        await app.send_message_json(channel="default", payload={"n": i}, headers={"topic": "a"})
    info = await app.run_worker(messages_limit=3, register_signals=[])
    assert info == RunnerInfo(processed=3)
    assert len(server.queued("default")) == 2  # never fetched more than the limit


async def test_tasks_limit_bounds_concurrency(memory_app) -> None:
    app, _ = memory_app
    router = Router()
    running = 0
    peak = 0

    @router.actor
    async def slow() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    app.include_router(router)
    for _ in range(12):
        await app.send_message(channel="default", payload=b"", headers={"topic": "slow"})
    info = await app.run_worker(messages_limit=12, tasks_limit=3, register_signals=[])
    assert info.processed == 12
    assert peak == 3


async def test_graceful_shutdown_finishes_cancels_and_rejects(memory_app) -> None:
    app, server = memory_app
    router = Router()
    events: list[str] = []
    started = 0

    @router.actor
    async def job(seconds: float) -> None:
        nonlocal started
        started += 1
        try:
            await asyncio.sleep(seconds)
            events.append(f"finished {seconds}")
        except asyncio.CancelledError:
            events.append(f"cancelled {seconds}")
            raise
        finally:
            events.append(f"cleanup {seconds}")

    app.include_router(router)
    for seconds in (0.05, 30.0):
        await app.send_message_json(
            channel="default", payload={"seconds": seconds}, headers={"topic": "job"}
        )
    runner, info = await run_until(app, lambda: started == 2, graceful_shutdown_time=0.3)
    # The short job finished in the grace period and was acked; the long one was cancelled
    # (its finally block ran) and its message rejected back to the queue.
    assert events == ["finished 0.05", "cleanup 0.05", "cancelled 30.0", "cleanup 30.0"]
    assert info.processed == 1
    [back] = server.queued("default")
    assert back.payload == b'{"seconds":30.0}'
    assert server.dead_letters == {}


async def test_shutdown_pauses_before_waiting(memory_app) -> None:
    app, server = memory_app
    router = Router()
    started = []

    @router.actor
    async def job(i: int) -> None:
        started.append(i)
        await asyncio.sleep(0.1)

    app.include_router(router)
    for i in range(3):
        await app.send_message_json(channel="default", payload={"i": i}, headers={"topic": "job"})
    # One slot: the first message runs, stop is requested, the rest must not start.
    _, info = await run_until(app, lambda: bool(started), tasks_limit=1)
    assert started == [0]
    assert info.processed == 1
    assert len(server.queued("default")) == 2


async def test_actor_that_ignores_cancellation_is_abandoned_after_timeout(memory_app) -> None:
    app, server = memory_app
    router = Router()
    started = asyncio.Event()
    release = asyncio.Event()

    @router.actor
    async def stubborn() -> None:
        started.set()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # refuses to stop until the test releases it

    app.include_router(router)
    await app.send_message(channel="default", payload=b"", headers={"topic": "stubborn"})
    runner = app.create_runner(graceful_shutdown_time=0.05, cancellation_timeout=0.1)
    task = asyncio.create_task(runner.run(()))
    await started.wait()
    runner.stop()
    await asyncio.wait_for(task, 2)
    assert len(server.queued("default")) == 1  # rejected even though the task did not stop
    release.set()
    await asyncio.sleep(0.01)


async def test_custom_signal_triggers_shutdown(memory_app) -> None:
    app, _ = memory_app
    router = Router()

    @router.actor
    async def a() -> None: ...

    app.include_router(router)
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, os.kill, os.getpid(), signal.SIGUSR1)
    info = await asyncio.wait_for(app.run_worker(register_signals=[signal.SIGUSR1]), 5)
    assert info.processed == 0
    # The handler is removed afterwards.
    assert not loop.remove_signal_handler(signal.SIGUSR1)


WORKER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from repid import Repid, Router, InMemoryServer

    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    router = Router()

    @router.actor
    async def slow() -> None:
        print("started", flush=True)
        await asyncio.sleep(0.5)
        print("finished", flush=True)

    app.include_router(router)

    async def main() -> None:
        async with app.servers.default.connection():
            await app.send_message(channel="default", payload=b"", headers={"topic": "slow"})
            signals = [] if sys.argv[1] == "none" else None
            info = await app.run_worker(register_signals=signals, graceful_shutdown_time=5)
            print("processed", info.processed, flush=True)

    asyncio.run(main())
    """
)


def _start_worker(mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    return proc


def test_sigterm_lets_running_actor_finish_then_exits() -> None:
    proc = _start_worker("default")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.split("\n")[:2] == ["finished", "processed 1"]


def test_sigint_is_handled_by_default() -> None:
    proc = _start_worker("default")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "processed 1" in out


def test_register_signals_empty_leaves_default_signal_behaviour() -> None:
    proc = _start_worker("none")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGTERM
    assert "finished" not in out
