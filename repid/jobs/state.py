"""Shared job state: unique-id claims, cancellation marks and scheduler ticks, per queue.

Uniqueness, cancellation and several schedulers at once need a little state that every
producer, worker and scheduler of a queue sees, changed atomically. A `JobStateStoreT` keeps
it; a broker or bucket broker offers one through the `JobStateProviderT` protocol
(`.job_state`). `Connection.job_state` picks, in this order, the message broker's own store
(in-memory: this process; Redis: the same Redis), then the arguments' and the results' bucket
broker's (`RedisBucketBroker`: its Redis; `InMemoryBucketBroker`: this process). RabbitMQ has
no such store: with `RabbitMessageBroker`, give the connection a `RedisBucketBroker` (see
`repid.jobs.brokers.rabbit`).

What is kept, per queue (each store names its keys; Redis: `repid.connections.redis.keys`):

* `unique:ID` - a claim held from the enqueue of a unique job (`Job(id_=...)`) until its
  last outcome (success, the last failure, cancellation). Its value starts with the enqueue's
  token and a colon (`TOKEN:...`, see `claim_value`); what follows is the store's (the due
  time, where the job waits);
* `schedule:KEY` - the last tick (Unix milliseconds) a scheduler enqueued for the periodic job
  KEY: advancing it is the claim that makes each tick enqueued once, whichever scheduler
  sees it first;
* cancellation marks - ids of jobs asked to stop, with an expiry; workers poll them and drop a
  marked job on receipt or cancel it while it runs.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = [
    "InMemoryJobState",
    "JobStateProviderT",
    "JobStateStoreT",
    "claim_token",
    "claim_value",
    "cancel_mark",
    "schedule_name",
    "unique_name",
]


def unique_name(job_id: str) -> str:
    """The state name of a unique job's claim."""
    return f"unique:{job_id}"


def claim_value(token: str, rest: str = "") -> str:
    """A unique claim's value: `TOKEN:REST`."""
    return f"{token}:{rest}"


def claim_token(value: str | None) -> tuple[str, str] | None:
    """(token, rest) of a unique claim's value, or None (no claim, or not one of ours)."""
    if not value or ":" not in value:
        return None
    token, _, rest = value.partition(":")
    return token, rest


def cancel_mark(job_id: str, token: str | None = None) -> str:
    """A cancellation mark: the job id, or `ID@TOKEN` for one enqueue of a unique job."""
    return job_id if token is None else f"{job_id}@{token}"


def schedule_name(key: str) -> str:
    """The state name of a periodic job's last enqueued tick."""
    return f"schedule:{key}"


@runtime_checkable
class JobStateStoreT(Protocol):
    """Atomic per-queue state (see the module docstring). Every method is one atomic step."""

    async def claim(self, queue: str, name: str, value: str, ttl: float | None = None) -> bool:
        """Set `name` to `value` unless it is set; True if this call set it. `ttl` in seconds
        (None: until released)."""
        ...

    async def get(self, queue: str, name: str) -> str | None:
        """The value of a claim, if it is set."""
        ...

    async def release(self, queue: str, name: str, *, owner: str | None = None) -> None:
        """Remove the claim `name` (nothing happens if it is not set); with `owner`, only if
        its value starts with `owner`."""
        ...

    async def advance(self, queue: str, name: str, value: int) -> tuple[bool, int | None]:
        """Set the counter `name` to `value` if it is unset or smaller. Returns (whether it was
        set, the value it had before: None if unset)."""
        ...

    async def rewind(self, queue: str, name: str, value: int, previous: int | None) -> bool:
        """Undo an `advance` to `value`: put `previous` back (None: unset) if the counter
        still holds `value`. True if it did."""
        ...

    async def mark_cancelled(self, queue: str, mark: str, expires: float) -> None:
        """Add the cancellation mark `mark` (see `cancel_mark`) until `expires` (Unix time)."""
        ...

    async def cancelled(self, queue: str) -> frozenset[str]:
        """The marks (not expired) on `queue`."""
        ...

    async def unmark_cancelled(self, queue: str, mark: str) -> None:
        """Remove a mark (the worker dropped or stopped its job)."""
        ...


@runtime_checkable
class JobStateProviderT(Protocol):
    """A broker or bucket broker that keeps job state (`Connection.job_state` looks for it)."""

    @property
    def job_state(self) -> JobStateStoreT: ...


class InMemoryJobState:
    """A `JobStateStoreT` in this process's memory (in-memory brokers use it): shared by every
    producer, worker and scheduler of the process, and by no other process."""

    def __init__(self) -> None:
        self._claims: dict[tuple[str, str], tuple[str, float | None]] = {}
        self._counters: dict[tuple[str, str], int] = {}
        self._marks: dict[str, dict[str, float]] = {}

    async def claim(self, queue: str, name: str, value: str, ttl: float | None = None) -> bool:
        key = (queue, name)
        found = self._claims.get(key)
        now = time.monotonic()
        if found is not None and (found[1] is None or found[1] > now):
            return False
        self._claims[key] = (value, None if ttl is None else now + ttl)
        return True

    async def get(self, queue: str, name: str) -> str | None:
        found = self._claims.get((queue, name))
        if found is None:
            return None
        if found[1] is not None and found[1] <= time.monotonic():
            del self._claims[(queue, name)]
            return None
        return found[0]

    async def release(self, queue: str, name: str, *, owner: str | None = None) -> None:
        found = self._claims.get((queue, name))
        if found is not None and (owner is None or found[0].startswith(owner)):
            del self._claims[(queue, name)]

    async def advance(self, queue: str, name: str, value: int) -> tuple[bool, int | None]:
        previous = self._counters.get((queue, name))
        if previous is not None and previous >= value:
            return False, previous
        self._counters[(queue, name)] = value
        return True, previous

    async def rewind(self, queue: str, name: str, value: int, previous: int | None) -> bool:
        key = (queue, name)
        if self._counters.get(key) != value:
            return False
        if previous is None:
            del self._counters[key]
        else:
            self._counters[key] = previous
        return True

    async def mark_cancelled(self, queue: str, mark: str, expires: float) -> None:
        self._marks.setdefault(queue, {})[mark] = expires

    async def cancelled(self, queue: str) -> frozenset[str]:
        marks = self._marks.get(queue)
        if not marks:
            return frozenset()
        now = time.time()
        for job_id in [j for j, expires in marks.items() if expires <= now]:
            del marks[job_id]
        return frozenset(marks)

    async def unmark_cancelled(self, queue: str, mark: str) -> None:
        marks = self._marks.get(queue)
        if marks is not None:
            marks.pop(mark, None)
