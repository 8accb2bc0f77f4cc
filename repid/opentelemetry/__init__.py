"""OpenTelemetry traces and metrics for Repid (extra `opentelemetry`: `opentelemetry-api`).

    from opentelemetry.sdk.trace import TracerProvider   # the SDK is your choice
    import repid.opentelemetry

    trace.set_tracer_provider(TracerProvider(...))      # configure first, then:
    repid.opentelemetry.instrument(app)

`instrument(app)` adds to the app:

- `TracingProducerMiddleware` (a producer middleware): a `send {channel}` PRODUCER span per
  publish, its W3C trace context (`traceparent`, `tracestate`, `baggage`) injected into the
  message headers, and the `messaging.client.sent.messages` counter;
- `TracingObserver` (a message observer, see `repid.observers`): a `process {channel}`
  CONSUMER span per message, a child of the `send` span, current while the actor runs and
  ended after the message was settled, with the outcome, actor, channel, message id, body size
  and error type; the `messaging.client.consumed.messages` counter and the
  `messaging.process.duration` histogram.

Names and attributes follow the OpenTelemetry semantic conventions for messaging (see the
modules' docstrings for the exact list). Job retries are spans of their own, linked to the
first attempt.

Providers are chosen once, here: `tracer_provider` / `meter_provider`, else the global ones.
A provider that cannot record (the API's no-op or proxy provider, i.e. no SDK configured yet)
switches that half off, so with the API alone a worker does no per-message tracing work at all:
configure the SDK before calling `instrument`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace

from repid.opentelemetry import _conventions as conv
from repid.opentelemetry.consumer import TracingObserver
from repid.opentelemetry.producer import FIRST_ATTEMPT_HEADER, TracingProducerMiddleware

__all__ = [
    "FIRST_ATTEMPT_HEADER",
    "Instrumentation",
    "TracingObserver",
    "TracingProducerMiddleware",
    "instrument",
]

logger = logging.getLogger("repid.opentelemetry")

_SCOPE = "repid"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("repid")
    except PackageNotFoundError:  # pragma: no cover - a source checkout without metadata
        return "0"


def _records(provider: Any, api_module: str) -> bool:
    # The API's own providers (no-op, and the proxy that stands in until an SDK is set) live
    # in the API package; anything else (the SDK, a vendor's) records.
    return not type(provider).__module__.startswith(api_module)


@dataclass(frozen=True)
class Instrumentation:
    """What `instrument` added to an app; `tracing` / `metrics` say whether each half is on
    (both off: nothing was added)."""

    producer_middleware: TracingProducerMiddleware | None
    observer: TracingObserver | None
    tracing: bool
    metrics: bool


def instrument(
    app: Any,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> Instrumentation:
    """Add OpenTelemetry tracing and metrics to `app` (a `repid.Repid`); see the module doc.

    Call it once per app, before the worker starts (the worker reads the app's middlewares and
    observers when it compiles its actors). Instrumenting an app twice raises `RuntimeError`.
    """
    if any(isinstance(o, TracingObserver) for o in app.observers):
        raise RuntimeError(f"{app!r} is already instrumented with OpenTelemetry")
    tracers = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    meters = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    tracer = None
    if _records(tracers, "opentelemetry.trace"):
        tracer = tracers.get_tracer(_SCOPE, _version())
    sent = consumed = duration = None
    if _records(meters, "opentelemetry.metrics"):
        meter = meters.get_meter(_SCOPE, _version())
        sent = meter.create_counter(
            conv.SENT_MESSAGES,
            unit="{message}",
            description="Number of messages producer attempted to send to the broker.",
        )
        consumed = meter.create_counter(
            conv.CONSUMED_MESSAGES,
            unit="{message}",
            description="Number of messages that were delivered to the application.",
        )
        duration = meter.create_histogram(
            conv.PROCESS_DURATION,
            unit="s",
            description="Duration of processing operation.",
            explicit_bucket_boundaries_advisory=conv.DURATION_BUCKETS,
        )
    if tracer is None and sent is None:
        logger.warning(
            "opentelemetry.disabled: no tracer or meter provider records (no OpenTelemetry SDK "
            "configured); nothing is added to the app. Configure the SDK before instrument()",
            extra={"tracing": False, "metrics": False},
        )
        return Instrumentation(None, None, tracing=False, metrics=False)
    producer = TracingProducerMiddleware(tracer, sent)
    observer = TracingObserver(tracer, consumed, duration)
    # Outermost: the spans cover every other middleware and observer.
    app.producer_middlewares.insert(0, producer)
    app.observers.insert(0, observer)
    logger.info(
        "opentelemetry.instrumented: tracing %s, metrics %s",
        "on" if tracer is not None else "off",
        "on" if sent is not None else "off",
        extra={"tracing": tracer is not None, "metrics": sent is not None},
    )
    return Instrumentation(producer, observer, tracing=tracer is not None, metrics=sent is not None)
