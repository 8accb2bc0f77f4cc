"""`TracingProducerMiddleware`: a `send` span per published message, its context in the headers.

The span is `send {channel}`, kind PRODUCER, with `messaging.system`,
`messaging.destination.name`, `messaging.operation.type`/`.name` (`send`),
`messaging.message.body.size` and `server.address`/`server.port`; a failed publish sets
`error.type` and the span status. Its context is injected into the message headers with the
global propagator (W3C `traceparent`, `tracestate` and `baggage` by default), so the worker's
`process` span becomes its child.

As the conventions ask, a message that already carries a trace context (one the caller put in
its headers, or a job retry, which keeps its job's headers) keeps it: its consumer's span is a
child of that creation context, and the `send` span links to it. A job retry (`job-attempt`
above 1) also carries `repid-first-attempt`, the first attempt's `process` span in W3C
`traceparent` format, which the retry's `process` span links to: every attempt is a span of its
own in the job's trace, linked to the first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind

from repid.connections.abc import ServerT
from repid.data import MessageData
from repid.jobs.headers import ATTEMPT
from repid.middlewares import ProducerCallT
from repid.opentelemetry import _conventions as conv

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter

__all__ = ["FIRST_ATTEMPT_HEADER", "TracingProducerMiddleware"]

FIRST_ATTEMPT_HEADER = "repid-first-attempt"


def format_traceparent(context: trace.SpanContext) -> str:
    return (
        f"00-{trace.format_trace_id(context.trace_id)}-"
        f"{trace.format_span_id(context.span_id)}-{int(context.trace_flags):02x}"
    )


class TracingProducerMiddleware:
    """A producer middleware (see the module docstring); `repid.opentelemetry.instrument`
    adds it. `tracer` or `sent` may be None (tracing or metrics off)."""

    def __init__(
        self,
        tracer: trace.Tracer | None,
        sent: Counter | None,
        server: ServerT | None = None,
    ) -> None:
        self._tracer = tracer
        self._sent = sent
        self._server = server
        self._base = conv.server_attributes(server)
        self._by_channel: dict[str, dict[str, Any]] = {}
        # server id -> (that server, the bound copy): kept with the server, never read off
        # another instance's private attributes.
        self._bound: dict[int, tuple[ServerT, TracingProducerMiddleware]] = {}

    def for_server(self, server: ServerT) -> TracingProducerMiddleware:
        found = self._bound.get(id(server))
        if found is None or found[0] is not server:
            found = self._bound[id(server)] = (
                server,
                TracingProducerMiddleware(self._tracer, self._sent, server),
            )
        return found[1]

    def _attributes(self, channel: str) -> dict[str, Any]:
        found = self._by_channel.get(channel)
        if found is None:
            found = self._by_channel[channel] = {
                **self._base,
                conv.DESTINATION_NAME: channel,
                conv.OPERATION_TYPE: "send",
                conv.OPERATION_NAME: "send",
            }
        return found

    async def __call__(
        self,
        call_next: ProducerCallT,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None,
    ) -> Any:
        attributes = self._attributes(channel)
        tracer = self._tracer
        if tracer is None:
            return await self._counted(call_next, channel, message, server_specific_parameters)
        headers = message.headers
        if headers is None:
            headers = message.headers = {}
        links = None
        if "traceparent" in headers:
            creation = trace.get_current_span(propagate.extract(headers)).get_span_context()
            if creation.is_valid:
                links = [Link(creation)]
        attempt = headers.get(ATTEMPT)
        if attempt is not None and attempt != "1" and FIRST_ATTEMPT_HEADER not in headers:
            # Published while the first attempt's process span is current.
            current = trace.get_current_span().get_span_context()
            if current.is_valid:
                headers[FIRST_ATTEMPT_HEADER] = format_traceparent(current)
        with tracer.start_as_current_span(
            f"send {channel}",
            kind=SpanKind.PRODUCER,
            attributes={**attributes, conv.BODY_SIZE: len(message.payload)},
            links=links,
        ) as span:
            if links is None:
                propagate.inject(headers)
            try:
                result = await call_next(channel, message, server_specific_parameters)
            except Exception as exc:
                kind = conv.error_type(exc)
                span.set_attribute(conv.ERROR_TYPE, kind)
                if self._sent is not None:
                    self._sent.add(1, {**attributes, conv.ERROR_TYPE: kind})
                raise
        if self._sent is not None:
            self._sent.add(1, attributes)
        return result

    async def _counted(
        self,
        call_next: ProducerCallT,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None,
    ) -> Any:
        attributes = self._attributes(channel)
        sent = self._sent
        assert sent is not None
        try:
            result = await call_next(channel, message, server_specific_parameters)
        except Exception as exc:
            sent.add(1, {**attributes, conv.ERROR_TYPE: conv.error_type(exc)})
            raise
        sent.add(1, attributes)
        return result
