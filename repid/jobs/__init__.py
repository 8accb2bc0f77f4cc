"""The job layer: `Connection`, `Job`, `Queue`, `Worker`, buckets and retries.

Built on the message layer: a job is a message whose `topic` header names the actor and whose
`job-*` headers (see `repid.jobs.headers`) carry its id, attempt, retries, timeout and bucket
ids; a `Worker` is a `Router` run by a message-layer `Repid` app with `JobMiddleware`; the
message brokers are message-layer servers. `RedisMessageBroker`, `RedisBucketBroker` and
`RabbitMessageBroker` load on first use (they need the `redis` / `amqp` extras).

Per broker:

* `InMemoryMessageBroker`: priorities honoured (HIGH, MEDIUM, LOW; FIFO within a level);
  retry delays by an event-loop timer.
* `RedisMessageBroker`: no priorities (streams are FIFO); retry delays in a sorted set that
  the worker moves into the stream when due (Lua, atomic).
* `RabbitMessageBroker`: the AMQP `priority` header, honoured by queues that support
  priorities (see its docstring); the worker holds a failed message for the retry delay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repid._lazy import load_lazy
from repid.jobs.brokers.base import MessageBrokerT
from repid.jobs.brokers.in_memory import InMemoryBucketBroker, InMemoryMessageBroker
from repid.jobs.buckets import ArgsBucket, BucketBrokerT, ResultBucket
from repid.jobs.connection import Connection
from repid.jobs.errors import (
    ArgsBucketNotFoundError,
    ConnectionNotBoundError,
    JobTimeoutError,
    QueueNotDeclaredError,
)
from repid.jobs.job import Job
from repid.jobs.middleware import JobMiddleware
from repid.jobs.priorities import PrioritiesT
from repid.jobs.queue import Queue
from repid.jobs.retry import RetryPolicyT, default_retry_policy_factory
from repid.jobs.worker import Worker

if TYPE_CHECKING:
    from repid.jobs.brokers.rabbit import RabbitMessageBroker
    from repid.jobs.brokers.redis import RedisBucketBroker, RedisMessageBroker

__all__ = [
    "ArgsBucket",
    "ArgsBucketNotFoundError",
    "BucketBrokerT",
    "Connection",
    "ConnectionNotBoundError",
    "InMemoryBucketBroker",
    "InMemoryMessageBroker",
    "Job",
    "JobMiddleware",
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
