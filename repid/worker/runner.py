"""The worker loop: subscribe, run actors concurrently, shut down gracefully.

Shutdown, on a signal or when `messages_limit` messages were processed:

1. pause the subscription (no new messages);
2. wait up to `graceful_shutdown_time` for running actors to finish and settle;
3. cancel the rest, give them `cancellation_timeout` to run their `finally` blocks, and reject
   their messages (back to the queue) unless they were already acted on;
4. close the subscription; `Repid.run_worker` then closes the broker connection (a bare
   `Runner` leaves it open, so several runners can share one connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from repid.connections.abc import (
    DeliveryCapacity,
    ReceivedMessageT,
    ServerT,
    SubscriberT,
    SubscriptionState,
    subscription_state,
)
from repid.observers import MessageObserverT, WorkerLifecycleT
from repid.worker.actor import CompiledActor
from repid.worker.dispatcher import Dispatcher
from repid.worker.heap import frozen_startup_heap
from repid.worker.settlement import REJECT, settle

__all__ = ["DEFAULT_SIGNALS", "Runner", "RunnerInfo"]

logger = logging.getLogger("repid.worker")

DEFAULT_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


@dataclass(slots=True)
class RunnerInfo:
    """What a finished worker run did."""

    processed: int = 0
    """Messages whose actor ran (successfully or not)."""
    failed: int = 0
    """Of those, the messages whose actor raised (or timed out)."""


class Runner:
    """One run of a worker over one server. Use `Repid.run_worker` rather than this directly."""

    def __init__(
        self,
        *,
        server: ServerT,
        server_name: str,
        actors: Sequence[CompiledActor],
        tasks_limit: int | None,
        messages_limit: int | None,
        graceful_shutdown_time: float,
        cancellation_timeout: float = 1.0,
        observers: Sequence[MessageObserverT] = (),
        on_finished: Callable[[], None] | None = None,
        freeze_startup_heap: bool = True,
    ) -> None:
        if messages_limit is not None and messages_limit < 0:
            raise ValueError("messages_limit must be None or at least 0")
        if graceful_shutdown_time < 0:
            raise ValueError("graceful_shutdown_time must be at least 0")
        self.server = server
        self.server_name = server_name
        self.dispatcher = Dispatcher(actors, observers)
        self.capacity = DeliveryCapacity(tasks_limit, budget=messages_limit)
        self.messages_limit = messages_limit
        self.graceful_shutdown_time = graceful_shutdown_time
        self.cancellation_timeout = cancellation_timeout
        self.info = RunnerInfo()
        # Running messages, keyed by id(message): the task's own `finally` removes its entry
        # without `asyncio.current_task()` (pure Python before 3.12, a measurable share of
        # the per-message cost), and messages need not be hashable.
        self.in_flight: dict[int, tuple[asyncio.Task[None], ReceivedMessageT]] = {}
        self.last_iteration = time.monotonic()
        # Created here so that `stop()` before `run()` is remembered.
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._log_each = False
        self._started = False
        self._fatal: BaseException | None = None
        self._subscriber: SubscriberT | None = None
        self._started_observers: list[WorkerLifecycleT] = []
        # Tasks the shutdown cancelled: any other cancellation of a message's task is the
        # actor's own CancelledError (Python 3.10 cannot tell them apart otherwise).
        self._cancelled: set[asyncio.Task[None]] = set()
        self._on_finished = on_finished
        self.freeze_startup_heap = freeze_startup_heap

    # Health --------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._started and not self._stop.is_set()

    def is_healthy(self, max_silence: float = 5.0) -> bool:
        """The loop iterated recently and the broker connection is alive."""
        return (
            self.is_running
            and time.monotonic() - self.last_iteration < max_silence
            and self.server.is_connected
        )

    @property
    def subscription_state(self) -> SubscriptionState | None:
        """The state of this worker's subscription (None before it subscribed, or without
        actors)."""
        subscriber = self._subscriber
        return subscription_state(subscriber) if subscriber is not None else None

    @property
    def is_ready(self) -> bool:
        """Running, the broker connection alive, and the subscription consuming (ACTIVE).

        False while a subscription recovers from a lost connection, stream or consumer loop,
        and until it is subscribed again. A worker without actors is ready while it runs.
        """
        if not self.is_running or not self.server.is_connected:
            return False
        subscriber = self._subscriber
        if subscriber is None:
            return not self.dispatcher.channels
        return subscription_state(subscriber) is SubscriptionState.ACTIVE

    # Control -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Begin the graceful shutdown (what SIGTERM does)."""
        self._stop.set()

    def force_stop(self) -> None:
        """Shut down now (what a second SIGINT does): running actors are cancelled without
        waiting for the grace period and their messages rejected back to the queue."""
        self._stop.set()
        self._force.set()

    def _make_callback(
        self, channel: str
    ) -> Callable[[ReceivedMessageT], Coroutine[Any, Any, None]]:
        capacity = self.capacity
        in_flight = self.in_flight
        create_task = asyncio.get_running_loop().create_task
        handle = self._handle

        async def on_message(message: ReceivedMessageT) -> None:
            # Synchronous up to here: the slot is taken before the subscriber looks again.
            capacity.acquire()
            task = create_task(handle(message))
            # An eager task factory (Python 3.12+) may have run the task to its end already,
            # `finally` included: only a task still running is in flight.
            if not task.done():
                in_flight[id(message)] = (task, message)

        return on_message

    async def _handle(self, message: ReceivedMessageT) -> None:
        # Bookkeeping runs in this task's `finally` rather than a done callback: one less
        # event-loop callback per message.
        actor: CompiledActor | None = None
        decided = False
        try:
            dispatcher = self.dispatcher
            actor = dispatcher.route(message)
            if actor is None:
                # Unrouted messages do not count towards messages_limit.
                self.capacity.refund()
                await dispatcher.unrouted(message)
                return
            if self._log_each:
                started = time.monotonic()
                result = await actor.process(message)
                _log_processed(message, result, time.monotonic() - started)
            else:
                result = await actor.process(message)
            decided = True
            if not message.is_acted_on:
                # The policy's settlement failed (a broker error): settle it now, unless the
                # decision was to leave it to the actor ("no_action").
                leftover = actor.policy.leftover(result.decision)
                if leftover is not None:
                    await settle(message, leftover, actor.data.name)
            info = self.info  # _count_processed inlined: this runs for every message
            info.processed += 1
            if result.exception is not None:
                info.failed += 1
            limit = self.messages_limit
            if limit is not None and info.processed >= limit:
                self.stop()
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", None)  # Python 3.11+
            if (
                task in self._cancelled
                or actor is None
                or decided
                or (cancelling is not None and cancelling() > 0)
            ):
                raise  # a real cancellation: the shutdown rejects the message
            # Nobody but the shutdown cancels this task: the actor raised CancelledError
            # itself (how Python 3.10 shows it). An ordinary failure of the actor.
            logger.error(
                "actor.error: actor %r raised CancelledError on a message from channel %r",
                actor.data.name,
                message.channel,
                extra={
                    "actor": actor.data.name,
                    "channel": message.channel,
                    "message_id": message.message_id,
                    "error": "CancelledError",
                },
            )
            await settle(message, actor.policy.after_error(exc), actor.data.name)
            self._count_processed(failed=True)
        except Exception:
            logger.exception(
                "worker.task_failed: unexpected error while handling a message",
                extra={"channel": message.channel, "message_id": message.message_id},
            )
            if actor is not None and not message.is_acted_on and not actor.policy.manual:
                await settle(message, REJECT, actor.data.name)
        except (KeyboardInterrupt, SystemExit) as exc:
            # Raised by an actor: the message was rejected back to its queue by the actor
            # pipeline. Shut down gracefully, then re-raise from `run()`.
            logger.error(
                "worker.fatal: %r raised by an actor; shutting down",
                exc,
                extra={
                    "channel": message.channel,
                    "message_id": message.message_id,
                    "error": type(exc).__name__,
                },
            )
            if self._fatal is None:
                self._fatal = exc
            self.stop()
        finally:
            self.in_flight.pop(id(message), None)
            self.capacity.release()

    def _count_processed(self, *, failed: bool) -> None:
        # Every message an actor ran counts towards messages_limit, failed ones included.
        info = self.info
        info.processed += 1
        if failed:
            info.failed += 1
        limit = self.messages_limit
        if limit is not None and info.processed >= limit:
            self.stop()

    async def _heartbeat(self) -> None:
        while True:
            self.last_iteration = time.monotonic()
            await asyncio.sleep(1.0)

    # The run -------------------------------------------------------------------------------

    async def run(self, register_signals: Sequence[signal.Signals] = DEFAULT_SIGNALS) -> RunnerInfo:
        loop = asyncio.get_running_loop()
        if self._started:
            raise RuntimeError("a Runner runs once; make a new one with app.create_runner()")
        self._started = True
        if self.messages_limit == 0 or self._stop.is_set():
            self._finish()
            return self.info
        # Decided once per run: the per-message debug line costs nothing when it is off.
        self._log_each = logger.isEnabledFor(logging.DEBUG)
        installed = self._install_signals(loop, register_signals)
        heartbeat = loop.create_task(self._heartbeat(), name="repid-worker-heartbeat")
        heap = contextlib.ExitStack()
        heap.enter_context(frozen_startup_heap(self.freeze_startup_heap))
        try:
            channels = self.dispatcher.channels
            if channels:
                self._subscriber = await self.server.subscribe(
                    channels_to_callbacks={c: self._make_callback(c) for c in channels},
                    capacity=self.capacity,
                )
                logger.info(
                    "worker.started: consuming %s on server %r",
                    ", ".join(repr(c) for c in channels),
                    self.server_name,
                    extra={"server": self.server_name, "channels": channels},
                )
                self._lifecycle_started(channels)
            else:
                logger.warning(
                    "worker.no_actors: no actors registered; waiting for a stop signal",
                    extra={"server": self.server_name},
                )
            await self._stop.wait()
        finally:
            self._stop.set()
            try:
                await self._shutdown()
            finally:
                heap.close()
                self._finish()
                heartbeat.cancel()
                await self._lifecycle_stopped()
                for sig, previous in installed:
                    loop.remove_signal_handler(sig)
                    # remove_signal_handler leaves the default action: put back the
                    # program's own handler.
                    if previous is not None and previous is not signal.SIG_DFL:
                        signal.signal(sig, previous)
        if self._fatal is not None:
            raise self._fatal
        return self.info

    def _finish(self) -> None:
        callback, self._on_finished = self._on_finished, None
        if callback is not None:
            callback()

    def _lifecycle_started(self, channels: list[str]) -> None:
        for observer in self.dispatcher.observers:
            if isinstance(observer, WorkerLifecycleT):
                try:
                    observer.worker_started(self.server, channels, self.server_name)
                except Exception:
                    logger.exception(
                        "observer.failed: %r raised in worker_started",
                        observer,
                        extra={"server": self.server_name},
                    )
                else:
                    self._started_observers.append(observer)

    async def _lifecycle_stopped(self) -> None:
        while self._started_observers:
            observer = self._started_observers.pop()
            try:
                await observer.worker_stopped(self.server)
            except Exception:
                logger.exception(
                    "observer.failed: %r raised in worker_stopped",
                    observer,
                    extra={"server": self.server_name},
                )

    def _install_signals(
        self, loop: asyncio.AbstractEventLoop, signals: Sequence[signal.Signals]
    ) -> list[tuple[signal.Signals, Any]]:
        installed: list[tuple[signal.Signals, Any]] = []
        if not signals:
            return installed
        if threading.current_thread() is not threading.main_thread():
            logger.warning(
                "worker.signals_skipped: signal handlers can only be installed in the main "
                "thread; pass register_signals=[] to silence this",
                extra={"server": self.server_name},
            )
            return installed
        for sig in signals:
            previous = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                logger.warning(
                    "worker.signal_unsupported: cannot handle %s here",
                    sig,
                    extra={"signal": str(sig)},
                )
                continue
            installed.append((sig, previous))
        return installed

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set() and sig == signal.SIGINT:
            logger.warning(
                "worker.force_stop: second SIGINT: cancelling %d running actor(s) now; their "
                "messages go back to the queue",
                len(self.in_flight),
                extra={"in_flight": len(self.in_flight)},
            )
            self.force_stop()
            return
        logger.info(
            "worker.signal: received %s, shutting down gracefully (up to %.1f s; "
            "press Ctrl-C again to stop at once)",
            sig.name,
            self.graceful_shutdown_time,
            extra={"signal": sig.name, "graceful_shutdown_time": self.graceful_shutdown_time},
        )
        self.stop()

    async def _shutdown(self) -> None:
        subscriber = self._subscriber
        if subscriber is not None:
            try:
                await subscriber.pause()
            except Exception:
                logger.exception(
                    "worker.shutdown: pausing the subscription failed",
                    extra={"server": self.server_name},
                )
        pending = {task for task, _ in self.in_flight.values()}
        if pending:
            logger.info(
                "worker.shutdown: waiting up to %.1f s for %d running actor(s)",
                self.graceful_shutdown_time,
                len(pending),
                extra={
                    "in_flight": len(pending),
                    "graceful_shutdown_time": self.graceful_shutdown_time,
                },
            )
            pending = await self._wait_graceful(pending)
        if pending:
            messages = [m for t, m in self.in_flight.values() if t in pending]
            logger.warning(
                "worker.shutdown: cancelling %d actor(s) still running after the grace period; "
                "their messages go back to the queue",
                len(pending),
                extra={"in_flight": len(pending)},
            )
            for task in pending:
                self._cancelled.add(task)
                task.cancel()
            # Reject while the cancelled actors run their cleanup.
            rejects = [self._reject(m) for m in messages]
            await asyncio.gather(asyncio.wait(pending, timeout=self.cancellation_timeout), *rejects)
        if subscriber is not None:
            try:
                await subscriber.close()
            except Exception:
                logger.exception(
                    "worker.shutdown: closing the subscription failed",
                    extra={"server": self.server_name},
                )
            self._subscriber = None

    async def _wait_graceful(self, pending: set[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
        """Wait for `pending` up to the grace period, or until `force_stop()`; return the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.graceful_shutdown_time
        forced = loop.create_task(self._force.wait())
        try:
            while pending and not self._force.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                done, _ = await asyncio.wait(
                    {*pending, forced}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                pending -= done
        finally:
            forced.cancel()
        return pending

    @staticmethod
    async def _reject(message: ReceivedMessageT) -> None:
        await settle(message, REJECT)


def _log_processed(message: ReceivedMessageT, result: Any, seconds: float) -> None:
    error = result.exception
    action = message.action
    outcome = action.value if action is not None else "unsettled"
    duration_ms = round(seconds * 1000, 3)
    actor = result.actor.name if result.actor is not None else None
    logger.debug(
        "message.processed: %s by %s on %r: %s in %.1f ms%s",
        message.message_id,
        actor,
        message.channel,
        outcome,
        duration_ms,
        f" ({type(error).__name__})" if error is not None else "",
        extra={
            "message_id": message.message_id,
            "actor": actor,
            "channel": message.channel,
            "outcome": outcome,
            "duration_ms": duration_ms,
            "error": type(error).__name__ if error is not None else None,
        },
    )
