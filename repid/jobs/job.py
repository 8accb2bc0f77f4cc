"""`Job`: what to run (an actor name), with which arguments, where, when, and how."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from repid.connections.abc import MessageData
from repid.jobs.buckets import ResultBucket, encode_args_bucket, ttl_seconds
from repid.jobs.headers import JobHeaders
from repid.jobs.magic import bound_connection, current_connection
from repid.jobs.priorities import PrioritiesT
from repid.jobs.queue import Queue
from repid.jobs.schedule import Cron, Every, ScheduleT
from repid.serializers import SerializerT, default_serializer

if TYPE_CHECKING:
    from repid.jobs.cancellation import CancelOutcome
    from repid.jobs.connection import Connection

__all__ = ["Job"]

_JSON = "application/json"


class Job:
    """A job for the actor `name`.

    - `queue`: a `Queue` or a queue name (default `"default"`); declare it before enqueueing.
    - `args`: the actor's arguments (a dict of JSON-serializable values, Pydantic models...).
    - `priority`: `PrioritiesT.HIGH`, `MEDIUM` (default) or `LOW` (brokers that support it).
    - `id_`: a fixed job id; the job is then unique (`is_unique`) and keeps it across
      `enqueue()` calls. Otherwise each `enqueue()` makes a new id.
    - `retries`: how many times a failed (or timed-out) run is retried; then the message is
      dead-lettered. `timeout`: how long one run may take (None: no limit).
    - `args_id` / `result_id`: the ids of the arguments / result buckets (generated UUIDs by
      default). `args_id` without `args` reads the arguments from an existing bucket - e.g. a
      previous job's result (chaining).
    - `args_ttl` (default: no expiry) / `result_ttl` (default: one day): bucket lifetimes.
    - `store_result`: store the result bucket (default: when the connection has a results
      bucket broker). `use_args_bucketer`: put `args` in the arguments bucket instead of the
      message (default: when the connection has an arguments bucket broker).
    - `_connection`: the `Connection` to use instead of the one bound by `app.magic()`.

    When (keywords):

    - `deferred_by` (a `timedelta` or seconds) / `deferred_until` (an aware `datetime`; a naive
      one is refused): the job runs no earlier than that - within a second of it on the
      built-in brokers - from a second to weeks ahead. Retries wait the same way.
    - `cron` (a five-field expression, see `repid.jobs.cron`) with `timezone` (a zoneinfo name,
      UTC by default), or `every` (a `timedelta`, at least a second): a periodic job. A
      `Scheduler` enqueues it at each tick; `enqueue()` runs it once now. Its runs share one
      result bucket (each overwrites the last) unless `result_id` says otherwise, and with an
      `id_` a tick is skipped while the previous run is still queued or running.
    """

    def __init__(
        self,
        name: str,
        queue: str | Queue = "default",
        args: Any = None,
        priority: PrioritiesT = PrioritiesT.MEDIUM,
        id_: str | None = None,
        retries: int = 0,
        timeout: timedelta | float | None = timedelta(minutes=10),
        args_id: str | None = None,
        result_id: str | None = None,
        args_ttl: timedelta | float | None = None,
        result_ttl: timedelta | float | None = timedelta(days=1),
        store_result: bool | None = None,
        use_args_bucketer: bool | None = None,
        _connection: Connection | None = None,
        *,
        serializer: SerializerT = default_serializer,
        deferred_by: timedelta | float | None = None,
        deferred_until: datetime | None = None,
        cron: str | None = None,
        timezone: str | tzinfo | None = None,
        every: timedelta | float | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a job name must be a non-empty string, got {name!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative int, got {retries!r}")
        self.deferred_by = deferred_by
        self.deferred_until = deferred_until
        self._deferred_by_s = _deferral(deferred_by, deferred_until)
        self.schedule: ScheduleT | None = _schedule(cron, timezone, every)
        """When a periodic job ticks (`Cron` or `Every`); None for a one-off job."""
        if self.schedule is not None and (deferred_by is not None or deferred_until is not None):
            raise ValueError("a periodic job (cron= / every=) cannot also be deferred")
        self.name = name
        self._connection = _connection if _connection is not None else bound_connection()
        self.queue = queue if isinstance(queue, Queue) else Queue(queue, self._connection)
        self.args = args
        self.priority = PrioritiesT(priority)
        self.id_ = id_
        self.retries = retries
        self.timeout = timeout
        self._timeout_s = ttl_seconds(timeout) if timeout is not None else None
        self.args_id = args_id if args_id is not None else uuid.uuid4().hex
        self._args_id_given = args_id is not None
        self.schedule_key: str | None = None
        """A periodic job's identity, the same in every process that declares it: its `id_`,
        or its actor, schedule and arguments."""
        if self.schedule is not None:
            self.schedule_key = (
                id_
                if id_ is not None
                else _schedule_key(name, self.schedule, args, args_id, serializer)
            )
        if result_id is None and self.schedule_key is not None:
            # One result bucket for all runs of a periodic job, whichever process enqueued them.
            result_id = "periodic-" + hashlib.sha256(self.schedule_key.encode()).hexdigest()[:24]
        self.result_id = result_id if result_id is not None else uuid.uuid4().hex
        self.args_ttl = args_ttl
        self.result_ttl = result_ttl
        self._args_ttl_s = ttl_seconds(args_ttl)
        self._result_ttl_s = ttl_seconds(result_ttl)
        self.store_result = store_result
        self.use_args_bucketer = use_args_bucketer
        self.serializer = serializer
        self.last_id: str | None = None
        """The id the last `enqueue()` gave the job (its `id_` when it has one)."""
        self.last_due: float | None = None
        """When the last enqueued run is due (a Unix time; None: at once)."""

    @property
    def is_unique(self) -> bool:
        """True when the job has a fixed id (`id_`), so every enqueue sends the same job."""
        return self.id_ is not None

    @property
    def is_periodic(self) -> bool:
        """True for a job declared with `cron=` or `every=`."""
        return self.schedule is not None

    @property
    def connection(self) -> Connection:
        """The connection the job is sent through (`_connection`, else the bound one)."""
        return current_connection(self._connection)

    def due_time(self, now: float | None = None) -> float | None:
        """When a job enqueued at `now` (default: now) is due, as a Unix time; None if at once."""
        if self.deferred_until is not None:
            return self.deferred_until.timestamp()
        if self._deferred_by_s:
            return (time.time() if now is None else now) + self._deferred_by_s
        return None

    def _stores_result(self, connection: Connection) -> bool:
        if self.store_result is None:
            return connection.results_bucket_broker is not None
        if self.store_result and connection.results_bucket_broker is None:
            raise ValueError(
                f"job {self.name!r} has store_result=True but the connection has no "
                "results_bucket_broker"
            )
        return self.store_result

    def _uses_args_bucket(self, connection: Connection) -> bool:
        if self.use_args_bucketer is None:
            return connection.args_bucket_broker is not None
        if self.use_args_bucketer and connection.args_bucket_broker is None:
            raise ValueError(
                f"job {self.name!r} has use_args_bucketer=True but the connection has no "
                "args_bucket_broker"
            )
        return self.use_args_bucketer

    async def enqueue(self) -> str:
        """Publish the job to its queue (delayed when deferred); returns the job id.

        Raises `QueueNotDeclaredError` (a `KeyError`) if the queue was never declared, and
        `DuplicateJobError` for a unique job (`id_`) whose earlier run is still queued,
        delayed or running on the queue (nothing is enqueued then).
        """
        return await self._publish(None, self.connection)

    async def enqueue_tick(self, tick_ms: int, *, connection: Connection | None = None) -> str:
        """Enqueue the run of a periodic job for its tick `tick_ms` (what a `Scheduler` does).

        The run's id is its `id_` (then `DuplicateJobError` means the previous run is still
        pending), else derived from the job and the tick, the same in every process.
        `connection` is used when the job has none of its own (`_connection`).
        """
        if self.schedule_key is None:
            raise ValueError(f"{self!r} is not periodic: declare it with cron= or every=")
        if self._connection is not None or connection is None:
            connection = self.connection
        return await self._publish(tick_ms, connection)

    async def cancel(self) -> CancelOutcome:
        """Cancel the job's last enqueued run (see `Queue.cancel`); needs `id_` or an
        earlier `enqueue()`."""
        job_id = self.last_id if self.last_id is not None else self.id_
        if job_id is None:
            raise ValueError(f"{self!r} has no id to cancel: enqueue it first, or give it an id_")
        return await self.queue.cancel(job_id, due=self.last_due)

    async def _publish(self, tick: int | None, connection: Connection) -> str:
        if not connection.is_open:
            raise RuntimeError(
                "the job connection is not open: use `async with app.magic():` or "
                "`await connection.connect()` first"
            )
        if self.id_ is not None:
            job_id = self.id_
        elif tick is not None:
            digest = hashlib.sha256(f"{self.schedule_key}".encode()).hexdigest()[:16]
            job_id = f"{digest}-{tick}"
        else:
            job_id = uuid.uuid4().hex
        token = uuid.uuid4().hex[:16] if self.is_unique else None
        now = time.time()
        due = self.due_time(now)
        delay = due - now if due is not None and due > now else None
        args_id: str | None = None
        payload = b""
        if self.args is None and self._args_id_given:
            args_id = self.args_id  # arguments already stored (e.g. a previous job's result)
        elif self.args is not None:
            encoded = self.serializer(self.args)
            if self._uses_args_bucket(connection):
                bucket_broker = connection.args_bucket_broker
                assert bucket_broker is not None
                args_id = self.args_id
                await bucket_broker.store_raw(
                    args_id,
                    encode_args_bucket(args_id, encoded, self._args_ttl_s),
                    self._args_ttl_s,
                )
            else:
                payload = encoded
        headers = JobHeaders(
            job_id=job_id,
            attempt=1,
            retries=self.retries,
            timeout=self._timeout_s,
            priority=self.priority,
            args_id=args_id,
            result_id=self.result_id if self._stores_result(connection) else None,
            result_ttl=self._result_ttl_s,
            due=due if delay is not None else None,
            unique_token=token,
            tick=tick,
        ).to_headers(self.name)
        await connection.enqueue_job(
            queue=self.queue.name,
            message=MessageData(payload, headers, _JSON),
            priority=self.priority,
            message_id=job_id,
            unique=self.is_unique,
            delay=delay,
            unique_token=token,
        )
        self.last_id = job_id
        self.last_due = due if delay is not None else None
        return job_id

    @property
    async def result(self) -> ResultBucket | None:
        """The job's result bucket, or None if it is not stored (yet, or at all, or expired)."""
        broker = self.connection.results_bucket_broker
        if broker is None:
            return None
        bucket = await broker.get(self.result_id)
        # An arguments bucket under this id is not a result (yet).
        return bucket if isinstance(bucket, ResultBucket) else None

    def __repr__(self) -> str:
        when = f", schedule={self.schedule!r}" if self.schedule is not None else ""
        return f"Job(name={self.name!r}, queue={self.queue.name!r}, id_={self.id_!r}{when})"


