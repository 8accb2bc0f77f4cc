"""The job actor middleware: arguments from buckets, timeouts, results and retries.

A `Worker` wraps every actor with `JobMiddleware` (as an app-level actor middleware of the
message-layer `Repid` it runs). For a message that carries job headers (see
`repid.jobs.headers`; other messages pass through untouched) it:

1. loads the arguments from the arguments bucket when the message names one, and hands the
   actor a message whose payload is those arguments;
2. runs the actor under the job's timeout (running out is a failure like any other);
3. stores the result bucket when the message asks for it - on success and on failure (with
   the exception text), a failed attempt that will be retried included;
4. on failure with retries left, publishes the job again with `job-attempt` + 1, to be
   delivered after `retry_policy(retry_number)` seconds (the actor's policy, else
   `default_retry_policy_factory()`), and returns normally so that the message is acked;
   with no retries left it re-raises, so the actor's `on_error` (default: nack = dead-letter)
   applies.

Delaying the retry: brokers with `supports_delayed_publish` (in-memory, Redis) hold the retry
themselves. For the others (RabbitMQ) the worker keeps the failed message unsettled, sleeps for
the delay, publishes the retry and only then lets the message be acked: at-least-once is
preserved (a crash during the wait redelivers the failed attempt), at the cost of one worker
task slot per waiting retry and of delaying a graceful shutdown by up to
`graceful_shutdown_time` (after which the message is rejected and that attempt runs again).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

from repid.connections.abc import ReceivedMessageT
from repid.data import ActorData, MessageData
from repid.jobs.buckets import encode_result_bucket
from repid.jobs.connection import Connection
from repid.jobs.errors import ArgsBucketNotFoundError, JobTimeoutError
from repid.jobs.headers import JOB_ID, JobHeaders
from repid.jobs.retry import RetryPolicyT, default_retry_policy_factory
from repid.middlewares import ActorCallT
from repid.serializers import SerializerT, default_serializer

__all__ = ["JobMiddleware"]

logger = logging.getLogger("repid.jobs")

_HAS_TIMEOUT_CM = sys.version_info >= (3, 11)
_DEFAULT_POLICY = default_retry_policy_factory()


class ArgsMessage:
    """A received message seen with another payload (the arguments from a bucket).

    Everything else - headers, settlement - is the original message's.
    """

    __slots__ = ("_message", "_payload")

    def __init__(self, message: ReceivedMessageT, payload: bytes) -> None:
        self._message = message
        self._payload = payload

    @property
    def payload(self) -> bytes:
        return self._payload

    @property
    def headers(self) -> dict[str, str] | None:
        return self._message.headers

    @property
    def content_type(self) -> str | None:
        return "application/json"

    @property
    def channel(self) -> str:
        return self._message.channel

    @property
    def message_id(self) -> str | None:
        return self._message.message_id

    @property
    def reply_to(self) -> str | None:
        return self._message.reply_to

    @property
    def delivery_count(self) -> int | None:
        return self._message.delivery_count

    @property
    def is_acted_on(self) -> bool:
        return self._message.is_acted_on

    @property
    def action(self) -> Any:
        return self._message.action

    async def ack(self) -> None:
        await self._message.ack()

    async def nack(self) -> None:
        await self._message.nack()

    async def reject(self) -> None:
        await self._message.reject()

    async def reply(self, **kwargs: Any) -> None:
        await self._message.reply(**kwargs)


def describe_exception(exc: BaseException) -> str:
    """`"ValueError: boom"` - the text stored in a failed result bucket."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _run_with_timeout(
    call_next: ActorCallT, message: Any, actor: ActorData, timeout: float
) -> Any:
    if _HAS_TIMEOUT_CM:
        cm = asyncio.timeout(timeout)  # type: ignore[attr-defined,unused-ignore]
        try:
            async with cm:
                return await call_next(message, actor)
        except TimeoutError:
            if cm.expired():
                raise JobTimeoutError(
                    f"job of actor {actor.name!r} exceeded its timeout of {timeout} s"
                ) from None
            raise
    try:  # Python 3.10
        return await asyncio.wait_for(call_next(message, actor), timeout)
    except asyncio.TimeoutError:
        raise JobTimeoutError(
            f"job of actor {actor.name!r} exceeded its timeout of {timeout} s"
        ) from None


