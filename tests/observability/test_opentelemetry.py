"""OpenTelemetry: one trace from `send_message_json` to the actor on every broker.

The SDK's in-memory exporter collects the spans; the W3C trace context (traceparent,
tracestate, baggage) travels in the message headers through each broker's wire format.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")  # the opentelemetry/prometheus extras and test tools

import logging

import pytest
from opentelemetry import baggage, context, metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

import repid.opentelemetry
from repid import InMemoryServer, Message, Repid, Router, TestClient
from tests.core.helpers import run_until
from tests.servers.conftest import BrokerKit, kit  # noqa: F401 - the parametrised fixture

SYSTEMS = {
    "memory": "repid_in_memory",
    "redis": "redis",
    "amqp": "rabbitmq",
    "pubsub": "gcp_pubsub",
    "sqlite": "sqlite",  # examples/sqlite_server.py: no well-known value, its protocol
}


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def instrument(self, app: Repid) -> repid.opentelemetry.Instrumentation:
        return repid.opentelemetry.instrument(
            app, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = list(self.exporter.get_finished_spans())
        return [s for s in found if name is None or s.name == name]

    def metric_points(self, name: str) -> list[tuple[dict[str, object], float]]:
        data = self.reader.get_metrics_data()
        points = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "value", None)
                            if value is None:
                                value = point.count  # type: ignore[attr-defined]
                            points.append((dict(point.attributes or {}), value))
        return points


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


async def test_one_trace_from_send_to_actor_on_every_broker(
    kit: BrokerKit,  # noqa: F811
    telemetry: Telemetry,
) -> None:
    app = kit.app()
    telemetry.instrument(app)
    channel = await kit.channel("otel")
    router = Router()
    seen: list[dict[str, object]] = []

    @router.actor(channel=channel)
    async def job(n: int, message: Message) -> None:
        current = trace.get_current_span()
        seen.append(
            {
                "n": n,
                "span_id": current.get_span_context().span_id,
                "trace_id": current.get_span_context().trace_id,
                "tracestate": current.get_span_context().trace_state.get("vendor"),
                "baggage": baggage.get_baggage("tenant"),
                "headers": dict(message.headers or {}),
                "message_id": message.message_id,
            }
        )
        if n == 1:
            raise ValueError("boom")

    app.include_router(router)
    # The producer runs inside a remote parent that carries a tracestate, with baggage set.
    parent = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "v1")]),
    )
    ctx = baggage.set_baggage("tenant", "acme", trace.set_span_in_context(NonRecordingSpan(parent)))
    token = context.attach(ctx)
    try:
        await app.send_message_json(channel=channel, payload={"n": 0}, headers={"topic": "job"})
        await app.send_message_json(channel=channel, payload={"n": 1}, headers={"topic": "job"})
    finally:
        context.detach(token)
    await run_until(app, lambda: len(seen) == 2, timeout=30)

    send_spans = sorted(telemetry.spans(f"send {channel}"), key=lambda s: s.start_time or 0)
    process_spans = {
        s.parent.span_id if s.parent else None: s for s in telemetry.spans(f"process {channel}")
    }
    assert len(send_spans) == 2 and len(process_spans) == 2
    by_n = {entry["n"]: entry for entry in seen}
    for n, send in enumerate(send_spans):
        entry = by_n[n]
        # One trace: the remote parent -> send (PRODUCER) -> process (CONSUMER).
        assert send.kind is SpanKind.PRODUCER
        assert send.context.trace_id == parent.trace_id
        assert send.parent is not None and send.parent.span_id == parent.span_id
        process = process_spans[send.context.span_id]
        assert process.kind is SpanKind.CONSUMER
        assert process.context.trace_id == parent.trace_id
        # The actor ran inside the process span, and the context survived the broker.
        assert entry["span_id"] == process.context.span_id
        assert entry["tracestate"] == "v1"
        assert entry["baggage"] == "acme"
        headers = entry["headers"]
        assert isinstance(headers, dict)
        assert headers["traceparent"].split("-")[2] == trace.format_span_id(send.context.span_id)
        assert headers["tracestate"] == "vendor=v1"
        assert headers["baggage"] == "tenant=acme"

        system = SYSTEMS[kit.name.split("-")[0]]  # redis-cluster, amqp-cluster: their broker
        assert send.attributes is not None and process.attributes is not None
        assert send.attributes["messaging.system"] == system
        assert send.attributes["messaging.destination.name"] == channel
        assert send.attributes["messaging.operation.type"] == "send"
        assert send.attributes["messaging.operation.name"] == "send"
        assert send.attributes["messaging.message.body.size"] == len(
            app.default_serializer({"n": n})
        )
        assert process.attributes["messaging.system"] == system
        assert process.attributes["messaging.destination.name"] == channel
        assert process.attributes["messaging.operation.type"] == "process"
        assert process.attributes["messaging.operation.name"] == "process"
        assert process.attributes["messaging.message.id"] == entry["message_id"]
        assert process.attributes["messaging.message.body.size"] > 0
        assert process.attributes["repid.actor.name"] == "job"
        if kit.name not in ("memory", "sqlite"):  # network servers: where they listen
            assert "server.address" in send.attributes
            assert isinstance(send.attributes.get("server.port"), int)
        if n == 0:
            assert process.attributes["repid.message.outcome"] == "ack"
            assert "error.type" not in process.attributes
            assert process.status.status_code is StatusCode.UNSET
        else:
            assert process.attributes["repid.message.outcome"] == "nack"
            assert process.attributes["error.type"] == "ValueError"
            assert process.status.status_code is StatusCode.ERROR
            assert any(e.name == "exception" for e in process.events)

    sent = telemetry.metric_points("messaging.client.sent.messages")
    assert sum(v for a, v in sent if a["messaging.destination.name"] == channel) == 2
    consumed = telemetry.metric_points("messaging.client.consumed.messages")
    assert sum(v for a, v in consumed if a["messaging.destination.name"] == channel) == 2
    durations = telemetry.metric_points("messaging.process.duration")
    by_error = {
        str(a.get("error.type")): v
        for a, v in durations
        if a["messaging.destination.name"] == channel
    }
    assert by_error == {"None": 1, "ValueError": 1}


async def test_spans_of_unrouted_messages_and_manual_outcomes(telemetry: Telemetry) -> None:
    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    telemetry.instrument(app)
    router = Router()

    @router.actor(channel="c", confirmation_mode="manual")
    async def manual(n: int, message: Message) -> None:
        if n == 0:
            await message.nack()
        elif n == 1:
            await message.reply_json(payload={"ok": True}, channel="replies")

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={"n": 0}, headers={"topic": "manual"})
        await client.send_message_json(channel="c", payload={"n": 1}, headers={"topic": "manual"})
        await client.send_message_json(channel="c", payload={"n": 2}, headers={"topic": "manual"})
        await client.send_message_json(channel="c", payload={"n": 3}, headers={"topic": "nobody"})
    outcomes = sorted(
        str(s.attributes.get("repid.message.outcome"))
        for s in telemetry.spans("process c")
        if s.attributes
    )
    assert outcomes == ["nack", "no_action", "reject", "reply"]
    unrouted = [
        s
        for s in telemetry.spans("process c")
        if s.attributes.get("error.type") == "repid.unrouted"
    ]
    assert len(unrouted) == 1
    assert unrouted[0].status.status_code is StatusCode.ERROR
    assert "repid.actor.name" not in unrouted[0].attributes


async def test_api_alone_adds_nothing(caplog: pytest.LogCaptureFixture) -> None:
    # The API's own providers never record: the app is left untouched (no per-message work).
    app = Repid()
    with caplog.at_level(logging.WARNING, logger="repid.opentelemetry"):
        result = repid.opentelemetry.instrument(
            app,
            tracer_provider=trace.NoOpTracerProvider(),
            meter_provider=metrics.NoOpMeterProvider(),
        )
    assert not result.tracing and not result.metrics
    assert app.observers == [] and app.producer_middlewares == []
    assert any(r.getMessage().startswith("opentelemetry.disabled") for r in caplog.records)


async def test_tracing_only_and_instrument_twice(telemetry: Telemetry) -> None:
    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)
    result = repid.opentelemetry.instrument(app, tracer_provider=telemetry.tracer_provider)
    assert result.tracing
    with pytest.raises(RuntimeError, match="already instrumented"):
        repid.opentelemetry.instrument(app, tracer_provider=telemetry.tracer_provider)
    router = Router()

    @router.actor(channel="c")
    async def job() -> None:
        return None

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={}, headers={"topic": "job"})
    names = sorted(s.name for s in telemetry.spans())
    assert names == ["process c", "send c"]


async def test_job_retries_are_new_spans_linked_to_the_first_attempt(
    telemetry: Telemetry,
) -> None:
    from repid import Connection, InMemoryMessageBroker, Job, Queue, Worker

    connection = Connection(InMemoryMessageBroker())
    app = Repid(connection)
    telemetry.instrument(app)
    runs: list[int] = []
    async with app.magic(auto_disconnect=True):
        worker = Worker(messages_limit=3, handle_signals=[])

        @worker.actor(queue="jobs", retry_policy=lambda retry_number=1: 0.0)
        async def flaky() -> None:
            runs.append(trace.get_current_span().get_span_context().span_id)
            if len(runs) < 3:
                raise RuntimeError(f"failure {len(runs)}")

        await Queue("jobs").declare()
        await Job("flaky", "jobs", retries=2).enqueue()
        await worker.run()

    assert len(runs) == 3
    sends = sorted(telemetry.spans("send jobs"), key=lambda s: s.start_time or 0)
    processes = sorted(telemetry.spans("process jobs"), key=lambda s: s.start_time or 0)
    assert len(sends) == 3 and len(processes) == 3  # the enqueue and two retries
    enqueue, first = sends[0], processes[0]
    assert {s.context.trace_id for s in sends + processes} == {enqueue.context.trace_id}
    assert [p.context.span_id for p in processes] == runs  # each attempt its own span
    assert first.parent is not None and first.parent.span_id == enqueue.context.span_id
    assert first.attributes is not None and "repid.job.attempt" not in first.attributes
    for attempt, process in enumerate(processes[1:], start=2):
        assert process.attributes is not None
        assert process.attributes["repid.job.attempt"] == attempt
        # The retry keeps its job's creation context, and links to the first attempt.
        assert process.parent is not None and process.parent.span_id == enqueue.context.span_id
        assert [link.context.span_id for link in process.links] == [first.context.span_id]
    for retry in sends[1:]:
        # Published from inside the failed attempt; linked to the job's creation context.
        assert retry.parent is not None
        assert retry.parent.span_id in {p.context.span_id for p in processes[:2]}
        assert [link.context.span_id for link in retry.links] == [enqueue.context.span_id]
    # A failed attempt that the job layer retried is acked (its failure is in the result
    # bucket and the job.failed log), so its span carries no error.
    assert [p.attributes.get("repid.message.outcome") for p in processes if p.attributes] == [
        "ack",
        "ack",
        "ack",
    ]
