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
   applies;
5. releases a unique job's claim (`job-unique`) at its last outcome: success, the last failure,
   cancellation;
6. honours cancellation (`repid.jobs.cancellation`): a job marked cancelled is dropped on
   receipt (acked, not run) and a running one is stopped; either way its result bucket says
   `cancelled`;
7. sends a job that arrives before its `job-due` time (by more than half a second: a delay
   longer than the broker holds one) back to wait for the rest.

Delaying the retry: it goes through the same mechanism as `Job(deferred_by=...)`: the broker
holds it (`supports_delayed_publish`: in-memory, Redis, RabbitMQ - see each broker). For a
third-party broker without it the worker keeps the failed message unsettled, sleeps for the
delay, publishes the retry and only then lets the message be acked: at-least-once is preserved
(a crash during the wait redelivers the failed attempt), at the cost of one worker task slot per
waiting retry and of delaying a graceful shutdown by up to `graceful_shutdown_time`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from repid.connections.abc import MessageData, ReceivedMessageT
from repid.connections.timeouts import timeout as deadline
from repid.data import ActorData
from repid.jobs.buckets import encode_result_bucket
from repid.jobs.cancellation import CancelWatcher
from repid.jobs.connection import Connection
from repid.jobs.errors import ArgsBucketNotFoundError, JobCancelledError, JobTimeoutError
from repid.jobs.headers import DUE, JOB_ID, JobHeaders
from repid.jobs.retry import RetryPolicyT, default_retry_policy_factory
from repid.jobs.state import claim_value, unique_name
from repid.middlewares import ActorCallT
from repid.serializers import SerializerT, default_serializer

__all__ = ["JobMiddleware"]

logger = logging.getLogger("repid.jobs")

_DEFAULT_POLICY = default_retry_policy_factory()
_EARLY = 0.5  # seconds before its due time a received job is sent back to wait


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

    async def nack(self, *, reason: str | None = None) -> None:
        await self._message.nack(reason=reason)

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
    cm = deadline(timeout)
    try:
        async with cm:
            return await call_next(message, actor)
    except TimeoutError:
        if cm.expired():
            raise JobTimeoutError(
                f"job of actor {actor.name!r} exceeded its timeout of {timeout} s"
            ) from None
        raise


