"""`Scheduler`: enqueues periodic jobs (`Job(..., cron=...)`, `Job(..., every=...)`) at their
ticks. Any number of schedulers may run at once - one beside every worker replica - and each
tick is still enqueued once.

    scheduler = Scheduler(
        [
            Job("send_report", cron="*/5 * * * *", timezone="Europe/Berlin"),
            Job("heartbeat", every=timedelta(seconds=30)),
        ],
        app=app,
    )
    await scheduler.run()          # until scheduler.stop(); or `async with scheduler: ...`

`repid run app:app --scheduler` runs the schedulers created with `app=app` in each worker
process (or alone, for an app without message-layer servers).

How several schedulers agree. Ticks are Unix milliseconds that every process computes alike
(`repid.jobs.schedule`). For each periodic job the connection's job state
(`repid.jobs.state`) keeps the last tick enqueued, and a scheduler enqueues tick T only after
*advancing* that value to T - an atomic "set if greater" in the store (a Lua script on Redis, a
step of the event loop in memory). Exactly one scheduler wins each tick; the others see it
taken and move on. Should the enqueue fail, the tick is put back (`rewind`) and tried again.
(A scheduler killed between winning a tick and enqueueing it loses that tick.)

Missed ticks. A tick is enqueued on its own while it is at most `grace` seconds old (default
5): a scheduler that was busy for a moment catches up tick by tick. Ticks older than that were
missed (no scheduler ran): the first scheduler back enqueues only the most recent of them,
once, then carries on with the next ticks. A periodic job seen for the first time starts with
its next tick (a tick that passed before it existed is not run).

Where the state lives, per job broker: in-memory - in the process (schedulers of one process
share it); Redis - the same Redis (`{repid:QUEUE}:schedule:KEY`); RabbitMQ - the connection's
`RedisBucketBroker` (a scheduler refuses to start without one:
`JobStateNotConfiguredError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from repid.jobs.errors import DuplicateJobError
from repid.jobs.job import Job
from repid.jobs.magic import bound_connection, current_connection
from repid.jobs.state import JobStateStoreT, schedule_name

if TYPE_CHECKING:
    from repid.jobs.connection import Connection

__all__ = ["Scheduler", "schedulers_of"]

logger = logging.getLogger("repid.scheduler")

_APPS: weakref.WeakKeyDictionary[Any, list[Scheduler]] = weakref.WeakKeyDictionary()
_MAX_CATCH_UP = 100  # ticks a busy scheduler enqueues one by one at most


def schedulers_of(app: Any) -> list[Scheduler]:
    """The schedulers created with `Scheduler(..., app=app)` (what `repid run --scheduler`
    runs)."""
    return list(_APPS.get(app, ()))


class Scheduler:
    """Enqueues periodic jobs at their ticks (see the module docstring).

    - `jobs`: periodic `Job`s (`cron=` or `every=`); more with `add()`.
    - `app`: the `Repid(Connection(...))` app whose connection to use; the scheduler is then
      also run by `repid run app:app --scheduler`.
    - `_connection`: a `Connection` to use instead (default: the app's, else the bound one).
    - `grace`: seconds a tick may be late and still be enqueued on its own (see "Missed
      ticks").
    - `max_sleep`: the longest the scheduler sleeps between looks (it wakes at each tick).
    - `clock`: the time source, Unix seconds (default `time.time`; for tests).
    """

    def __init__(
        self,
        jobs: Iterable[Job] = (),
        *,
        app: Any | None = None,
        _connection: Connection | None = None,
        grace: float = 5.0,
        max_sleep: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if grace < 0:
            raise ValueError("grace must not be negative")
        if max_sleep <= 0:
            raise ValueError("max_sleep must be positive")
        self.app = app
        self.grace = grace
        self.max_sleep = max_sleep
        self.clock = clock
        self._connection = _connection
        self._jobs: dict[str, Job] = {}
        self._seen: dict[str, int] = {}
        self._backoff: dict[str, tuple[int, float]] = {}  # key -> (failures, retry at)
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        for job in jobs:
            self.add(job)
        if app is not None:
            _APPS.setdefault(app, []).append(self)

    # -- declaring -------------------------------------------------------------------------

    def add(self, job: Job) -> Job:
        """Add a periodic job; returns it. A job with the same identity replaces the other."""
        if job.schedule_key is None:
            raise ValueError(f"{job!r} is not periodic: declare it with cron= or every=")
        self._jobs[job.schedule_key] = job
        return job

    @property
    def jobs(self) -> list[Job]:
        """The periodic jobs."""
        return list(self._jobs.values())

    @property
    def connection(self) -> Connection:
        """The connection jobs are enqueued through (see the class docstring)."""
        if self._connection is not None:
            return self._connection
        if self.app is not None and getattr(self.app, "connection", None) is not None:
            return self.app.connection  # type: ignore[no-any-return]
        found = bound_connection()
        return found if found is not None else current_connection()

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Enqueue the jobs at their ticks until `stop()` (connecting the connection first if
        it is not open, and disconnecting it at the end then)."""
        connection = self.connection
        opened = False
        if not connection.is_open:
            await connection.connect()
            opened = True
        self._stop = stop = asyncio.Event()
        try:
            store = connection.require_job_state("a Scheduler")
            logger.info(
                "scheduler.started: %d periodic job(s): %s",
                len(self._jobs),
                ", ".join(f"{j.name} ({j.schedule!r})" for j in self._jobs.values()) or "none",
                extra={"jobs": [j.schedule_key for j in self._jobs.values()]},
            )
            while not stop.is_set():
                # A job whose look fails is logged and backs off on its own (see run_pending);
                # the others keep their ticks.
                await self.run_pending(store=store, raise_errors=False)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._sleep_time())
        finally:
            self._stop = None
            logger.info("scheduler.stopped", extra={"jobs": list(self._jobs)})
            if opened:
                await connection.disconnect()

    def stop(self) -> None:
        """End `run()` (after the enqueue in progress, if any)."""
        if self._stop is not None:
            self._stop.set()

    async def __aenter__(self) -> Scheduler:
        """Run the scheduler in a background task for the `async with` block."""
        self.connection.require_job_state("a Scheduler")  # a missing store fails here, not later
        self._task = asyncio.get_running_loop().create_task(self.run(), name="repid-scheduler")
        await asyncio.sleep(0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        self.stop()
        if task is not None:
            if self._stop is None and not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _sleep_time(self) -> float:
        now_ms = _ms(self.clock())
        due = [job.schedule.next_after(now_ms) for job in self._jobs.values() if job.schedule]
        if not due:
            return self.max_sleep
        # A couple of milliseconds past the tick, so that it is not seen a hair early.
        return max(0.0, min(self.max_sleep, (min(due) - now_ms + 2) / 1000))

    async def run_pending(
        self, *, store: JobStateStoreT | None = None, raise_errors: bool = True
    ) -> list[str]:
        """Enqueue every tick that is due now and not yet taken; return the ids enqueued.

        A job whose enqueue (or state store) fails is logged (`scheduler.error`), its tick
        given back, and it is not looked at again for a backoff of 0.5 s doubling to 30 s
        (the other jobs go on); with `raise_errors` the first such error is raised at the end.
        """
        connection = self.connection
        if store is None:
            store = connection.require_job_state("a Scheduler")
        enqueued: list[str] = []
        errors: list[Exception] = []
        now = self.clock()
        for key, job in list(self._jobs.items()):
            failures, retry_at = self._backoff.get(key, (0, 0.0))
            if now < retry_at:
                continue
            try:
                enqueued += await self._fire(key, job, connection, store)
            except Exception as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures - 1, 6))
                self._backoff[key] = (failures, now + delay)
                logger.warning(
                    "scheduler.error: %s: %s: %s; trying again in %.1f s",
                    job.name,
                    type(exc).__name__,
                    exc,
                    delay,
                    extra={
                        "job": key,
                        "actor": job.name,
                        "channel": job.queue.name,
                        "failures": failures,
                        "error": type(exc).__name__,
                    },
                )
                errors.append(exc)
            else:
                self._backoff.pop(key, None)
        if errors and raise_errors:
            raise errors[0]
        return enqueued

    async def _fire(
        self, key: str, job: Job, connection: Connection, store: JobStateStoreT
    ) -> list[str]:
        schedule = job.schedule
        assert schedule is not None
        now = _ms(self.clock())
        latest = schedule.latest_at_or_before(now)
        seen = self._seen.get(key)
        if latest is None or (seen is not None and latest <= seen):
            return []
        grace = self.grace * 1000
        if seen is None:
            candidates = [latest]
        else:
            candidates = []
            tick = schedule.next_after(seen)
            while tick <= latest and len(candidates) < _MAX_CATCH_UP:
                if now - tick <= grace:
                    candidates.append(tick)
                tick = schedule.next_after(tick)
            if not candidates:
                candidates = [latest]  # only missed ticks: the latest of them, once
        queue = job.queue.name
        name = schedule_name(key)
        enqueued: list[str] = []
        for tick in candidates:
            if self._seen.get(key, tick - 1) >= tick:
                continue
            advanced, previous = await store.advance(queue, name, tick)
            if not advanced:
                # Taken by another scheduler (or a later tick is): skip up to what is stored.
                self._seen[key] = max(tick, previous or tick)
                continue
            self._seen[key] = tick
            if previous is None and now - tick > grace:
                logger.info(
                    "scheduler.first_tick: %s starts with its next tick",
                    job.name,
                    extra={"job": key, "actor": job.name, "channel": queue},
                )
                continue
            if previous is not None and schedule.next_after(previous) < tick and seen is None:
                logger.warning(
                    "scheduler.missed: %s missed its ticks since %s (no scheduler ran); "
                    "running it once now",
                    job.name,
                    _iso(schedule.next_after(previous)),
                    extra={"job": key, "actor": job.name, "channel": queue},
                )
            try:
                job_id = await job.enqueue_tick(tick, connection=connection)
            except DuplicateJobError:
                logger.info(
                    "scheduler.skipped: the %s tick of %s: its previous run is still queued or "
                    "running",
                    _iso(tick),
                    job.name,
                    extra={"job": key, "actor": job.name, "channel": queue, "tick": tick},
                )
                continue
            except BaseException:
                # Not enqueued: give the tick back, so that the next look tries it again.
                with contextlib.suppress(Exception):
                    await store.rewind(queue, name, tick, previous)
                if previous is None:
                    self._seen.pop(key, None)
                else:
                    self._seen[key] = previous
                raise
            logger.debug(
                "scheduler.enqueued: %s for its %s tick as %s",
                job.name,
                _iso(tick),
                job_id,
                extra={"job": key, "actor": job.name, "channel": queue, "tick": tick},
            )
            enqueued.append(job_id)
        return enqueued

    def __repr__(self) -> str:
        return f"Scheduler({len(self._jobs)} periodic job(s))"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _iso(tick_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(tick_ms / 1000))
