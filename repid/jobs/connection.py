"""`Connection`: a message broker tied to optional argument and result bucket brokers."""

from __future__ import annotations

import time
from typing import Any

from repid.data import MessageData
from repid.jobs.brokers.base import MessageBrokerT
from repid.jobs.buckets import BucketBrokerT
from repid.jobs.cancellation import MARK_LIFETIME, CancelOutcome, JobWithdrawerT
from repid.jobs.errors import DuplicateJobError, JobStateNotConfiguredError
from repid.jobs.priorities import PrioritiesT
from repid.jobs.state import (
    JobStateProviderT,
    JobStateStoreT,
    cancel_mark,
    claim_token,
    claim_value,
    unique_name,
)
from repid.middlewares import compose_producer_middlewares
from repid.observers import bind_to_server

__all__ = ["Connection"]


class Connection:
    """The brokers a job producer or worker uses.

        Connection(
            message_broker=RedisMessageBroker(dsn),
            args_bucket_broker=RedisBucketBroker(dsn),
            results_bucket_broker=RedisBucketBroker(dsn, use_result_bucket=True),
        )

    `is_open` only changes with `connect()` / `disconnect()`: it does not track the brokers'
    own connections (they reconnect by themselves where they can).

    `job_state` is where uniqueness, cancellation marks and scheduler ticks live (see
    `repid.jobs.state`): the message broker's own store, else a bucket broker's.
    """

    def __init__(
        self,
        message_broker: MessageBrokerT | Any,
        args_bucket_broker: BucketBrokerT | None = None,
        results_bucket_broker: BucketBrokerT | None = None,
    ) -> None:
        for name in ("declare_queue", "publish_job", "subscribe"):
            if not callable(getattr(message_broker, name, None)):
                raise TypeError(
                    f"{message_broker!r} is not a job-layer message broker (no {name}()); use "
                    "InMemoryMessageBroker, RedisMessageBroker or RabbitMessageBroker"
                )
        self.message_broker: MessageBrokerT = message_broker
        self.args_bucket_broker = args_bucket_broker
        self.results_bucket_broker = results_bucket_broker
        self.is_open = False
        self.app: Any = None
        """The `Repid(connection)` app made with it, if any: jobs are published through its
        producer middlewares and workers run its observers (e.g. OpenTelemetry, Prometheus)."""
        self._chain: tuple[tuple[Any, ...], Any] | None = None

    @property
    def job_state(self) -> JobStateStoreT | None:
        """The job-state store (the message broker's, else a bucket broker's), or None."""
        for candidate in (self.message_broker, self.args_bucket_broker, self.results_bucket_broker):
            if candidate is not None and isinstance(candidate, JobStateProviderT):
                return candidate.job_state
        return None

    def require_job_state(self, feature: str) -> JobStateStoreT:
        """`job_state`, or `JobStateNotConfiguredError` saying that `feature` needs one."""
        store = self.job_state
        if store is None:
            raise JobStateNotConfiguredError(
                f"{feature} needs shared job state, and neither {self.message_broker!r} nor the "
                "connection's bucket brokers keep it: add a RedisBucketBroker to the Connection "
                "(Connection(RabbitMessageBroker(...), args_bucket_broker=RedisBucketBroker(...)))"
            )
        return store

    async def enqueue_job(
        self,
        *,
        queue: str,
        message: MessageData,
        priority: PrioritiesT,
        message_id: str,
        unique: bool = False,
        delay: float | None = None,
        unique_token: str | None = None,
    ) -> None:
        """Publish a job's message; for a unique one, claim its id first.

        A broker with `supports_unique_jobs` claims the id itself, atomically with the
        publish (the token is in the message's `job-unique` header); for the others the id is
        claimed in `job_state` (`TOKEN:DUE`) and released if the publish fails. A claim
        already held raises `DuplicateJobError`.
        """
        store: JobStateStoreT | None = None
        owner = claim_value(unique_token or "")
        if unique and not getattr(self.message_broker, "supports_unique_jobs", False):
            store = self.require_job_state("a unique job (Job(id_=...))")
            due = "" if not delay else repr(time.time() + delay)
            if not await store.claim(queue, unique_name(message_id), owner + due):
                raise DuplicateJobError(message_id, queue)
        try:
            await self.publish_job(
                queue=queue,
                message=message,
                priority=priority,
                message_id=message_id,
                unique=unique,
                delay=delay,
            )
        except BaseException:
            if store is not None:
                await store.release(queue, unique_name(message_id), owner=owner)
            raise

    async def cancel_job(
        self, queue: str, job_id: str, *, due: float | None = None
    ) -> CancelOutcome:
        """Cancel a job by id (see `Queue.cancel`)."""
        broker = self.message_broker
        if isinstance(broker, JobWithdrawerT) and await broker.withdraw_job(queue, job_id):
            return CancelOutcome.REMOVED
        store = self.require_job_state("cancelling a queued or running job")
        claim = claim_token(await store.get(queue, unique_name(job_id)))
        token = None if claim is None else claim[0]
        if due is None and claim is not None:
            due = _as_time(claim[1])
        expires = max(time.time(), due or 0.0) + MARK_LIFETIME
        await store.mark_cancelled(queue, cancel_mark(job_id, token), expires)
        if token is not None:
            # The id is free again at once: the marked enqueue is dropped or stopped by its
            # token, and a new one with the same id is not.
            await store.release(queue, unique_name(job_id), owner=claim_value(token))
        return CancelOutcome.MARKED

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
        """`message_broker.publish_job(...)` through the app's producer middlewares."""
        broker = self.message_broker
        middlewares = tuple(getattr(self.app, "producer_middlewares", None) or ())
        if not middlewares:
            await broker.publish_job(
                queue=queue,
                message=message,
                priority=priority,
                message_id=message_id,
                unique=unique,
                delay=delay,
            )
            return
        job = {"priority": priority, "message_id": message_id, "unique": unique}
        if delay is not None:
            job["delay"] = delay
        await self._producer_chain(middlewares)(queue, message, job)

    def _producer_chain(self, middlewares: tuple[Any, ...]) -> Any:
        # Composed once per middleware list, not per job.
        if self._chain is None or self._chain[0] != middlewares:
            broker = self.message_broker

            async def publish(queue: str, message: MessageData, job: dict[str, Any] | None) -> None:
                await broker.publish_job(queue=queue, message=message, **(job or {}))

            chain = compose_producer_middlewares(bind_to_server(middlewares, broker), publish)
            self._chain = (middlewares, chain)
        return self._chain[1]

    def _brokers(self) -> list[Any]:
        brokers: list[Any] = [self.message_broker]
        for bucket in (self.args_bucket_broker, self.results_bucket_broker):
            if bucket is not None and all(bucket is not b for b in brokers):
                brokers.append(bucket)
        return brokers

    async def connect(self) -> None:
        """Connect the message broker and the bucket brokers (each one once)."""
        done: list[Any] = []
        try:
            for broker in self._brokers():
                await broker.connect()
                done.append(broker)
        except BaseException:
            for broker in reversed(done):
                await broker.disconnect()
            raise
        self.is_open = True

    async def disconnect(self) -> None:
        """Disconnect every broker (errors of one do not stop the others)."""
        self.is_open = False
        first_error: BaseException | None = None
        for broker in reversed(self._brokers()):
            try:
                await broker.disconnect()
            except Exception as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def __repr__(self) -> str:
        return (
            f"Connection(message_broker={self.message_broker!r}, "
            f"args_bucket_broker={self.args_bucket_broker!r}, "
            f"results_bucket_broker={self.results_bucket_broker!r})"
        )


def _as_time(text: str | None) -> float | None:
    """A due time recorded in a unique claim (a Unix time as text), if it is one."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None
