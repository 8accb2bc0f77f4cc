"""In-memory job brokers, for tests and local development (nothing survives the process).

`InMemoryMessageBroker` is the message layer's `InMemoryServer` plus queue declaration,
priorities (HIGH before MEDIUM before LOW, first-in first-out within a level) and:

* delayed delivery (deferred jobs and retries): a timer on the running event loop queues the
  message when due, even if the broker was disconnected meanwhile (a worker stopped and
  started again in the process still gets it); a delayed message is lost if the event loop
  ends before it is due;
* job state (`repid.jobs.state`) in this process: a unique job (`Job(id_=...)`) is refused
  (`DuplicateJobError`) while one with its id is delayed, queued or running; schedulers of the
  process share their ticks; cancellation marks;
* cancellation: a delayed or queued job is removed (`withdraw_job`); a running one is marked.

`InMemoryBucketBroker` keeps buckets in a dict. TTLs are honoured: an expired bucket is
dropped when read, and every `purge_interval` seconds a store also sweeps all expired ones, so
buckets nobody reads do not pile up forever.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from repid.connections.abc import MessageData
from repid.connections.in_memory import InMemoryServer
from repid.jobs.buckets import AnyBucketT, decode_bucket
from repid.jobs.errors import DuplicateJobError, QueueNotDeclaredError
from repid.jobs.headers import UNIQUE
from repid.jobs.priorities import PrioritiesT
from repid.jobs.state import InMemoryJobState, claim_value, unique_name

__all__ = ["InMemoryBucketBroker", "InMemoryMessageBroker"]

# PrioritiesT -> InMemoryServer's `priority` (0 is what plain message-layer messages get).
_PRIORITY = {PrioritiesT.HIGH: 1, PrioritiesT.MEDIUM: 0, PrioritiesT.LOW: -1}


class InMemoryMessageBroker(InMemoryServer):
    """A job-layer message broker in this process's memory (see the module docstring)."""

    supports_delayed_publish = True
    supports_priorities = True
    supports_unique_jobs = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._declared: set[str] = set()
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._job_state = InMemoryJobState()

    @property
    def job_state(self) -> InMemoryJobState:
        """This process's job state (uniqueness, cancellation marks, scheduler ticks)."""
        return self._job_state

    async def declare_queue(self, name: str) -> None:
        self._declared.add(name)

    async def is_declared(self, name: str) -> bool:
        return name in self._declared

    async def publish_job(
        self,
        *,
        queue: str,
        message: MessageData,
        priority: PrioritiesT,
        message_id: str,
        unique: bool = False,
        delay: float | None = None,
    ) -> None:
        if queue not in self._declared:
            raise QueueNotDeclaredError(queue)
        level = _PRIORITY[PrioritiesT(priority)]
        if unique:
            token = (message.headers or {}).get(UNIQUE, "")
            if not await self._job_state.claim(queue, unique_name(message_id), claim_value(token)):
                raise DuplicateJobError(message_id, queue)
        if delay is not None and delay > 0:
            key = (queue, message_id)

            def due() -> None:
                self._timers.pop(key, None)
                self.put(queue, message, message_id=message_id, priority=level)

            previous = self._timers.pop(key, None)
            if previous is not None:  # the same job delayed again (a retry): the last one wins
                previous.cancel()
            self._timers[key] = asyncio.get_running_loop().call_later(delay, due)
            return
        await self.publish(
            channel=queue,
            message=message,
            server_specific_parameters={"message_id": message_id, "priority": level},
        )

    async def withdraw_job(self, queue: str, job_id: str) -> bool:
        """Remove the delayed or queued (not yet delivered) job `job_id`; True if it was."""
        timer = self._timers.pop((queue, job_id), None)
        if timer is not None:
            timer.cancel()
            removed = True
        else:
            removed = self.withdraw(queue, job_id)
        if removed:
            await self._job_state.release(queue, unique_name(job_id))
        return removed

    @property
    def scheduled(self) -> int:
        """How many delayed messages are not due yet."""
        return len(self._timers)

    def is_delayed(self, queue: str, job_id: str) -> bool:
        """Whether the job `job_id` waits for its due time on `queue`."""
        return (queue, job_id) in self._timers


class InMemoryBucketBroker:
    """Buckets in a dict, with TTLs (see the module docstring).

    `use_result_bucket=True` marks the broker as the results store; the same broker can serve
    both roles (pass it as `args_bucket_broker` and `results_bucket_broker`) so that results
    can be read back as arguments for chaining.
    """

    def __init__(self, use_result_bucket: bool = False, *, purge_interval: float = 60.0) -> None:
        self.use_result_bucket = use_result_bucket
        self.purge_interval = purge_interval
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._connected = False
        self._next_purge = time.monotonic() + purge_interval
        self._job_state = InMemoryJobState()

    @property
    def job_state(self) -> InMemoryJobState:
        """Job state in this process, for a message broker without its own (see
        `repid.jobs.state`)."""
        return self._job_state

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False

    def __len__(self) -> int:
        """Stored buckets, expired ones not yet swept included."""
        return len(self._data)

    async def store_raw(self, id_: str, raw: bytes, ttl: float | None) -> None:
        now = time.monotonic()
        if now >= self._next_purge:
            self.purge(now)
        self._data[id_] = (raw, None if ttl is None else now + ttl)

    async def get_raw(self, id_: str) -> bytes | None:
        found = self._data.get(id_)
        if found is None:
            return None
        raw, expires = found
        if expires is not None and time.monotonic() >= expires:
            del self._data[id_]
            return None
        return raw

    async def get(self, id_: str) -> AnyBucketT | None:
        raw = await self.get_raw(id_)
        return None if raw is None else decode_bucket(raw)

    async def delete(self, id_: str) -> None:
        self._data.pop(id_, None)

    def purge(self, now: float | None = None) -> int:
        """Drop every expired bucket now; return how many."""
        now = time.monotonic() if now is None else now
        expired = [k for k, (_, exp) in self._data.items() if exp is not None and now >= exp]
        for key in expired:
            del self._data[key]
        self._next_purge = now + self.purge_interval
        return len(expired)
