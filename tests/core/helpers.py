"""Helpers for driving a worker in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from repid import Repid, RunnerInfo
from repid.worker.runner import Runner


async def run_until(
    app: Repid,
    done: Callable[[], bool],
    *,
    timeout: float = 5.0,
    graceful_shutdown_time: float = 5.0,
    tasks_limit: int | None = 1000,
) -> tuple[Runner, RunnerInfo]:
    """Run a worker until `done()` is true (checked every 10 ms), then stop it gracefully."""
    runner = app.create_runner(
        graceful_shutdown_time=graceful_shutdown_time, tasks_limit=tasks_limit
    )
    task = asyncio.create_task(runner.run(()))
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while not done():
            if task.done():
                break
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the condition did not hold within {timeout} s")
            await asyncio.sleep(0.01)
    finally:
        runner.stop()
    info = await asyncio.wait_for(task, timeout + graceful_shutdown_time + 2)
    return runner, info


async def run_for(app: Repid, seconds: float, **kwargs: float) -> tuple[Runner, RunnerInfo]:
    """Run a worker for `seconds`, then stop it gracefully."""
    deadline = asyncio.get_running_loop().time() + seconds

    def elapsed() -> bool:
        return asyncio.get_running_loop().time() >= deadline

    return await run_until(app, elapsed, timeout=seconds + 5, **kwargs)
