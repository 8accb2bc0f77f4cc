"""One worker process of `repid run`: load the app, connect, run, report, disconnect.

Start line (INFO), e.g.:

    worker.starting: repid 1.0.0, pid 4242, server 'default' redis://cache:6379/0,
    channels orders (charge, refund), emails (send_welcome_email), tasks limit 1000,
    messages limit none, graceful shutdown 25.0 s

then `worker.started` from the worker itself, `worker.progress` lines (see `progress`), one
`message.processed` line per message at DEBUG, the shutdown steps, and `worker.stopped`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from repid.app import Repid
from repid.cli.connect import connect_server, disconnect_quietly
from repid.cli.describe import channel_actors, describe_server
from repid.cli.loading import load_app
from repid.cli.metrics import start_worker_metrics
from repid.cli.progress import progress_interval, report_progress
from repid.cli.scheduling import has_servers, serve_schedulers, start_schedulers, stop_schedulers
from repid.cli.status import StatusLink
from repid.connections.abc import ServerT
from repid.worker.runner import Runner

__all__ = ["WorkerOptions", "serve_worker"]

logger = logging.getLogger("repid.worker")


class WorkerOptions:
    """What one worker process runs with (parsed from `repid run`'s arguments)."""

    def __init__(
        self,
        *,
        app: str,
        server: str | None,
        tasks_limit: int | None,
        graceful_shutdown_time: float,
        messages_limit: int | None,
        health: tuple[str, int] | None = None,
        docs: tuple[str, int] | None = None,
        metrics: tuple[str, int] | None = None,
        scheduler: bool = False,
    ) -> None:
        self.app = app
        self.server = server
        self.tasks_limit = tasks_limit
        self.graceful_shutdown_time = graceful_shutdown_time
        self.messages_limit = messages_limit
        self.health = health
        self.docs = docs
        self.metrics = metrics
        self.scheduler = scheduler


def _limit(value: int | None) -> str:
    return "none" if value is None else str(value)


def log_start(app: Repid, name: str, server: ServerT, options: WorkerOptions) -> None:
    from repid import __version__

    channels = channel_actors(app)
    logger.info(
        "worker.starting: repid %s, pid %d, server %r %s, channels %s, tasks limit %s, "
        "messages limit %s, graceful shutdown %.1f s",
        __version__,
        os.getpid(),
        name,
        describe_server(server),
        ", ".join(f"{c} ({', '.join(a)})" for c, a in channels.items()) or "none",
        _limit(options.tasks_limit),
        _limit(options.messages_limit),
        options.graceful_shutdown_time,
        extra={
            "version": __version__,
            "server": name,
            "server_url": describe_server(server),
            "channels": channels,
            "tasks_limit": options.tasks_limit,
            "messages_limit": options.messages_limit,
            "graceful_shutdown_time": options.graceful_shutdown_time,
        },
    )


async def serve_worker(options: WorkerOptions, link: StatusLink | None = None) -> int:
    """Run one worker until it is stopped; return the process's exit code."""
    if link is not None:
        await link.open()
    app = load_app(options.app)
    if options.scheduler and link is None and not has_servers(app):
        return await serve_schedulers(app, options.app)  # a job-layer app: schedulers only
    if link is not None:
        await link.hello(app.generate_asyncapi_schema() if link.send_docs else None)
    name, server = app.servers.resolve(options.server)
    others = [(n, s) for n, s in app.servers.items() if s is not server]
    runner: Runner | None = None
    progress: asyncio.Task[None] | None = None
    metrics: Any = None
    schedulers: list[Any] = []
    started = time.monotonic()
    try:
        metrics = await start_worker_metrics(app, options.metrics)
        # Every server: actors may send to any of them. The worker's own goes first, so a
        # broker that is down is reported before anything else happens.
        await connect_server(name, server)
        for other_name, other in others:
            await connect_server(other_name, other)
        runner = app.create_runner(
            server_name=name,
            graceful_shutdown_time=options.graceful_shutdown_time,
            messages_limit=options.messages_limit,
            tasks_limit=options.tasks_limit,
        )
        if options.scheduler:
            schedulers = await start_schedulers(app, options.app)
        log_start(app, name, server, options)
        progress = asyncio.get_running_loop().create_task(
            report_progress(runner, progress_interval()), name="repid-progress"
        )
        if link is not None:
            link.watch(runner)
        info = await app.serve_runner(
            runner,
            health_check_server=_health_settings(options.health),
            asyncapi_server=_docs_settings(options.docs),
        )
        logger.info(
            "worker.stopped: processed %d message(s), %d failed, in %.1f s",
            info.processed,
            info.failed,
            time.monotonic() - started,
            extra={"processed": info.processed, "failed": info.failed},
        )
    finally:
        await stop_schedulers(schedulers)
        if progress is not None:
            progress.cancel()
        if metrics is not None:
            await metrics.close()
        if link is not None:
            await link.close(runner)
        await disconnect_quietly(name, server)
        for other_name, other in others:
            await disconnect_quietly(other_name, other)
    return 0


def _health_settings(address: tuple[str, int] | None) -> Any:
    if address is None:
        return None
    from repid.health.settings import HealthCheckServerSettings

    return HealthCheckServerSettings(address=address[0], port=address[1])


def _docs_settings(address: tuple[str, int] | None) -> Any:
    if address is None:
        return None
    from repid.asyncapi.settings import AsyncAPIServerSettings

    return AsyncAPIServerSettings(address=address[0], port=address[1])
