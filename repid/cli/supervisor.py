"""`repid run --workers N`: N worker processes under one supervisor.

The supervisor runs no actors and never imports the app; each worker is `python -m repid run`
in a process of its own (its own session, so a terminal's Ctrl-C reaches the supervisor only,
which forwards it). It:

* restarts a worker that dies (a crash, a kill, an exit nobody asked for) after a backoff of
  0.5 s doubling to 30 s (reset once a worker has run for 30 s), logging why;
* stops everything when a worker cannot start because of the app itself (exit code 78: the
  app does not import, an actor does not compile, no such server);
* on SIGTERM or SIGINT sends the signal to every worker, which drains gracefully (the
  worker's shutdown sequence), and exits once they have; a second SIGINT is forwarded as
  well (each worker then cancels its running actors and gives their messages back to the
  queue) and whatever still runs 1.5 s later is killed, so the command exits within 2 s;
* `--messages-limit` is per worker: a worker that has processed that many ends and is not
  replaced; the supervisor exits when every worker has;
* `--max-messages-per-worker` replaces a worker with a fresh process after that many;
* `--reload` restarts every worker when a Python file changes (see `reload`);
* serves the health endpoint once, for all: `HealthCheckServer` over `SupervisorHealth`,
  ready only while every worker reports ready (see `status` for the reports), and the docs
  page from the document the first worker sends.

Extension points for what is served once for all workers (metrics, for instance):
`add_message_handler(type, handler)` receives the workers' messages of a new type,
`child_environment` adds variables to every worker's environment (say a shared directory for
multi-process metrics), `on_worker_exit` callbacks learn each exited worker's pid (to clean
up its files), and `health` is the object the health server reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from repid.cli.status import ENV_DOCS, ENV_FD, ENV_INDEX, decode

__all__ = ["EXIT_CONFIG", "Supervisor", "SupervisorHealth", "SupervisorOptions", "WorkerSlot"]

logger = logging.getLogger("repid.supervisor")

EXIT_CONFIG = 78
"""A worker's exit code when the app itself cannot run (sysexits' EX_CONFIG)."""

_BACKOFF_FIRST = 0.5
_BACKOFF_CAP = 30.0
_HEALTHY_RUN = 30.0  # a worker that ran this long resets its slot's backoff
_FORCE_KILL_AFTER = 1.5
_STALE_AFTER = 5.0  # a worker silent this long is not ready


@dataclass
class SupervisorOptions:
    """How the supervisor runs its workers."""

    workers: int
    worker_args: list[str]
    """`repid run` arguments every worker gets (app, server, limits, logging, loop)."""
    graceful_shutdown_time: float
    messages_limit: int | None = None
    max_messages_per_worker: int | None = None
    reload: bool = False
    health: tuple[str, int] | None = None
    docs: tuple[str, int] | None = None
    metrics: tuple[str, int] | None = None
    """Serve the workers' merged Prometheus metrics here (see `repid.cli.metrics`)."""


@dataclass
class WorkerSlot:
    """One of the N places a worker process runs in."""

    index: int
    remaining: int | None
    """Messages this slot may still process (`--messages-limit`); None: no limit."""
    process: asyncio.subprocess.Process | None = None
    limit: int | None = None
    """The running worker's own messages limit."""
    status: dict[str, Any] = field(default_factory=dict)
    status_at: float = 0.0
    final: dict[str, Any] | None = None
    started_at: float = 0.0
    crashes: int = 0
    done: bool = False
    replace: bool = False
    restart: asyncio.TimerHandle | None = None
    reader: asyncio.Task[None] | None = None
    """Reads the running worker's status channel until it closes."""

    @property
    def alive(self) -> bool:
        """A worker process runs here, or exited and its exit is not handled yet."""
        return self.process is not None

    def fresh(self, now: float) -> bool:
        process = self.process
        return (
            process is not None
            and process.returncode is None
            and now - self.status_at < _STALE_AFTER
        )

    def reports(self, key: str, now: float) -> bool:
        return self.fresh(now) and self.status.get(key) is True


class _AllConnected:
    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    @property
    def is_connected(self) -> bool:
        now = time.monotonic()
        return all(slot.reports("connected", now) for slot in self._supervisor.active_slots())


