"""The AMQP 1.0 message format (spec part 3.2): sections, and whole-message encode/decode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from repid.connections.amqp.protocol.composite import Composite, CompositeSpec, Field, register
from repid.connections.amqp.protocol.errors import AmqpProtocolError, Condition
from repid.connections.amqp.protocol.types import (
    Described,
    Ulong,
    _Buffer,
    decode_value,
    encode_value,
    skip_value,
)

__all__ = [
    "AmqpHeader",
    "AmqpMessageHeader",
    "AmqpMessageProperties",
    "AmqpProperties",
    "AmqpSequence",
    "AmqpValue",
    "Message",
    "decode_message",
    "encode_message",
]


@register
@dataclass(slots=True)
class AmqpMessageHeader(Composite):
    """The header section: transport-level delivery hints.

    `ttl` is in milliseconds. `durable=True` asks the broker to keep the message on disk.
    """

    durable: bool = False
    priority: int = 4
    ttl: int | None = None
    first_acquirer: bool = False
    delivery_count: int = 0
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x70,
        "amqp:header:list",
        (
            Field("durable", "bool", False),
            Field("priority", "ubyte", 4),
            Field("ttl", "uint"),
            Field("first_acquirer", "bool", False),
            Field("delivery_count", "uint", 0),
        ),
    )


@register
@dataclass(slots=True)
class AmqpMessageProperties(Composite):
    """The properties section: immutable, application-visible message properties.

    Times (`absolute_expiry_time`, `creation_time`) are milliseconds since the Unix epoch.
    """

    message_id: Any = None
    user_id: bytes | None = None
    to: str | None = None
    subject: str | None = None
    reply_to: str | None = None
    correlation_id: Any = None
    content_type: str | None = None
    content_encoding: str | None = None
    absolute_expiry_time: int | None = None
    creation_time: int | None = None
    group_id: str | None = None
    group_sequence: int | None = None
    reply_to_group_id: str | None = None
    _spec: ClassVar[CompositeSpec] = CompositeSpec(
        0x73,
        "amqp:properties:list",
        (
            Field("message_id", "message_id"),
            Field("user_id", "binary"),
            Field("to", "any"),  # an address: a string for every broker we know
            Field("subject", "string"),
            Field("reply_to", "any"),
            Field("correlation_id", "message_id"),
            Field("content_type", "symbol"),
            Field("content_encoding", "symbol"),
            Field("absolute_expiry_time", "timestamp"),
            Field("creation_time", "timestamp"),
            Field("group_id", "string"),
            Field("group_sequence", "uint"),
            Field("reply_to_group_id", "string"),
        ),
    )


#: The names the seed's parameter list uses for the same classes.
AmqpHeader = AmqpMessageHeader
AmqpProperties = AmqpMessageProperties


@dataclass(slots=True)
class AmqpValue:
    """An amqp-value body: a single AMQP value."""

    value: Any


@dataclass(slots=True)
class AmqpSequence:
    """An amqp-sequence body section: a list of values (a message may carry several)."""

    items: list[Any]


@dataclass(slots=True)
class Message:
    """A whole annotated message.

    `body` is a list of data sections (`bytes`), a list of `AmqpSequence` sections, or a single
    `AmqpValue`.
    """

    body: list[bytes] | list[AmqpSequence] | AmqpValue = field(default_factory=list)
    header: AmqpMessageHeader | None = None
    delivery_annotations: dict[Any, Any] | None = None
    message_annotations: dict[Any, Any] | None = None
    properties: AmqpMessageProperties | None = None
    application_properties: dict[str, Any] | None = None
    footer: dict[Any, Any] | None = None

    @property
    def data(self) -> bytes:
        """The concatenated data sections (empty if the body is not data)."""
        body = self.body
        if isinstance(body, list) and all(isinstance(part, bytes) for part in body):
            return b"".join(body)  # type: ignore[arg-type]
        return b""


_D_DELIVERY_ANNOTATIONS = Ulong(0x71)
_D_MESSAGE_ANNOTATIONS = Ulong(0x72)
_D_APPLICATION_PROPERTIES = Ulong(0x74)
_D_DATA = Ulong(0x75)
_D_SEQUENCE = Ulong(0x76)
_D_VALUE = Ulong(0x77)
_D_FOOTER = Ulong(0x78)

_SECTION_NAMES = {
    "amqp:header:list": 0x70,
    "amqp:delivery-annotations:map": 0x71,
    "amqp:message-annotations:map": 0x72,
    "amqp:properties:list": 0x73,
    "amqp:application-properties:map": 0x74,
    "amqp:data:binary": 0x75,
    "amqp:amqp-sequence:list": 0x76,
    "amqp:amqp-value:*": 0x77,
    "amqp:footer:map": 0x78,
}


def encode_message(message: Message) -> bytes:
    """Encode the sections of `message` in the order the spec requires."""
    out = bytearray()
    if message.header is not None:
        encode_value(message.header.to_described(), out)
    if message.delivery_annotations:
        encode_value(Described(_D_DELIVERY_ANNOTATIONS, message.delivery_annotations), out)
    if message.message_annotations:
        encode_value(Described(_D_MESSAGE_ANNOTATIONS, message.message_annotations), out)
    if message.properties is not None:
        encode_value(message.properties.to_described(), out)
    if message.application_properties:
        encode_value(Described(_D_APPLICATION_PROPERTIES, message.application_properties), out)
    body = message.body
    if isinstance(body, AmqpValue):
        encode_value(Described(_D_VALUE, body.value), out)
    else:
        for part in body:
            if isinstance(part, AmqpSequence):
                encode_value(Described(_D_SEQUENCE, part.items), out)
            else:
                encode_value(Described(_D_DATA, part), out)
    if message.footer:
        encode_value(Described(_D_FOOTER, message.footer), out)
    return bytes(out)


def _error(description: str) -> AmqpProtocolError:
    return AmqpProtocolError(Condition.DECODE_ERROR, description)


_SKIPPABLE = frozenset({0x71, 0x72, 0x78})


def decode_message(data: _Buffer, *, annotations: bool = True) -> Message:
    """Decode a whole message; sections must be known, in order, with the right value types.

    `annotations=False` steps over delivery-annotations, message-annotations and the footer
    without decoding them (they stay None): the consume path does not read them.
    """
    message = Message()
    data_sections: list[bytes] = []
    sequences: list[AmqpSequence] = []
    value: AmqpValue | None = None
    last = 0x6F
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] != 0x00:
            raise _error("a message section must be a described type")
        descriptor, pos = decode_value(data, pos + 1, end, 1)
        code = descriptor
        if isinstance(code, str):
            code = _SECTION_NAMES.get(code, -1)
        if not isinstance(code, int) or isinstance(code, bool) or not 0x70 <= code <= 0x78:
            raise _error(f"unknown message section {descriptor!r}")
        body_code = 0x75 <= code <= 0x77
        if code < last or (code == last and not body_code):
            raise _error("message sections out of order or repeated")
        last = code
        if not annotations and code in _SKIPPABLE:
            pos = skip_value(data, pos, end, 1)
            continue
        inner, pos = decode_value(data, pos, end, 1)
        if code == 0x70:
            if not isinstance(inner, list):
                raise _error("header is not a list")
            message.header = AmqpMessageHeader.from_fields(inner)
        elif code == 0x73:
            if not isinstance(inner, list):
                raise _error("properties is not a list")
            message.properties = AmqpMessageProperties.from_fields(inner)
        elif code == 0x75:
            if not isinstance(inner, bytes) or sequences or value is not None:
                raise _error("invalid data section")
            data_sections.append(inner)
        elif code == 0x76:
            if not isinstance(inner, list) or data_sections or value is not None:
                raise _error("invalid amqp-sequence section")
            sequences.append(AmqpSequence(inner))
        elif code == 0x77:
            if data_sections or sequences or value is not None:
                raise _error("invalid amqp-value section")
            value = AmqpValue(inner)
        else:
            if inner is not None and not isinstance(inner, dict):
                raise _error("annotations/properties/footer sections must be maps")
            if code == 0x71:
                message.delivery_annotations = inner
            elif code == 0x72:
                message.message_annotations = inner
            elif code == 0x74:
                message.application_properties = inner
            else:
                message.footer = inner
    if value is not None:
        message.body = value
    elif sequences:
        message.body = sequences
    else:
        message.body = data_sections
    return message
