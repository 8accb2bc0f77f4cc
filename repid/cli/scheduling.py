"""`repid run APP --scheduler`: run the app's schedulers in the worker process.

The schedulers are the `Scheduler(..., app=app)` objects the app's module creates (see
`repid.jobs.scheduler`). With `--workers N` every worker process runs them: each tick is still
enqueued once. An app without message-layer servers (a job-layer app) runs the schedulers
alone, in one process, until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from repid.errors import AppLoadError

__all__ = ["has_servers", "serve_schedulers", "start_schedulers", "stop_schedulers"]

logger = logging.getLogger("repid.scheduler")

_STOP_TIMEOUT = 10.0


def has_servers(app: Any) -> bool:
    """Whether the app registered message-layer servers (else only schedulers can run)."""
    return any(True for _ in app.servers.items())


async def start_schedulers(app: Any, app_path: str) -> list[tuple[Any, asyncio.Task[None]]]:
    """Start every scheduler of `app` in a task of its own."""
    from repid.jobs.scheduler import schedulers_of

    schedulers = schedulers_of(app)
    if not schedulers:
        raise AppLoadError(
            f"--scheduler: {app_path} creates no Scheduler for its app; declare one next to "
            "the app, e.g. `Scheduler([Job('report', cron='0 * * * *')], app=app)`"
        )
    for scheduler in schedulers:
        scheduler.connection.require_job_state("repid run --scheduler")
    loop = asyncio.get_running_loop()
    return [(s, loop.create_task(s.run(), name="repid-scheduler")) for s in schedulers]


async def stop_schedulers(running: list[tuple[Any, asyncio.Task[None]]]) -> None:
    """Stop the schedulers and wait for them (a bounded while)."""
    for scheduler, _ in running:
        scheduler.stop()
    tasks = [task for _, task in running]
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=_STOP_TIMEOUT)
    for task in pending:
        task.cancel()
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            logger.error("scheduler.failed: %s", error, extra={"error": type(error).__name__})


async def serve_schedulers(app: Any, app_path: str) -> int:
    """Run only the schedulers, until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    running = await start_schedulers(app, app_path)
    waiter = loop.create_task(stop.wait())
    try:
        # Until a signal, or until a scheduler ends by itself (an error: stop the others).
        await asyncio.wait({waiter, *(t for _, t in running)}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        await stop_schedulers(running)
        for sig in installed:
            loop.remove_signal_handler(sig)
    return 0
