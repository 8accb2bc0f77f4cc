"""`PrometheusObserver`: counts, times and gauges every message the worker handles.

A message observer (see `repid.observers`): received, processed by actor/channel/outcome,
failed by exception class, processing time, in-flight, unrouted and poison messages. While a
worker runs it also reads the broker's channel statistics every `stats_interval` seconds,
where the server offers them (`ChannelStatsT`): queue depth, unacked, consumer lag, dead
letters and consumers per channel.

Label children are bound once per actor (and outcome, and exception class), so a message
costs two dict lookups and five additions to plain numbers (`repid.prometheus.local`; in
multiprocess mode prometheus_client's own children).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from repid.connections.abc import (
    ChannelStatsT,
    ReceivedMessageT,
    ServerT,
    SubscriptionEventsT,
    SubscriptionStateChange,
)
from repid.data import ActorData
from repid.prometheus.exposition import exposition
from repid.prometheus.metrics import CounterChildT, GaugeChildT, HistogramChildT, RepidMetrics

__all__ = ["PrometheusObserver"]


logger = logging.getLogger("repid.prometheus")


class _ActorSeries:
    __slots__ = ("actor", "failed", "in_flight", "metrics", "outcomes", "received", "seconds")

    def __init__(self, metrics: RepidMetrics, actor: ActorData) -> None:
        labels = (actor.name, actor.channel)
        self.actor = actor
        self.metrics = metrics
        self.received: CounterChildT = metrics.received.labels(actor.channel)
        self.in_flight: GaugeChildT = metrics.in_flight.labels(*labels)
        self.seconds: HistogramChildT = metrics.processing_seconds.labels(*labels)
        self.outcomes: dict[str, CounterChildT] = {}
        self.failed: dict[str, CounterChildT] = {}

    def outcome(self, outcome: str) -> CounterChildT:
        found = self.outcomes.get(outcome)
        if found is None:
            actor = self.actor
            found = self.outcomes[outcome] = self.metrics.processed.labels(
                actor.name, actor.channel, outcome
            )
        return found

    def failure(self, error_type: str) -> CounterChildT:
        found = self.failed.get(error_type)
        if found is None:
            actor = self.actor
            found = self.failed[error_type] = self.metrics.failed.labels(
                actor.name, actor.channel, error_type
            )
        return found


class PrometheusObserver:
    """A message observer (see the module docstring); `repid.prometheus.instrument` adds it."""

    def __init__(self, metrics: RepidMetrics, *, stats_interval: float = 15.0) -> None:
        self.metrics = metrics
        self.stats_interval = stats_interval
        self._series: dict[int, _ActorSeries] = {}
        self._pollers: dict[int, asyncio.Task[None]] = {}
        self._unlisten: dict[int, Callable[[], None]] = {}

    def _for(self, actor: ActorData) -> _ActorSeries:
        found = self._series.get(id(actor))
        if found is None or found.actor is not actor:
            found = self._series[id(actor)] = _ActorSeries(self.metrics, actor)
        return found

    # Observer hooks --------------------------------------------------------------------------

    def process_started(self, message: ReceivedMessageT, actor: ActorData) -> Any:
        series = self._series.get(id(actor))
        if series is None or series.actor is not actor:
            series = self._for(actor)
        series.received.inc()
        series.in_flight.inc()
        return series

    def process_finished(
        self,
        state: Any,
        message: ReceivedMessageT,
        actor: ActorData,
        outcome: str,
        exception: BaseException | None,
        duration: float,
    ) -> None:
        series: _ActorSeries = state
        series.in_flight.dec()
        counter = series.outcomes.get(outcome)
        if counter is None:
            counter = series.outcome(outcome)
        counter.inc()
        series.seconds.observe(duration)
        if exception is not None:
            series.failure(type(exception).__qualname__).inc()

    def message_unrouted(self, message: ReceivedMessageT, poison: bool) -> None:
        metrics = self.metrics
        channel = message.channel
        metrics.received.labels(channel).inc()
        (metrics.poison if poison else metrics.unrouted).labels(channel).inc()

    # Worker lifecycle (repid.observers.WorkerLifecycleT) -------------------------------------

    def worker_started(self, server: ServerT, channels: list[str], server_name: str) -> None:
        if isinstance(server, SubscriptionEventsT):
            reconnects = self.metrics.reconnects.labels(server_name)

            def count_reconnect(change: SubscriptionStateChange) -> None:
                if change.is_reconnect:
                    reconnects.inc()

            self._unlisten[id(server)] = server.add_state_listener(count_reconnect)
        if isinstance(server, ChannelStatsT) and channels and self.stats_interval > 0:
            task = asyncio.get_running_loop().create_task(
                self._poll(server, channels), name="repid-prometheus-channel-stats"
            )
            self._pollers[id(server)] = task

    async def worker_stopped(self, server: ServerT) -> None:
        unlisten = self._unlisten.pop(id(server), None)
        if unlisten is not None:
            unlisten()
        task = self._pollers.pop(id(server), None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self, server: ChannelStatsT, channels: list[str]) -> None:
        while True:
            for channel in channels:
                try:
                    await self.refresh_channel(server, channel)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.debug(
                        "prometheus.stats_failed: channel statistics of %r unavailable: %r",
                        channel,
                        exc,
                        extra={"channel": channel},
                    )
            await asyncio.sleep(self.stats_interval)

    async def refresh_channel(self, server: ChannelStatsT, channel: str) -> None:
        """Read `channel`'s statistics from `server` into the queue gauges now."""
        stats = await server.channel_stats(channel)
        metrics = self.metrics
        if stats.depth is not None:
            metrics.queue_depth.labels(channel).set(stats.depth)
        if stats.in_flight is not None:
            metrics.queue_unacked.labels(channel).set(stats.in_flight)
        if stats.depth is not None:
            metrics.consumer_lag.labels(channel).set(stats.depth + (stats.in_flight or 0))
        if stats.dead_letters is not None:
            metrics.queue_dead_letters.labels(channel).set(stats.dead_letters)
        if stats.consumers is not None:
            metrics.queue_consumers.labels(channel).set(stats.consumers)

    # Exposition (repid.health.server.MetricsSourceT) ------------------------------------------

    def metrics_exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format (aggregated across worker processes in
        multiprocess mode), and its content type."""
        return exposition(self.metrics.registry, accept)
