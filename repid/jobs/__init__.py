"""The job layer: `Connection`, `Job`, `Queue`, `Worker`, buckets and retries.

Built on the message layer: a job is a message whose `topic` header names the actor and whose
`job-*` headers (see `repid.jobs.headers`) carry its id, attempt, retries, timeout and bucket
ids; a `Worker` is a `Router` run by a message-layer `Repid` app with `JobMiddleware`; the
message brokers are message-layer servers. `RedisMessageBroker`, `RedisBucketBroker` and
`RabbitMessageBroker` load on first use (they need the `redis` / `amqp` extras).

Jobs can be deferred (`deferred_by=`, `deferred_until=`), periodic (`cron=`, `every=`, run by a
`Scheduler`), unique (`id_=`) and cancelled (`job.cancel()`, `Queue.cancel(id_)`); see
`repid.jobs.scheduler`, `repid.jobs.cancellation` and `repid.jobs.state`.

Per broker:

* `InMemoryMessageBroker`: priorities honoured (HIGH, MEDIUM, LOW; FIFO within a level);
  delays (deferred jobs, retries) by an event-loop timer; job state in the process.
* `RedisMessageBroker`: no priorities (streams are FIFO); delays in a sorted set that the
  workers move into the stream when due (Lua, atomic); job state in the same Redis.
* `RabbitMessageBroker`: the AMQP `priority` header, honoured by queues that support
  priorities; delays in a chain of fixed-TTL queues inside RabbitMQ; job state in the
  connection's `RedisBucketBroker` (see its docstring).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repid._lazy import load_lazy
from repid.jobs.brokers.base import MessageBrokerT
from repid.jobs.brokers.in_memory import InMemoryBucketBroker, InMemoryMessageBroker
from repid.jobs.buckets import ArgsBucket, BucketBrokerT, ResultBucket
from repid.jobs.cancellation import CancelOutcome
from repid.jobs.connection import Connection
from repid.jobs.cron import CronSyntaxError
from repid.jobs.errors import (
    ArgsBucketNotFoundError,
    ConnectionNotBoundError,
    DuplicateJobError,
    JobCancelledError,
    JobStateNotConfiguredError,
    JobTimeoutError,
    QueueNotDeclaredError,
)
from repid.jobs.job import Job
from repid.jobs.middleware import JobMiddleware
from repid.jobs.priorities import PrioritiesT
from repid.jobs.queue import Queue
from repid.jobs.retry import RetryPolicyT, default_retry_policy_factory
from repid.jobs.scheduler import Scheduler
from repid.jobs.state import JobStateStoreT
from repid.jobs.worker import Worker

if TYPE_CHECKING:
    from repid.jobs.brokers.rabbit import RabbitMessageBroker
    from repid.jobs.brokers.redis import RedisBucketBroker, RedisMessageBroker

__all__ = [
    "ArgsBucket",
    "ArgsBucketNotFoundError",
    "BucketBrokerT",
    "CancelOutcome",
    "Connection",
    "ConnectionNotBoundError",
    "CronSyntaxError",
    "DuplicateJobError",
    "InMemoryBucketBroker",
    "InMemoryMessageBroker",
    "Job",
    "JobCancelledError",
    "JobMiddleware",
    "JobStateNotConfiguredError",
    "JobStateStoreT",
    "JobTimeoutError",
    "MessageBrokerT",
    "PrioritiesT",
    "Queue",
    "QueueNotDeclaredError",
    "RabbitMessageBroker",
    "RedisBucketBroker",
    "RedisMessageBroker",
    "ResultBucket",
    "RetryPolicyT",
    "Scheduler",
    "Worker",
    "default_retry_policy_factory",
]

_LAZY = {
    "RedisMessageBroker": ("repid.jobs.brokers.redis", "redis"),
    "RedisBucketBroker": ("repid.jobs.brokers.redis", "redis"),
    "RabbitMessageBroker": ("repid.jobs.brokers.rabbit", "amqp"),
}


def __getattr__(name: str) -> Any:
    # Broker client libraries (redis, grpc) load only when their broker is first used, so
    # `import repid.jobs` works with nothing but the core installed.
    return load_lazy(globals(), "repid.jobs", name, _LAZY)
