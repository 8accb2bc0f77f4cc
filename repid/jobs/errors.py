"""Errors of the job layer."""

from __future__ import annotations

from repid.errors import RepidError

__all__ = [
    "ArgsBucketNotFoundError",
    "ConnectionNotBoundError",
    "DuplicateJobError",
    "JobCancelledError",
    "JobStateNotConfiguredError",
    "JobTimeoutError",
    "QueueNotDeclaredError",
]


class QueueNotDeclaredError(RepidError, KeyError):
    """A job was enqueued to a queue that was never declared on the broker.

    A `KeyError` subclass (its `args[0]` is the queue name) with a message that says what to do.
    """

    def __init__(self, queue: str) -> None:
        super().__init__(queue)
        self.queue = queue

    def __str__(self) -> str:
        return (
            f"{self.queue!r}: queue {self.queue!r} is not declared on the message broker; "
            f"declare it first with `await Queue({self.queue!r}).declare()` (a Worker declares "
            "the queues of its actors when it starts)"
        )


class ConnectionNotBoundError(RepidError, RuntimeError):
    """No `Connection` was passed and none is bound by `app.magic()` / `magic_connect()`."""


class ArgsBucketNotFoundError(RepidError, KeyError):
    """A job's arguments bucket is missing (never stored, expired or deleted)."""

    def __init__(self, bucket_id: str) -> None:
        super().__init__(bucket_id)
        self.bucket_id = bucket_id

    def __str__(self) -> str:
        return (
            f"arguments bucket {self.bucket_id!r} was not found in the arguments bucket broker "
            "(never stored, expired or deleted)"
        )


class JobTimeoutError(RepidError, TimeoutError):
    """A job ran longer than its `timeout`; it was cancelled (and retried if it has retries)."""


class DuplicateJobError(RepidError):
    """A unique job (`Job(id_=...)`) was enqueued while one with its id is still queued,
    delayed or running on that queue: nothing was enqueued.

    `job_id` and `queue` name the job. The claim ends with the job's last outcome (success, the
    last failed attempt, cancellation); `await Queue(queue).cancel(job_id)` ends it early.
    """

    def __init__(self, job_id: str, queue: str) -> None:
        super().__init__(job_id, queue)
        self.job_id = job_id
        self.queue = queue

    def __str__(self) -> str:
        return (
            f"job {self.job_id!r} is already queued, delayed or running on queue {self.queue!r}; "
            "a unique job (Job(id_=...)) is enqueued again only after its last outcome"
        )


class JobCancelledError(RepidError):
    """A job was cancelled (`job.cancel()` / `Queue.cancel(id_)`): the text its result bucket
    records, with `ResultBucket.cancelled` true."""


class JobStateNotConfiguredError(RepidError, RuntimeError):
    """A feature needs shared job state (uniqueness, cancelling a queued or running job, a
    scheduler) and the connection has no store for it: with `RabbitMessageBroker`, add a
    `RedisBucketBroker` to the `Connection` (see `repid.jobs.state`)."""