class JobMiddleware:
    """`async (call_next, message, actor)`: see the module docstring.

    `start(queues)` / `stop()` run the cancellation watcher (a `Worker` does it); without it
    (or without job state on the connection) marks are not looked at.
    """

    def __init__(
        self,
        connection: Connection,
        serializer: SerializerT = default_serializer,
        *,
        cancel_poll_interval: float = 0.5,
    ):
        self.connection = connection
        self.serializer = serializer
        self.cancel_poll_interval = cancel_poll_interval
        self._broker = connection.message_broker
        self._delayed = bool(getattr(self._broker, "supports_delayed_publish", False))
        self._watcher: CancelWatcher | None = None

    async def start(self, queues: Iterable[str]) -> None:
        """Start watching the cancellation marks of `queues` (if the connection keeps job
        state)."""
        store = self.connection.job_state
        if store is None or self._watcher is not None:
            return
        watcher = CancelWatcher(store, queues, self.cancel_poll_interval)
        await watcher.start()
        self._watcher = watcher

    async def stop(self) -> None:
        """Stop the cancellation watcher."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.stop()

    async def __call__(
        self, call_next: ActorCallT, message: ReceivedMessageT, actor: ActorData
    ) -> Any:
        headers = message.headers
        if headers is None or JOB_ID not in headers:
            return await call_next(message, actor)
        job = JobHeaders.parse(headers)
        queue = message.channel
        watcher = self._watcher
        if watcher is not None and watcher.mark_of(queue, job.job_id, job.unique_token):
            logger.info(
                "job.cancelled: job %s of actor %r on %r was cancelled; dropped on receipt",
                job.job_id,
                actor.name,
                queue,
                extra={"job_id": job.job_id, "actor": actor.name, "channel": queue},
            )
            return await self._cancelled(message, job, actor, time.time())
        if job.due is not None and self._delayed and job.due - time.time() > _EARLY:
            return await self._wait_more(message, job, actor)
        key = (queue, job.job_id)
        if watcher is not None:
            task = asyncio.current_task()
            if task is not None:
                watcher.running[key] = (task, job.unique_token)
        started = time.time()
        try:
            received: Any = message
            if job.args_id is not None:
                received = ArgsMessage(message, await self._load_args(job.args_id))
            if job.timeout is not None:
                result = await _run_with_timeout(call_next, received, actor, job.timeout)
            else:
                result = await call_next(received, actor)
        except asyncio.CancelledError:
            if watcher is None or key not in watcher.stopping:
                raise  # a shutdown: the runner rejects the message
            _uncancel()
            logger.info(
                "job.cancelled: job %s of actor %r on %r was cancelled while running",
                job.job_id,
                actor.name,
                queue,
                extra={"job_id": job.job_id, "actor": actor.name, "channel": queue},
            )
            return await self._cancelled(message, job, actor, started)
        except Exception as exc:
            if watcher is not None and key in watcher.stopping:
                _uncancel()
                return await self._cancelled(message, job, actor, started)
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
            if job.unique_token is not None:
                await self._release(queue, job)
            raise
        finally:
            if watcher is not None:
                watcher.running.pop(key, None)
        if watcher is not None and key in watcher.stopping:
            # The actor swallowed the cancellation and returned: cancelled all the same.
            _uncancel()
            return await self._cancelled(message, job, actor, started)
        if job.result_id is not None:
            await self._store_result(job, self.serializer(result), True, None, started, time.time())
        if job.unique_token is not None:
            await self._release(queue, job)
        return result

    async def _release(self, queue: str, job: JobHeaders) -> None:
        """End a unique job's claim (its last outcome)."""
        if not job.unique:
            return
        store = self.connection.job_state
        if store is None or job.unique_token is None:
            return
        try:
            await store.release(queue, unique_name(job.job_id), owner=claim_value(job.unique_token))
        except Exception:
            logger.exception(
                "job.unique_release_failed: the claim of unique job %s on %r stays",
                job.job_id,
                queue,
                extra={"job_id": job.job_id, "channel": queue},
            )

    async def _cancelled(
        self, message: ReceivedMessageT, job: JobHeaders, actor: ActorData, started: float
    ) -> Any:
        """Settle a cancelled job: result bucket, claim, mark, ack."""
        queue = message.channel
        if job.result_id is not None:
            await self._store_result(
                job,
                b"null",
                False,
                f"{JobCancelledError.__name__}: job {job.job_id} was cancelled",
                started,
                time.time(),
                cancelled=True,
            )
        await self._release(queue, job)
        if not message.is_acted_on:
            await message.ack()
        watcher = self._watcher
        if watcher is not None:
            watcher.stopping.discard((queue, job.job_id))
            mark = watcher.mark_of(queue, job.job_id, job.unique_token)
            try:
                if mark is not None:
                    await watcher.store.unmark_cancelled(queue, mark)
            except Exception as exc:  # the mark expires by itself
                logger.warning(
                    "job.unmark_failed: %s: %s",
                    job.job_id,
                    exc,
                    extra={"job_id": job.job_id, "channel": queue, "error": type(exc).__name__},
                )
        return _no_action(actor)

    async def _wait_more(self, message: ReceivedMessageT, job: JobHeaders, actor: ActorData) -> Any:
        """A job received before it is due: publish it again for the rest of its delay."""
        assert job.due is not None
        delay = job.due - time.time()
        logger.debug(
            "job.early: job %s arrived %.3f s before it is due; it waits again",
            job.job_id,
            delay,
            extra={"job_id": job.job_id, "channel": message.channel},
        )
        headers = dict(message.headers or {})
        await self.connection.publish_job(
            queue=message.channel,
            message=MessageData(message.payload, headers, message.content_type),
            priority=job.priority,
            message_id=job.job_id,
            delay=delay,
        )
        await message.ack()
        return _no_action(actor)

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
        *,
        cancelled: bool = False,
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
            cancelled=cancelled,
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
        policy: RetryPolicyT = actor.extensions.get("retry_policy") or _DEFAULT_POLICY
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
                due=time.time() + delay if delay > 0 and self._delayed else None,
                unique_token=job.unique_token,
                tick=job.tick,
            ).to_headers(headers.get("topic", actor.name))
        )
        if not (delay > 0 and self._delayed):
            headers.pop(DUE, None)
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


def _uncancel() -> None:
    """Take back the cancellation request of the current task (Python 3.11+ counts them; a
    left-over count would upset later timeouts in the task)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    if cancelling is not None and cancelling() > 0:
        getattr(task, "uncancel")()  # noqa: B009 - not in Python 3.10's typeshed


def _no_action(actor: ActorData) -> Any:
    """What a job the middleware settled itself returns: nothing to confirm."""
    return "no_action" if actor.confirmation_mode == "manual_explicit" else None
