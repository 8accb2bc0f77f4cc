"""The channel between a supervised worker process and its supervisor.

Each worker process gets one end of a Unix socket pair (its file descriptor in
`REPID_SUPERVISOR_FD`) and writes newline-delimited JSON objects, each with a `type`:

* `hello` - once, at start: `pid`, `index` (the worker's slot), and `asyncapi` (the app's
  AsyncAPI document) when the supervisor serves the docs (`REPID_SUPERVISOR_DOCS=1`);
* `status` - every `STATUS_INTERVAL` seconds while the worker runs: `running`, `ready`,
  `healthy`, `connected` (booleans, what the health endpoint aggregates), `processed`,
  `failed`, `in_flight`;
* `final` - when the worker stops: `processed`, `failed`.

The supervisor ignores types it does not know, so the channel can carry more (metrics, say)
without breaking older supervisors: `Supervisor.add_message_handler(type, handler)` is the
extension point on the other side. The supervisor never writes: the worker reads only to
notice end-of-file, which means the supervisor died, and then shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from typing import Any

from repid.worker.runner import Runner

__all__ = ["ENV_DOCS", "ENV_FD", "ENV_INDEX", "STATUS_INTERVAL", "StatusLink", "decode", "encode"]

logger = logging.getLogger("repid.worker")

ENV_FD = "REPID_SUPERVISOR_FD"
ENV_DOCS = "REPID_SUPERVISOR_DOCS"
ENV_INDEX = "REPID_WORKER_INDEX"
STATUS_INTERVAL = 0.5


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of JSON."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any] | None:
    """The message in `line`, or None for anything that is not a JSON object with a type."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return None
    return message


def runner_status(runner: Runner) -> dict[str, Any]:
    """A `status` message describing `runner` now."""
    healthy = runner.is_healthy()
    ready = getattr(runner, "is_ready", None)
    return {
        "type": "status",
        "running": runner.is_running,
        "ready": bool(ready) if isinstance(ready, bool) else healthy,
        "healthy": healthy,
        "connected": runner.server.is_connected,
        "processed": runner.info.processed,
        "failed": runner.info.failed,
        "in_flight": len(runner.in_flight),
    }


class StatusLink:
    """The worker's end of the channel."""

    def __init__(self, fd: int, index: int, send_docs: bool) -> None:
        self.fd = fd
        self.index = index
        self.send_docs = send_docs
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_environment(cls) -> StatusLink | None:
        """The link named by `REPID_SUPERVISOR_FD`, or None when not supervised."""
        fd = os.environ.get(ENV_FD)
        if not fd:
            return None
        return cls(int(fd), int(os.environ.get(ENV_INDEX, "0")), os.environ.get(ENV_DOCS) == "1")

    async def open(self) -> None:
        sock = socket.socket(fileno=self.fd)
        self._reader, self._writer = await asyncio.open_unix_connection(sock=sock)

    async def send(self, message: dict[str, Any]) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        try:
            writer.write(encode(message))
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the supervisor is gone: the reader notices and stops the worker

    async def hello(self, asyncapi: dict[str, Any] | None) -> None:
        message: dict[str, Any] = {"type": "hello", "pid": os.getpid(), "index": self.index}
        if asyncapi is not None:
            message["asyncapi"] = asyncapi
        await self.send(message)

    def watch(self, runner: Runner) -> None:
        """Report `runner`'s status until `close`; stop it if the supervisor goes away."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._report(runner), name="repid-status-report"),
            loop.create_task(self._watch_supervisor(runner), name="repid-status-watch"),
        ]

    async def _report(self, runner: Runner) -> None:
        while True:
            await self.send(runner_status(runner))
            await asyncio.sleep(STATUS_INTERVAL)

    async def _watch_supervisor(self, runner: Runner) -> None:
        reader = self._reader
        assert reader is not None
        while await reader.read(4096):
            pass
        logger.warning(
            "worker.supervisor_gone: the supervisor exited; shutting down gracefully",
            extra={"pid": os.getpid()},
        )
        runner.stop()

    async def close(self, runner: Runner | None) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if runner is not None:
            await self.send(
                {"type": "final", "processed": runner.info.processed, "failed": runner.info.failed}
            )
        writer = self._writer
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
