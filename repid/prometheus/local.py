"""In-process counters, gauges and histograms for the per-message metrics, read at scrape time.

prometheus_client's `Counter.inc()` checks its arguments and takes a lock at every call, and
`Histogram.observe()` does that twice: about 1.5 us per message for each, several times per
message (measured in benchmarks/README.md). A worker calls its observers from its event loop,
one message at a time, so the per-message metrics here are plain numbers that the hooks
increment, and `LocalCollector` turns them into metric families when the registry is scraped.
The families, names, labels and samples (`_total`, `_created`, `_bucket`/`_count`/`_sum`) are
the ones prometheus_client's own collectors would produce.

`RepidMetrics` uses these only in single-process mode: with `PROMETHEUS_MULTIPROC_DIR` set
(`repid run --workers N`) every value has to reach prometheus_client's shared files, so the
regular collectors are used there.

The children assume their writers run on one thread at a time (the worker's event loop); a
scrape from another thread (prometheus_client's `start_http_server`) reads a snapshot that is
at most a message behind.
"""

from __future__ import annotations

import bisect
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = [
    "LocalCollector",
    "LocalCounter",
    "LocalCounterChild",
    "LocalGauge",
    "LocalGaugeChild",
    "LocalHistogram",
    "LocalHistogramChild",
]


def _created_series_enabled() -> bool:
    # prometheus_client's documented switch for the `_created` samples.
    flag = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower()
    return flag not in ("true", "1", "t")


class LocalCounterChild:
    """One labelled counter: `inc()` adds to a plain number."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class LocalGaugeChild:
    """One labelled gauge: `inc()`, `dec()`, `set()`."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = float(value)


class LocalHistogramChild:
    """One labelled histogram: `observe()` counts the value in its bucket (`le` semantics)."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: +Inf
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        # bisect_left: the first bound >= amount, i.e. the smallest `le` bucket it falls in.
        self.counts[bisect.bisect_left(self.bounds, amount)] += 1
        self.sum += amount


class _LocalFamily:
    """A metric's name, help text, label names and its children by label values."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)

    def _check(self, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values!r}")
        return tuple(str(v) for v in values)


class LocalCounter(_LocalFamily):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, documentation, labelnames)
        self.children: dict[tuple[str, ...], LocalCounterChild] = {}

    def labels(self, *values: str) -> LocalCounterChild:
        key = self._check(values)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = LocalCounterChild()
        return child

    def family(self, created: bool) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, child in list(self.children.items()):
            family.add_metric(key, child.value, created=child.created if created else None)
        return family


class LocalGauge(_LocalFamily):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, documentation, labelnames)
        self.children: dict[tuple[str, ...], LocalGaugeChild] = {}

    def labels(self, *values: str) -> LocalGaugeChild:
        key = self._check(values)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = LocalGaugeChild()
        return child

    def family(self, created: bool) -> Metric:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, child in list(self.children.items()):
            family.add_metric(key, child.value)
        return family


class LocalHistogram(_LocalFamily):
    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Iterable[float]
    ) -> None:
        super().__init__(name, documentation, labelnames)
        bounds = tuple(sorted(float(b) for b in buckets if not math.isinf(b)))
        self.bounds = bounds
        self._les = [floatToGoString(b) for b in bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self.children: dict[tuple[str, ...], LocalHistogramChild] = {}

    def labels(self, *values: str) -> LocalHistogramChild:
        key = self._check(values)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = LocalHistogramChild(self.bounds)
        return child

    def family(self, created: bool) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, child in list(self.children.items()):
            counts, total = list(child.counts), child.sum  # one snapshot per child
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for le, count in zip(self._les, counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric(key, buckets, total)
            if created:
                labels = dict(zip(self.labelnames, key, strict=True))
                family.samples.append(Sample(f"{self.name}_created", labels, child.created))
        return family


class LocalCollector(Collector):
    """Registered once per registry; yields the local families at every scrape."""

    def __init__(self, families: Sequence[LocalCounter | LocalGauge | LocalHistogram]) -> None:
        self.families = list(families)
        self._created = _created_series_enabled()

    def describe(self) -> Iterator[Metric]:
        # So that the registry refuses a second collector of the same names.
        for local in self.families:
            yield local.family(created=False)

    def collect(self) -> Iterator[Metric]:
        for local in self.families:
            yield local.family(self._created)