class SupervisorHealth:
    """What the health server reads when one endpoint stands for every worker.

    Has the attributes `HealthCheckServer` reads from a `Runner`: running, healthy and ready
    only while every worker that should run reports so (in the last 5 s).
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self.server = _AllConnected(supervisor)
        self.last_iteration = time.monotonic()

    def _all(self, key: str) -> bool:
        supervisor = self._supervisor
        slots = supervisor.active_slots()
        now = time.monotonic()
        return (
            not supervisor.stopping
            and bool(slots)
            and all(slot.reports(key, now) for slot in slots)
        )

    @property
    def is_running(self) -> bool:
        return self._all("running")

    @property
    def is_ready(self) -> bool:
        return self._all("ready")

    def is_healthy(self, max_silence: float = 5.0) -> bool:
        return self._all("healthy")


class _Document:
    """The AsyncAPI document a worker sent, in the shape the docs server reads."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def generate_asyncapi_schema(self) -> dict[str, Any]:
        return self.document


class Supervisor:
    """Runs `options.workers` worker processes; see the module docstring."""

    def __init__(self, options: SupervisorOptions) -> None:
        self.options = options
        self.slots = [
            WorkerSlot(index=i, remaining=options.messages_limit) for i in range(options.workers)
        ]
        self.stopping = False
        self.forced = False
        self.health = SupervisorHealth(self)
        self.child_environment: dict[str, str] = {}
        self.on_worker_exit: list[Callable[[int], None]] = []
        self._handlers: dict[str, Callable[[WorkerSlot, dict[str, Any]], None]] = {
            "hello": self._on_hello,
            "status": self._on_status,
            "final": self._on_final,
        }
        self._finished: asyncio.Event | None = None
        self._side_servers: list[Any] = []
        self._docs: Any = None
        self._document: dict[str, Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._kill_timer: asyncio.TimerHandle | None = None
        self._config_error = False

    def add_message_handler(
        self, message_type: str, handler: Callable[[WorkerSlot, dict[str, Any]], None]
    ) -> None:
        """Receive the workers' status-channel messages of `message_type`."""
        self._handlers[message_type] = handler

    def active_slots(self) -> list[WorkerSlot]:
        """The slots that should have a running worker (not done with their messages)."""
        return [slot for slot in self.slots if not slot.done]

    # The run -------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until every worker is done or a signal stopped them; return the exit code."""
        loop = asyncio.get_running_loop()
        self._finished = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        heartbeat = self._spawn(self._heartbeat())
        try:
            metrics = None
            if self.options.metrics is not None:
                from repid.cli.metrics import SupervisorMetrics

                metrics = SupervisorMetrics(self, self.options.metrics)
                self._side_servers.append(metrics)  # closed (directory removed) at the end
                await metrics.start()
            if self.options.health is not None:
                from repid.health.server import HealthCheckServer
                from repid.health.settings import HealthCheckServerSettings

                host, port = self.options.health
                settings = HealthCheckServerSettings(address=host, port=port)
                source = metrics.source if metrics is not None else None
                health = HealthCheckServer(settings, self.health, source)
                self._side_servers.append(await health.start())
            logger.info(
                "supervisor.started: pid %d, %d worker(s)%s",
                os.getpid(),
                len(self.slots),
                ", reloading on changes" if self.options.reload else "",
                extra={"workers": len(self.slots)},
            )
            for slot in self.slots:
                await self._start(slot)
            if self.options.reload:
                from repid.cli.reload import watch_for_changes

                self._spawn(watch_for_changes(self._reload))
            await self._finished.wait()
        finally:
            heartbeat.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self._kill_all()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for side in self._side_servers:
                await side.close()
        if self._config_error:
            return 1
        logger.info(
            "supervisor.stopped: every worker has exited", extra={"workers": len(self.slots)}
        )
        return 130 if self.forced else 0

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _heartbeat(self) -> None:
        while True:
            self.health.last_iteration = time.monotonic()
            await asyncio.sleep(1.0)

    # Workers -------------------------------------------------------------------------------

    def _child_limit(self, slot: WorkerSlot) -> int | None:
        limits = [
            n for n in (slot.remaining, self.options.max_messages_per_worker) if n is not None
        ]
        return min(limits) if limits else None

    async def _start(self, slot: WorkerSlot) -> None:
        if self.stopping or slot.done:
            return
        slot.restart = None
        parent, child = socket.socketpair()
        slot.limit = self._child_limit(slot)
        args = [sys.executable, "-m", "repid", "run", *self.options.worker_args]
        if slot.limit is not None:
            args += ["--messages-limit", str(slot.limit)]
        env = {
            **os.environ,
            **self.child_environment,
            ENV_FD: str(child.fileno()),
            ENV_INDEX: str(slot.index),
            ENV_DOCS: "1" if self.options.docs is not None else "0",
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *args, env=env, pass_fds=(child.fileno(),), start_new_session=True
            )
        except OSError:
            parent.close()
            child.close()
            logger.exception(
                "supervisor.spawn_failed: could not start worker %d",
                slot.index,
                extra={"worker": slot.index},
            )
            self._schedule_restart(slot, self._backoff(slot))
            return
        child.close()
        slot.process = process
        slot.status = {}
        slot.status_at = 0.0
        slot.final = None
        slot.started_at = time.monotonic()
        logger.info(
            "supervisor.worker_started: worker %d, pid %d%s",
            slot.index,
            process.pid,
            f", messages limit {slot.limit}" if slot.limit is not None else "",
            extra={"worker": slot.index, "worker_pid": process.pid},
        )
        slot.reader = self._spawn(self._read_reports(slot, parent))
        self._spawn(self._wait(slot, process))

    async def _read_reports(self, slot: WorkerSlot, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=64 * 1024 * 1024)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                message = decode(line)
                if message is None:
                    continue
                handler = self._handlers.get(message["type"])
                if handler is not None:
                    try:
                        handler(slot, message)
                    except Exception:
                        logger.exception(
                            "supervisor.report_failed: %s",
                            message["type"],
                            extra={"worker": slot.index, "report": message["type"]},
                        )
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            return
        finally:
            writer.close()

    def _on_hello(self, slot: WorkerSlot, message: dict[str, Any]) -> None:
        document = message.get("asyncapi")
        if (
            isinstance(document, dict)
            and self.options.docs is not None
            and document != self._document
        ):
            self._document = document
            self._spawn(self._serve_docs(document))

    def _on_status(self, slot: WorkerSlot, message: dict[str, Any]) -> None:
        slot.status = message
        slot.status_at = time.monotonic()

    def _on_final(self, slot: WorkerSlot, message: dict[str, Any]) -> None:
        slot.final = message

    async def _serve_docs(self, document: dict[str, Any]) -> None:
        from repid.asyncapi.server import AsyncAPIServer
        from repid.asyncapi.settings import AsyncAPIServerSettings

        if self._docs is not None:
            self._docs.app = _Document(document)
            self._docs.refresh()
            return
        assert self.options.docs is not None
        host, port = self.options.docs
        settings = AsyncAPIServerSettings(address=host, port=port)
        self._docs = AsyncAPIServer(settings, _Document(document))
        await self._docs.start()
        self._side_servers.append(self._docs)

    async def _wait(self, slot: WorkerSlot, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        for callback in self.on_worker_exit:
            try:
                callback(process.pid)
            except Exception:
                logger.exception(
                    "supervisor.exit_callback_failed", extra={"worker_pid": process.pid}
                )
        # The final report is written just before the exit: read the channel to its end (the
        # socket closes with the process) before judging how the worker ended.
        reader = slot.reader
        if reader is not None:
            await asyncio.wait([reader], timeout=5.0)
        self._on_exit(slot, process, code)

    def _on_exit(self, slot: WorkerSlot, process: asyncio.subprocess.Process, code: int) -> None:
        slot.process = None
        report = slot.final or slot.status
        processed = report.get("processed", 0)
        if not isinstance(processed, int):
            processed = 0
        if slot.remaining is not None:
            slot.remaining = max(0, slot.remaining - processed)
        how = _describe_exit(code)
        extra = {"worker": slot.index, "worker_pid": process.pid, "exit_code": code}
        ran = time.monotonic() - slot.started_at
        if self.stopping:
            logger.info(
                "supervisor.worker_exited: worker %d (pid %d) %s",
                slot.index,
                process.pid,
                how,
                extra=extra,
            )
        elif code == EXIT_CONFIG:
            logger.error(
                "supervisor.worker_cannot_start: worker %d (pid %d) %s: the app cannot run "
                "(see its error above); stopping",
                slot.index,
                process.pid,
                how,
                extra=extra,
            )
            self._config_error = True
            self._begin_stop(signal.SIGTERM, announce=False)
        elif slot.replace:
            slot.replace = False
            self._spawn(self._start(slot))
        elif code == 0 and slot.remaining == 0:
            slot.done = True
            logger.info(
                "supervisor.worker_finished: worker %d (pid %d) processed its messages limit",
                slot.index,
                process.pid,
                extra=extra,
            )
        elif (
            code == 0
            and self.options.max_messages_per_worker is not None
            and slot.limit is not None
            and processed >= slot.limit
        ):
            logger.info(
                "supervisor.worker_recycled: worker %d (pid %d) processed %d message(s); "
                "starting a fresh process",
                slot.index,
                process.pid,
                processed,
                extra=extra,
            )
            self._spawn(self._start(slot))
        else:
            if ran >= _HEALTHY_RUN:
                slot.crashes = 0
            delay = self._backoff(slot)
            logger.warning(
                "supervisor.worker_exited: worker %d (pid %d) %s after %.1f s; restarting in "
                "%.1f s",
                slot.index,
                process.pid,
                how,
                ran,
                delay,
                extra={**extra, "restart_in": delay},
            )
            self._schedule_restart(slot, delay)
        self._check_finished()

    def _backoff(self, slot: WorkerSlot) -> float:
        slot.crashes += 1
        return float(min(_BACKOFF_CAP, _BACKOFF_FIRST * 2 ** (slot.crashes - 1)))

    def _schedule_restart(self, slot: WorkerSlot, delay: float) -> None:
        loop = asyncio.get_running_loop()
        slot.restart = loop.call_later(delay, lambda: self._spawn(self._start(slot)))

    def _check_finished(self) -> None:
        if self._finished is None:
            return
        if any(slot.alive for slot in self.slots):
            return
        if self.stopping or all(slot.done for slot in self.slots):
            self._finished.set()

    # Reload --------------------------------------------------------------------------------

    async def _reload(self, paths: list[str]) -> None:
        if self.stopping:
            return
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        logger.info(
            "supervisor.reloading: %s changed; restarting the workers",
            shown,
            extra={"changed": paths},
        )
        for slot in self.active_slots():
            if slot.alive:
                slot.replace = True
                _signal(slot, signal.SIGTERM)
            elif slot.restart is not None:
                slot.restart.cancel()
                slot.crashes = 0
                self._spawn(self._start(slot))

    # Stopping ------------------------------------------------------------------------------

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.stopping:
            self._begin_stop(sig)
        elif sig == signal.SIGINT and not self.forced:
            self.forced = True
            logger.warning(
                "supervisor.force_stop: second SIGINT: stopping the workers now; running "
                "messages go back to the queue",
                extra={"workers": len(self.slots)},
            )
            for slot in self.slots:
                _signal(slot, signal.SIGINT)
            self._set_kill_timer(_FORCE_KILL_AFTER)

    def _begin_stop(self, sig: signal.Signals, *, announce: bool = True) -> None:
        self.stopping = True
        live = [slot for slot in self.slots if slot.alive]
        if announce:
            logger.info(
                "supervisor.stopping: received %s; draining %d worker(s) gracefully (press "
                "Ctrl-C again to stop at once)",
                sig.name,
                len(live),
                extra={"signal": sig.name, "workers": len(live)},
            )
        for slot in self.slots:
            if slot.restart is not None:
                slot.restart.cancel()
                slot.restart = None
            _signal(slot, sig)
        # A worker that does not finish its graceful shutdown in time (plus start-up and
        # disconnect margins) is killed: the supervisor always ends.
        self._set_kill_timer(self.options.graceful_shutdown_time + 15.0)
        self._check_finished()

    def _set_kill_timer(self, delay: float) -> None:
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._kill_timer = asyncio.get_running_loop().call_later(
            delay, lambda: self._spawn(self._kill_all())
        )

    async def _kill_all(self) -> None:
        live = [
            slot.process
            for slot in self.slots
            if slot.process is not None and slot.process.returncode is None
        ]
        for process in live:
            logger.warning(
                "supervisor.killing: worker pid %d did not stop in time",
                process.pid,
                extra={"worker_pid": process.pid},
            )
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        for process in live:
            await process.wait()


def _signal(slot: WorkerSlot, sig: signal.Signals) -> None:
    process = slot.process
    if process is None or process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
