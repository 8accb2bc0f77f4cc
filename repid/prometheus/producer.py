"""`PrometheusProducerMiddleware`: counts publishes and publish errors per channel."""

from __future__ import annotations

from typing import Any

from repid.data import MessageData
from repid.middlewares import ProducerCallT
from repid.prometheus.metrics import CounterChildT, RepidMetrics

__all__ = ["PrometheusProducerMiddleware"]


class PrometheusProducerMiddleware:
    """A producer middleware; `repid.prometheus.instrument` adds it."""

    def __init__(self, metrics: RepidMetrics) -> None:
        self.metrics = metrics
        self._published: dict[str, CounterChildT] = {}

    async def __call__(
        self,
        call_next: ProducerCallT,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None,
    ) -> Any:
        try:
            result = await call_next(channel, message, server_specific_parameters)
        except Exception as exc:
            self.metrics.publish_errors.labels(channel, type(exc).__qualname__).inc()
            raise
        counter = self._published.get(channel)
        if counter is None:
            counter = self._published[channel] = self.metrics.published.labels(channel)
        counter.inc()
        return result