class JobMiddleware:
    """`async (call_next, message, actor)`: see the module docstring."""

    def __init__(self, connection: Connection, serializer: SerializerT = default_serializer):
        self.connection = connection
        self.serializer = serializer
        self._broker = connection.message_broker
        self._delayed = bool(getattr(self._broker, "supports_delayed_publish", False))

    async def __call__(
        self, call_next: ActorCallT, message: ReceivedMessageT, actor: ActorData
    ) -> Any:
        headers = message.headers
        if headers is None or JOB_ID not in headers:
            return await call_next(message, actor)
        job = JobHeaders.parse(headers)
        started = time.time()
        try:
            received: Any = message
            if job.args_id is not None:
                received = ArgsMessage(message, await self._load_args(job.args_id))
            if job.timeout is not None:
                result = await _run_with_timeout(call_next, received, actor, job.timeout)
            else:
                result = await call_next(received, actor)
        except Exception as exc:
            finished = time.time()
            if job.result_id is not None:
                await self._store_result(
                    job, b"null", False, describe_exception(exc), started, finished
                )
            if job.attempt <= job.retries:
                logger.warning(
                    "job.failed: job %s of actor %r failed on attempt %d of %d; it will be retried",
                    job.job_id,
                    actor.name,
                    job.attempt,
                    job.retries + 1,
                    exc_info=exc,
                    extra={
                        "job_id": job.job_id,
                        "actor": actor.name,
                        "channel": message.channel,
                        "attempt": job.attempt,
                        "error": type(exc).__name__,
                    },
                )
                try:
                    await self._retry(message, job, actor)
                except Exception:
                    # No retry was published: put the message back so that this attempt
                    # runs again, rather than dead-lettering a job that has retries left.
                    logger.exception(
                        "job.retry_failed: job %s goes back to its queue",
                        job.job_id,
                        extra={
                            "job_id": job.job_id,
                            "actor": actor.name,
                            "channel": message.channel,
                        },
                    )
                    if not message.is_acted_on:
                        await message.reject()
                return None
            raise
        if job.result_id is not None:
            await self._store_result(job, self.serializer(result), True, None, started, time.time())
        return result

    async def _load_args(self, args_id: str) -> bytes:
        broker = self.connection.args_bucket_broker
        if broker is None:
            raise RuntimeError(
                f"the job's arguments are in bucket {args_id!r} but the worker's connection "
                "has no args_bucket_broker"
            )
        bucket = await broker.get(args_id)
        if bucket is None:
            raise ArgsBucketNotFoundError(args_id)
        return self.serializer(bucket.data) if bucket.data is not None else b""

    async def _store_result(
        self,
        job: JobHeaders,
        data: bytes,
        success: bool,
        exception: str | None,
        started: float,
        finished: float,
    ) -> None:
        broker = self.connection.results_bucket_broker
        if broker is None or job.result_id is None:
            return
        raw = encode_result_bucket(
            job.result_id,
            data,
            success=success,
            exception=exception,
            started_when=started,
            finished_when=finished,
            ttl=job.result_ttl,
        )
        try:
            await broker.store_raw(job.result_id, raw, job.result_ttl)
        except Exception:
            # The job's outcome (ack, retry, dead letter) must not depend on the result store.
            logger.exception(
                "job.result_store_failed: result %r was not stored",
                job.result_id,
                extra={"job_id": job.job_id, "result_id": job.result_id},
            )

    async def _retry(self, message: ReceivedMessageT, job: JobHeaders, actor: ActorData) -> None:
        policy: RetryPolicyT = actor.retry_policy or _DEFAULT_POLICY
        delay = max(0.0, float(policy(job.attempt)))
        headers = dict(message.headers or {})
        headers.update(
            JobHeaders(
                job_id=job.job_id,
                attempt=job.attempt + 1,
                retries=job.retries,
                timeout=job.timeout,
                priority=job.priority,
                args_id=job.args_id,
                result_id=job.result_id,
                result_ttl=job.result_ttl,
            ).to_headers(headers.get("topic", actor.name))
        )
        retry = MessageData(message.payload, headers, message.content_type)
        logger.info(
            "job.retry: job %s of actor %r failed on attempt %d of %d; retrying in %.3f s",
            job.job_id,
            actor.name,
            job.attempt,
            job.retries + 1,
            delay,
            extra={
                "job_id": job.job_id,
                "actor": actor.name,
                "channel": message.channel,
                "attempt": job.attempt,
                "delay": delay,
            },
        )
        if self._delayed:
            await self.connection.publish_job(
                queue=message.channel,
                message=retry,
                priority=job.priority,
                message_id=job.job_id,
                delay=delay,
            )
            return
        # The broker cannot delay: hold this (unsettled) message for the delay, then publish.
        if delay > 0:
            await asyncio.sleep(delay)
        await self.connection.publish_job(
            queue=message.channel,
            message=retry,
            priority=job.priority,
            message_id=job.job_id,
        )