def _deferral(deferred_by: timedelta | float | None, deferred_until: datetime | None) -> float:
    """`deferred_by` in seconds (0 for none), after checking both arguments."""
    if deferred_by is not None and deferred_until is not None:
        raise ValueError("pass deferred_by or deferred_until, not both")
    if deferred_until is not None:
        if not isinstance(deferred_until, datetime):
            raise TypeError(f"deferred_until must be a datetime, got {deferred_until!r}")
        if deferred_until.tzinfo is None or deferred_until.utcoffset() is None:
            raise ValueError(
                f"deferred_until must be an aware datetime (a naive one has no time zone), got "
                f"{deferred_until!r}: use e.g. datetime.now(timezone.utc) + timedelta(hours=1)"
            )
        return 0.0
    if deferred_by is None:
        return 0.0
    if isinstance(deferred_by, bool) or not isinstance(deferred_by, (timedelta, int, float)):
        raise TypeError(f"deferred_by must be a timedelta or seconds, got {deferred_by!r}")
    seconds = deferred_by.total_seconds() if isinstance(deferred_by, timedelta) else deferred_by
    if not seconds >= 0:
        raise ValueError(f"deferred_by must not be negative, got {deferred_by!r}")
    return float(seconds)


def _schedule(
    cron: str | None, zone: str | tzinfo | None, every: timedelta | float | None
) -> ScheduleT | None:
    if cron is not None and every is not None:
        raise ValueError("pass cron= or every=, not both")
    if cron is not None:
        return Cron(cron, zone)
    if zone is not None:
        raise ValueError("timezone= only applies to cron= (every= counts from the Unix epoch)")
    if every is not None:
        return Every(every)
    return None


def _schedule_key(
    name: str, schedule: ScheduleT, args: Any, args_id: str | None, serializer: SerializerT
) -> str:
    if args is not None:
        what = hashlib.sha256(serializer(args)).hexdigest()[:16]
    elif args_id is not None:
        what = f"args-id {args_id}"
    else:
        what = "no args"
    return f"{name} {schedule.key} {what}"
