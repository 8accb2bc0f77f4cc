"""`TracingObserver`: a `process` span around each message, a child of its `send` span.

An observer (see `repid.observers`), so that the span covers the middlewares, the actor and the
settlement, and can carry the outcome. The span is `process {channel}`, kind CONSUMER, started
from the context extracted from the message headers (global propagator), current while the
actor runs (so what the actor sends or logs belongs to it), with `messaging.system`,
`messaging.destination.name`, `messaging.operation.type`/`.name` (`process`),
`messaging.message.id`, `messaging.message.body.size`, `server.address`/`server.port`,
`repid.actor.name`, `repid.message.outcome` and, for a job retry, `repid.job.attempt` and a
link to the first attempt. A failure sets `error.type` (the exception's class name), records
the exception and sets the span status to ERROR.

Metrics: `messaging.client.consumed.messages` (one per delivery, unrouted ones included) and
`messaging.process.duration` (seconds, with `error.type` on failure).

A message no actor takes gets a short `process` span too, with `error.type` `repid.unrouted`
(rejected) or `repid.poison` (nacked after too many deliveries).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from repid.connections.abc import ReceivedMessageT, ServerT
from repid.data import ActorData
from repid.jobs.headers import ATTEMPT
from repid.opentelemetry import _conventions as conv
from repid.opentelemetry.producer import FIRST_ATTEMPT_HEADER

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram

__all__ = ["TracingObserver"]

_W3C = TraceContextTextMapPropagator()


def _first_attempt_link(headers: dict[str, str]) -> list[Link] | None:
    value = headers.get(FIRST_ATTEMPT_HEADER)
    if value is None:
        return None
    span_context = trace.get_current_span(_W3C.extract({"traceparent": value})).get_span_context()
    if not span_context.is_valid:
        return None
    return [Link(span_context, {"repid.link": "first_attempt"})]


class TracingObserver:
    """A message observer (see the module docstring); `repid.opentelemetry.instrument` adds
    it. `tracer`, or `consumed` and `duration`, may be None (tracing or metrics off)."""

    def __init__(
        self,
        tracer: trace.Tracer | None,
        consumed: Counter | None,
        duration: Histogram | None,
        server: ServerT | None = None,
    ) -> None:
        self._tracer = tracer
        self._consumed = consumed
        self._duration = duration
        self._server = server
        self._base = conv.server_attributes(server)
        self._by_channel: dict[str, dict[str, Any]] = {}
        self._by_actor: dict[int, tuple[ActorData, dict[str, Any], str]] = {}
        # server id -> (that server, the bound copy): kept with the server, never read off
        # another instance's private attributes.
        self._bound: dict[int, tuple[ServerT, TracingObserver]] = {}

    def for_server(self, server: ServerT) -> TracingObserver:
        found = self._bound.get(id(server))
        if found is None or found[0] is not server:
            found = self._bound[id(server)] = (
                server,
                TracingObserver(self._tracer, self._consumed, self._duration, server),
            )
        return found[1]

    def _channel_attributes(self, channel: str) -> dict[str, Any]:
        found = self._by_channel.get(channel)
        if found is None:
            found = self._by_channel[channel] = {
                **self._base,
                conv.DESTINATION_NAME: channel,
                conv.OPERATION_TYPE: "process",
                conv.OPERATION_NAME: "process",
            }
        return found

    def _actor_attributes(self, actor: ActorData, channel: str) -> tuple[dict[str, Any], str]:
        found = self._by_actor.get(id(actor))
        if found is None or found[0] is not actor:
            attributes = {**self._channel_attributes(channel), conv.ACTOR_NAME: actor.name}
            found = self._by_actor[id(actor)] = (actor, attributes, f"process {channel}")
        return found[1], found[2]

    # Observer hooks --------------------------------------------------------------------------

    def process_started(self, message: ReceivedMessageT, actor: ActorData) -> Any:
        channel = message.channel
        if self._consumed is not None:
            self._consumed.add(1, self._channel_attributes(channel))
        tracer = self._tracer
        if tracer is None:
            return None
        attributes, name = self._actor_attributes(actor, channel)
        attributes = {**attributes, conv.BODY_SIZE: len(message.payload)}
        message_id = message.message_id
        if message_id is not None:
            attributes[conv.MESSAGE_ID] = message_id
        headers = message.headers
        parent = None
        links = None
        if headers:
            parent = propagate.extract(headers)
            attempt = headers.get(ATTEMPT)
            if attempt is not None and attempt != "1":
                attributes[conv.JOB_ATTEMPT] = int(attempt) if attempt.isdigit() else attempt
                links = _first_attempt_link(headers)
        span = tracer.start_span(
            name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes, links=links
        )
        token = context.attach(trace.set_span_in_context(span, parent))
        return span, token

    def process_finished(
        self,
        state: Any,
        message: ReceivedMessageT,
        actor: ActorData,
        outcome: str,
        exception: BaseException | None,
        duration: float,
    ) -> None:
        kind = conv.error_type(exception) if exception is not None else None
        if self._duration is not None:
            attributes = self._channel_attributes(message.channel)
            if kind is not None:
                attributes = {**attributes, conv.ERROR_TYPE: kind}
            self._duration.record(duration, attributes)
        if state is None:
            return
        span, token = state
        context.detach(token)
        span.set_attribute(conv.OUTCOME, outcome)
        if exception is not None:
            span.set_attribute(conv.ERROR_TYPE, kind or "_OTHER")
            span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR, f"{kind}: {exception}"))
        span.end()

    def message_unrouted(self, message: ReceivedMessageT, poison: bool) -> None:
        channel = message.channel
        kind = conv.POISON if poison else conv.UNROUTED
        if self._consumed is not None:
            self._consumed.add(1, {**self._channel_attributes(channel), conv.ERROR_TYPE: kind})
        tracer = self._tracer
        if tracer is None:
            return
        attributes = {
            **self._channel_attributes(channel),
            conv.BODY_SIZE: len(message.payload),
            conv.ERROR_TYPE: kind,
            conv.OUTCOME: "nack" if poison else "reject",
        }
        if message.message_id is not None:
            attributes[conv.MESSAGE_ID] = message.message_id
        parent = propagate.extract(message.headers) if message.headers else None
        span = tracer.start_span(
            f"process {channel}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        )
        span.set_status(Status(StatusCode.ERROR, "no actor takes the message"))
        span.end()
