"""AMQP 1.0 performatives, SASL frames, termini, errors and delivery states as dataclasses.

Field names and order follow the OASIS AMQP 1.0 specification (parts 2, 3 and 5). Every class
encodes with `to_described()` and decodes with `decode_composite()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from repid.connections.amqp.protocol.composite import (
    Composite,
    CompositeSpec,
    Field,
    register,
)

__all__ = [
    "ROLE_RECEIVER",
    "ROLE_SENDER",
    "Accepted",
    "Attach",
    "Begin",
    "Close",
    "DeliveryState",
    "Detach",
    "Disposition",
    "End",
    "Error",
    "Flow",
    "Modified",
    "Open",
    "Outcome",
    "Performative",
    "Received",
    "ReceiverSettleMode",
    "Rejected",
    "Released",
    "SaslChallenge",
    "SaslCode",
    "SaslInit",
    "SaslMechanisms",
    "SaslOutcome",
    "SaslResponse",
    "SenderSettleMode",
    "Source",
    "Target",
    "Transfer",
]

ROLE_SENDER = False
ROLE_RECEIVER = True


class SenderSettleMode:
    """snd-settle-mode values."""

    UNSETTLED = 0
    SETTLED = 1
    MIXED = 2


class ReceiverSettleMode:
    """rcv-settle-mode values."""

    FIRST = 0
    SECOND = 1


class SaslCode:
    """sasl-outcome codes."""

    OK = 0
    AUTH = 1
    SYS = 2
    SYS_PERM = 3
    SYS_TEMP = 4


def _f(name: str, kind: Any, default: Any = None, mandatory: bool = False) -> Field:
    return Field(name, kind, default, mandatory)


# ------------------------------------------------------------------ error, delivery states


@register
@dataclass(slots=True)
class Error(Composite):
    """An error condition with an optional description and info map."""

    condition: str
    description: str | None = None
    info: dict[Any, Any] | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x1D,
        "amqp:error:list",
        (_f("condition", "symbol", mandatory=True), _f("description", "string"), _f("info", "map")),
    )


class DeliveryState(Composite):
    """Base of delivery states (received and the outcomes)."""

    __slots__ = ()


class Outcome(DeliveryState):
    """Base of terminal delivery states."""

    __slots__ = ()


@register
@dataclass(slots=True)
class Received(DeliveryState):
    """Partial-delivery state (resume support)."""

    section_number: int
    section_offset: int
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x23,
        "amqp:received:list",
        (
            _f("section_number", "uint", mandatory=True),
            _f("section_offset", "ulong", mandatory=True),
        ),
    )


@register
@dataclass(slots=True)
class Accepted(Outcome):
    """The message was processed."""

    _spec: ClassVar[CompositeSpec] = CompositeSpec(0x24, "amqp:accepted:list", ())


@register
@dataclass(slots=True)
class Rejected(Outcome):
    """The message is invalid and will not be processed (RabbitMQ dead-letters it)."""

    error: Error | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x25, "amqp:rejected:list", (_f("error", Error),)
    )


@register
@dataclass(slots=True)
class Released(Outcome):
    """The message was not processed and may be delivered again."""

    _spec: ClassVar[CompositeSpec] = CompositeSpec(0x26, "amqp:released:list", ())


@register
@dataclass(slots=True)
class Modified(Outcome):
    """Released with changes: delivery-failed counts as a failed attempt."""

    delivery_failed: bool = False
    undeliverable_here: bool = False
    message_annotations: dict[Any, Any] | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x27,
        "amqp:modified:list",
        (
            _f("delivery_failed", "bool", False),
            _f("undeliverable_here", "bool", False),
            _f("message_annotations", "map"),
        ),
    )


_STATES = (Received, Accepted, Rejected, Released, Modified)
_OUTCOMES = (Accepted, Rejected, Released, Modified)


# ------------------------------------------------------------------ termini


@register
@dataclass(slots=True)
class Source(Composite):
    """The source terminus of a link (where messages come from)."""

    address: Any = None
    durable: int = 0
    expiry_policy: str = "session-end"
    timeout: int = 0
    dynamic: bool = False
    dynamic_node_properties: dict[Any, Any] | None = None
    distribution_mode: str | None = None
    filter: dict[Any, Any] | None = None
    default_outcome: Outcome | None = None
    outcomes: list[str] | None = None
    capabilities: list[str] | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x28,
        "amqp:source:list",
        (
            _f("address", "any"),
            _f("durable", "uint", 0),
            _f("expiry_policy", "symbol", "session-end"),
            _f("timeout", "uint", 0),
            _f("dynamic", "bool", False),
            _f("dynamic_node_properties", "map"),
            _f("distribution_mode", "symbol"),
            _f("filter", "map"),
            _f("default_outcome", _OUTCOMES),
            _f("outcomes", "symbols"),
            _f("capabilities", "symbols"),
        ),
    )


@register
@dataclass(slots=True)
class Target(Composite):
    """The target terminus of a link (where messages go)."""

    address: Any = None
    durable: int = 0
    expiry_policy: str = "session-end"
    timeout: int = 0
    dynamic: bool = False
    dynamic_node_properties: dict[Any, Any] | None = None
    capabilities: list[str] | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x29,
        "amqp:target:list",
        (
            _f("address", "any"),
            _f("durable", "uint", 0),
            _f("expiry_policy", "symbol", "session-end"),
            _f("timeout", "uint", 0),
            _f("dynamic", "bool", False),
            _f("dynamic_node_properties", "map"),
            _f("capabilities", "symbols"),
        ),
    )


# ------------------------------------------------------------------ performatives


class Performative(Composite):
    """Base of the nine AMQP frame bodies."""

    __slots__ = ()


@register
@dataclass(slots=True)
class Open(Performative):
    """Connection negotiation (spec 2.7.1); idle_time_out is in milliseconds."""

    container_id: str
    hostname: str | None = None
    max_frame_size: int = 0xFFFFFFFF
    channel_max: int = 0xFFFF
    idle_time_out: int | None = None
    outgoing_locales: list[str] | None = None
    incoming_locales: list[str] | None = None
    offered_capabilities: list[str] | None = None
    desired_capabilities: list[str] | None = None
    properties: dict[Any, Any] | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x10,
        "amqp:open:list",
        (
            _f("container_id", "string", mandatory=True),
            _f("hostname", "string"),
            _f("max_frame_size", "uint", 0xFFFFFFFF),
            _f("channel_max", "ushort", 0xFFFF),
            _f("idle_time_out", "uint"),
            _f("outgoing_locales", "symbols"),
            _f("incoming_locales", "symbols"),
            _f("offered_capabilities", "symbols"),
            _f("desired_capabilities", "symbols"),
            _f("properties", "map"),
        ),
    )


@register
@dataclass(slots=True)
class Begin(Performative):
    """Session start (spec 2.7.2)."""

    remote_channel: int | None
    next_outgoing_id: int
    incoming_window: int
    outgoing_window: int
    handle_max: int = 0xFFFFFFFF
    offered_capabilities: list[str] | None = None
    desired_capabilities: list[str] | None = None
    properties: dict[Any, Any] | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x11,
        "amqp:begin:list",
        (
            _f("remote_channel", "ushort"),
            _f("next_outgoing_id", "uint", mandatory=True),
            _f("incoming_window", "uint", mandatory=True),
            _f("outgoing_window", "uint", mandatory=True),
            _f("handle_max", "uint", 0xFFFFFFFF),
            _f("offered_capabilities", "symbols"),
            _f("desired_capabilities", "symbols"),
            _f("properties", "map"),
        ),
    )


@register
@dataclass(slots=True)
class Attach(Performative):
    """Link attach (spec 2.7.3); role False = sender, True = receiver."""

    name: str
    handle: int
    role: bool
    snd_settle_mode: int = SenderSettleMode.MIXED
    rcv_settle_mode: int = ReceiverSettleMode.FIRST
    source: Source | None = None
    target: Target | None = None
    unsettled: dict[Any, Any] | None = None
    incomplete_unsettled: bool = False
    initial_delivery_count: int | None = None
    max_message_size: int | None = None
    offered_capabilities: list[str] | None = None
    desired_capabilities: list[str] | None = None
    properties: dict[Any, Any] | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x12,
        "amqp:attach:list",
        (
            _f("name", "string", mandatory=True),
            _f("handle", "uint", mandatory=True),
            _f("role", "bool", mandatory=True),
            _f("snd_settle_mode", "ubyte", SenderSettleMode.MIXED),
            _f("rcv_settle_mode", "ubyte", ReceiverSettleMode.FIRST),
            _f("source", Source),
            _f("target", Target),
            _f("unsettled", "map"),
            _f("incomplete_unsettled", "bool", False),
            _f("initial_delivery_count", "uint"),
            _f("max_message_size", "ulong"),
            _f("offered_capabilities", "symbols"),
            _f("desired_capabilities", "symbols"),
            _f("properties", "map"),
        ),
    )


@register
@dataclass(slots=True)
class Flow(Performative):
    """Session window and (with a handle) link credit update (spec 2.7.4)."""

    next_incoming_id: int | None
    incoming_window: int
    next_outgoing_id: int
    outgoing_window: int
    handle: int | None = None
    delivery_count: int | None = None
    link_credit: int | None = None
    available: int | None = None
    drain: bool = False
    echo: bool = False
    properties: dict[Any, Any] | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x13,
        "amqp:flow:list",
        (
            _f("next_incoming_id", "uint"),
            _f("incoming_window", "uint", mandatory=True),
            _f("next_outgoing_id", "uint", mandatory=True),
            _f("outgoing_window", "uint", mandatory=True),
            _f("handle", "uint"),
            _f("delivery_count", "uint"),
            _f("link_credit", "uint"),
            _f("available", "uint"),
            _f("drain", "bool", False),
            _f("echo", "bool", False),
            _f("properties", "map"),
        ),
    )


@register
@dataclass(slots=True)
class Transfer(Performative):
    """One frame of a delivery (spec 2.7.5); the message bytes follow it in the frame."""

    handle: int
    delivery_id: int | None = None
    delivery_tag: bytes | None = None
    message_format: int | None = None
    settled: bool | None = None
    more: bool = False
    rcv_settle_mode: int | None = None
    state: DeliveryState | None = None
    resume: bool = False
    aborted: bool = False
    batchable: bool = False
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x14,
        "amqp:transfer:list",
        (
            _f("handle", "uint", mandatory=True),
            _f("delivery_id", "uint"),
            _f("delivery_tag", "binary"),
            _f("message_format", "uint"),
            _f("settled", "bool"),
            _f("more", "bool", False),
            _f("rcv_settle_mode", "ubyte"),
            _f("state", _STATES),
            _f("resume", "bool", False),
            _f("aborted", "bool", False),
            _f("batchable", "bool", False),
        ),
    )


@register
@dataclass(slots=True)
class Disposition(Performative):
    """Settlement/state update for the delivery ids first..last (spec 2.7.6)."""

    role: bool
    first: int
    last: int | None = None
    settled: bool = False
    state: DeliveryState | None = None
    batchable: bool = False
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x15,
        "amqp:disposition:list",
        (
            _f("role", "bool", mandatory=True),
            _f("first", "uint", mandatory=True),
            _f("last", "uint"),
            _f("settled", "bool", False),
            _f("state", _STATES),
            _f("batchable", "bool", False),
        ),
    )


@register
@dataclass(slots=True)
class Detach(Performative):
    """Link detach (spec 2.7.7); closed=True ends the link for good."""

    handle: int
    closed: bool = False
    error: Error | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x16,
        "amqp:detach:list",
        (_f("handle", "uint", mandatory=True), _f("closed", "bool", False), _f("error", Error)),
    )


@register
@dataclass(slots=True)
class End(Performative):
    """Session end (spec 2.7.8)."""

    error: Error | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(0x17, "amqp:end:list", (_f("error", Error),))


@register
@dataclass(slots=True)
class Close(Performative):
    """Connection close (spec 2.7.9)."""

    error: Error | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(0x18, "amqp:close:list", (_f("error", Error),))


# ------------------------------------------------------------------ SASL (spec part 5.3)


@register
@dataclass(slots=True)
class SaslMechanisms(Composite):
    """The server's list of SASL mechanisms."""

    sasl_server_mechanisms: list[str] = field(default_factory=list)
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x40,
        "amqp:sasl-mechanisms:list",
        (_f("sasl_server_mechanisms", "symbols", mandatory=True),),
    )


@register
@dataclass(slots=True)
class SaslInit(Composite):
    """The client's chosen mechanism and initial response."""

    mechanism: str
    initial_response: bytes | None = None
    hostname: str | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x41,
        "amqp:sasl-init:list",
        (
            _f("mechanism", "symbol", mandatory=True),
            _f("initial_response", "binary"),
            _f("hostname", "string"),
        ),
    )


@register
@dataclass(slots=True)
class SaslChallenge(Composite):
    """A server challenge."""

    challenge: bytes
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x42, "amqp:sasl-challenge:list", (_f("challenge", "binary", mandatory=True),)
    )


@register
@dataclass(slots=True)
class SaslResponse(Composite):
    """A client response to a challenge."""

    response: bytes
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x43, "amqp:sasl-response:list", (_f("response", "binary", mandatory=True),)
    )


@register
@dataclass(slots=True)
class SaslOutcome(Composite):
    """The result of authentication (code 0 = ok)."""

    code: int
    additional_data: bytes | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x44,
        "amqp:sasl-outcome:list",
        (_f("code", "ubyte", mandatory=True), _f("additional_data", "binary")),
    )
