"""`RepidMetrics`: every Prometheus metric Repid reports, created once per registry.

metric (labels): what

- `repid_messages_received_total` (channel): delivered to the worker, routed or not
- `repid_messages_processed_total` (actor, channel, outcome): messages an actor ran on, by
  outcome (`ack`, `nack`, `reject`, `reply`, `no_action`)
- `repid_messages_failed_total` (actor, channel, error_type): of those, the ones whose actor
  raised, by exception class
- `repid_message_processing_seconds` (actor, channel): histogram, delivery to settlement
- `repid_messages_in_flight` (actor, channel): gauge, messages being processed now
- `repid_messages_published_total` (channel): publishes (`send_message*`, job retries)
- `repid_publish_errors_total` (channel, error_type): publishes that raised
- `repid_messages_unrouted_total` (channel): messages no actor takes (rejected)
- `repid_messages_poison_total` (channel): unrouted messages nacked after too many deliveries
- `repid_broker_reconnects_total` (server): subscriptions recovered after a lost connection
- gauges per channel, only where the broker can tell (`ChannelStatsT`): `repid_queue_depth`
  (waiting), `repid_queue_unacked` (delivered, not settled), `repid_consumer_lag` (waiting +
  unacked: what an autoscaler such as KEDA reads), `repid_queue_dead_letters`,
  `repid_queue_consumers`

With `--workers N` (`PROMETHEUS_MULTIPROC_DIR` set) the gauges aggregate across the worker
processes: in-flight messages add up (`livesum`), queue gauges take the freshest reading
(`mostrecent`), since every worker sees the same broker.

In one process the metrics touched for every message (received, processed, failed, processing
time, in flight, published) are `repid.prometheus.local` families, plain numbers read at
scrape time (same names, labels and samples, a fraction of the cost); in multiprocess mode
they are prometheus_client's own, which write to its shared files.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from repid.prometheus.exposition import multiprocess_dir
from repid.prometheus.local import LocalCollector, LocalCounter, LocalGauge, LocalHistogram

__all__ = ["PROCESSING_BUCKETS", "CounterChildT", "GaugeChildT", "HistogramChildT", "RepidMetrics"]

PROCESSING_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0,
)  # fmt: skip


class CounterChildT(Protocol):
    """A labelled counter, prometheus_client's or `repid.prometheus.local`'s."""

    def inc(self, amount: float = 1) -> None: ...


class GaugeChildT(Protocol):
    def inc(self, amount: float = 1) -> None: ...

    def dec(self, amount: float = 1) -> None: ...


class HistogramChildT(Protocol):
    def observe(self, amount: float) -> None: ...


class RepidMetrics:
    """The collectors, registered in `registry` (see the module docstring).

    `local`: the per-message metrics as `repid.prometheus.local` families (default: unless
    multiprocess mode is on).
    """

    received: Counter | LocalCounter
    processed: Counter | LocalCounter
    failed: Counter | LocalCounter
    processing_seconds: Histogram | LocalHistogram
    in_flight: Gauge | LocalGauge
    published: Counter | LocalCounter

    def __init__(self, registry: CollectorRegistry, *, local: bool | None = None) -> None:
        self.registry = registry
        self.local = multiprocess_dir() is None if local is None else local
        actor = ("actor", "channel")
        received = ("repid_messages_received", "Messages delivered to the worker, routed or not.")
        processed = ("repid_messages_processed", "Messages an actor ran on, by outcome.")
        failed = ("repid_messages_failed", "Messages whose actor raised, by exception class.")
        seconds = (
            "repid_message_processing_seconds",
            "Seconds from delivery to settlement (parse, middlewares, actor, settle).",
        )
        in_flight = ("repid_messages_in_flight", "Messages being processed now.")
        published = ("repid_messages_published", "Messages published.")
        if self.local:
            families = (
                LocalCounter(*received, ("channel",)),
                LocalCounter(*processed, (*actor, "outcome")),
                LocalCounter(*failed, (*actor, "error_type")),
                LocalHistogram(*seconds, actor, PROCESSING_BUCKETS),
                LocalGauge(*in_flight, actor),
                LocalCounter(*published, ("channel",)),
            )
            registry.register(LocalCollector(families))
            (
                self.received,
                self.processed,
                self.failed,
                self.processing_seconds,
                self.in_flight,
                self.published,
            ) = families
        else:
            self.received = Counter(*received, ("channel",), registry=registry)
            self.processed = Counter(*processed, (*actor, "outcome"), registry=registry)
            self.failed = Counter(*failed, (*actor, "error_type"), registry=registry)
            self.processing_seconds = Histogram(
                *seconds, actor, buckets=PROCESSING_BUCKETS, registry=registry
            )
            self.in_flight = Gauge(
                *in_flight, actor, multiprocess_mode="livesum", registry=registry
            )
            self.published = Counter(*published, ("channel",), registry=registry)
        self.publish_errors = Counter(
            "repid_publish_errors",
            "Publishes that raised, by exception class.",
            ("channel", "error_type"),
            registry=registry,
        )
        self.unrouted = Counter(
            "repid_messages_unrouted",
            "Messages no actor takes (rejected back to the channel).",
            ("channel",),
            registry=registry,
        )
        self.poison = Counter(
            "repid_messages_poison",
            "Unrouted messages nacked after too many deliveries.",
            ("channel",),
            registry=registry,
        )
        self.reconnects = Counter(
            "repid_broker_reconnects",
            "Subscriptions recovered after a lost connection, stream or consumer loop.",
            ("server",),
            registry=registry,
        )
        self.queue_depth = self._queue_gauge("repid_queue_depth", "Messages waiting.")
        self.queue_unacked = self._queue_gauge(
            "repid_queue_unacked", "Messages delivered to consumers and not settled yet."
        )
        self.consumer_lag = self._queue_gauge(
            "repid_consumer_lag", "Messages not processed yet: waiting plus unacked."
        )
        self.queue_dead_letters = self._queue_gauge(
            "repid_queue_dead_letters", "Messages in the channel's dead-letter store."
        )
        self.queue_consumers = self._queue_gauge(
            "repid_queue_consumers", "Consumers attached to the channel."
        )

    def _queue_gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(
            name,
            documentation + " Only where the broker can tell.",
            ("channel",),
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
