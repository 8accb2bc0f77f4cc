"""Cancelling jobs: the outcome a caller gets, and the worker side that honours marks.

`await job.cancel()` / `await Queue(q).cancel(id_)` first asks the message broker to take the
job off the broker (`JobWithdrawerT`: in-memory and Redis remove a delayed job, and a queued one
they can find - in-memory any, Redis a unique one - before a worker has it). Otherwise the id is
marked cancelled in the connection's job state (`repid.jobs.state`), and every worker of the
queue, which polls the marks every `cancel_poll_interval` seconds (`Worker(...)`, default 0.5):

* drops a marked job when it receives it: acked, not run, logged as `job.cancelled`, its result
  bucket (if it stores one) saying `cancelled`;
* stops a marked job that is running: its actor's task is cancelled, then the same as above. A
  synchronous actor running in a thread or a process cannot be interrupted: it runs to its
  end, and its result is discarded for the cancelled one.

A mark lasts until a worker acts on it, or 7 days after the job was due (after the cancel
when the due time is unknown - see `Queue.cancel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from repid.jobs.state import JobStateStoreT, cancel_mark

__all__ = ["MARK_LIFETIME", "CancelOutcome", "CancelWatcher", "JobWithdrawerT"]

logger = logging.getLogger("repid.jobs")

MARK_LIFETIME = 7 * 24 * 3600.0
"""Seconds a cancellation mark outlives the job's due time (or the cancel)."""


class CancelOutcome(str, enum.Enum):
    """What `cancel()` did."""

    REMOVED = "removed"
    """The job was waiting (delayed or queued) and is off the broker: it will not run."""
    MARKED = "marked"
    """The job was not found where the broker could remove it (queued on RabbitMQ, a queued
    non-unique job on Redis, running, already finished): it is marked, so a worker drops it
    on receipt or stops it if it runs. Nothing happens if it already finished."""


@runtime_checkable
class JobWithdrawerT(Protocol):
    """A message broker that can take a delayed or queued job off the broker by its id."""

    async def withdraw_job(self, queue: str, job_id: str) -> bool:
        """Remove the job if it waits (delayed, or queued and not delivered yet); True if it
        was removed. The broker releases its unique claim too."""
        ...


class CancelWatcher:
    """A worker's view of the cancellation marks of its queues (see the module docstring).

    `running` maps (queue, job id) to the task running it and its unique token (if any); the
    watcher cancels a marked one and records it in `stopping`, so that the job middleware
    tells the cancellation apart from a shutdown or a timeout.
    """

    def __init__(self, store: JobStateStoreT, queues: Iterable[str], interval: float) -> None:
        if interval <= 0:
            raise ValueError("cancel_poll_interval must be positive")
        self.store = store
        self.queues = tuple(dict.fromkeys(queues))
        self.interval = interval
        self.marks: dict[str, frozenset[str]] = dict.fromkeys(self.queues, frozenset())
        self.running: dict[tuple[str, str], tuple[asyncio.Task[Any], str | None]] = {}
        self.stopping: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    def mark_of(self, queue: str, job_id: str, token: str | None) -> str | None:
        """The mark that cancels this enqueue of `job_id` (None: not marked)."""
        marks = self.marks.get(queue)
        if not marks:
            return None
        if job_id in marks:
            return job_id
        if token is not None:
            mark = cancel_mark(job_id, token)
            if mark in marks:
                return mark
        return None

    async def start(self) -> None:
        """Read the marks once (so that the first messages are checked), then keep polling."""
        await self.poll()
        self._task = asyncio.get_running_loop().create_task(
            self._loop(), name="repid-cancel-watcher"
        )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def poll(self) -> None:
        """Refresh the marks; cancel the running jobs that are marked."""
        for queue in self.queues:
            try:
                marks = await self.store.cancelled(queue)
            except Exception as exc:  # a connection blip: keep the last known marks
                logger.warning(
                    "job.cancel_poll_failed: %s: %s",
                    queue,
                    exc,
                    extra={"channel": queue, "error": type(exc).__name__},
                )
                continue
            self.marks[queue] = marks
            if not marks:
                continue
            for key, (task, token) in list(self.running.items()):
                if key[0] != queue or key in self.stopping or task.done():
                    continue
                job_id = key[1]
                if self.mark_of(queue, job_id, token) is not None:
                    logger.info(
                        "job.cancelling: job %s on %r is running; stopping it",
                        job_id,
                        queue,
                        extra={"job_id": job_id, "channel": queue},
                    )
                    self.stopping.add(key)
                    task.cancel()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.poll()
