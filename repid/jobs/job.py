"""`Job`: what to run (an actor name), with which arguments, where, and how."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from repid.data import MessageData
from repid.jobs.buckets import ResultBucket, encode_args_bucket, ttl_seconds
from repid.jobs.headers import JobHeaders
from repid.jobs.magic import bound_connection, current_connection
from repid.jobs.priorities import PrioritiesT
from repid.jobs.queue import Queue
from repid.serializers import SerializerT, default_serializer

if TYPE_CHECKING:
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
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a job name must be a non-empty string, got {name!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative int, got {retries!r}")
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
        self.result_id = result_id if result_id is not None else uuid.uuid4().hex
        self.args_ttl = args_ttl
        self.result_ttl = result_ttl
        self._args_ttl_s = ttl_seconds(args_ttl)
        self._result_ttl_s = ttl_seconds(result_ttl)
        self.store_result = store_result
        self.use_args_bucketer = use_args_bucketer
        self.serializer = serializer

    @property
    def is_unique(self) -> bool:
        """True when the job has a fixed id (`id_`), so every enqueue sends the same job."""
        return self.id_ is not None

    @property
    def connection(self) -> Connection:
        return current_connection(self._connection)

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
        """Publish the job to its queue; returns the id of the message (the job id).

        Raises `QueueNotDeclaredError` (a `KeyError`) if the queue was never declared.
        """
        connection = self.connection
        if not connection.is_open:
            raise RuntimeError(
                "the job connection is not open: use `async with app.magic():` or "
                "`await connection.connect()` first"
            )
        job_id = self.id_ if self.id_ is not None else uuid.uuid4().hex
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
        ).to_headers(self.name)
        await connection.publish_job(
            queue=self.queue.name,
            message=MessageData(payload, headers, _JSON),
            priority=self.priority,
            message_id=job_id,
            unique=self.is_unique,
        )
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
        return f"Job(name={self.name!r}, queue={self.queue.name!r}, id_={self.id_!r})"
