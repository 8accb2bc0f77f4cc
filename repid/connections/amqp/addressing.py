"""RabbitMQ 4 AMQP address format v2 and the conversion between `MessageData` and AMQP messages."""

from __future__ import annotations

import dataclasses
import logging
import os
import struct
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from repid.connections.abc import MessageData
from repid.connections.amqp.protocol.message import (
    AmqpMessageHeader,
    AmqpMessageProperties,
    AmqpSequence,
    AmqpValue,
    Message,
)
from repid.connections.amqp.protocol.types import Symbol, encode

__all__ = [
    "AddressStrategyT",
    "ExchangeAddressStrategyT",
    "PUBLISH_PARAMETERS",
    "build_message",
    "default_address_strategy",
    "encode_plain_message",
    "default_exchange_address_strategy",
    "headers_of",
    "new_message_id",
    "payload_of",
]

logger = logging.getLogger("repid.connections.amqp")

AddressStrategyT = Callable[[str], str]
"""channel -> AMQP target address used when publishing to a channel (default: its queue)."""

ExchangeAddressStrategyT = Callable[[str, str], str]
"""(exchange, routing key) -> AMQP target address, used when `routing_key` is given."""

PUBLISH_PARAMETERS = frozenset(
    {
        "header",
        "properties",
        "delivery_annotations",
        "message_annotations",
        "footers",
        "to",
        "routing_key",
    }
)


def _segment(name: str) -> str:
    # Address format v2 percent-encodes everything outside RFC 3986 "unreserved".
    return quote(name, safe="")


def default_address_strategy(channel: str) -> str:
    """`/queues/{channel}`: a channel names a queue."""
    return f"/queues/{_segment(channel)}"


def default_exchange_address_strategy(exchange: str, routing_key: str) -> str:
    """`/exchanges/{exchange}/{routing_key}` (`/exchanges/{exchange}` for an empty key)."""
    if routing_key == "":
        return f"/exchanges/{_segment(exchange)}"
    return f"/exchanges/{_segment(exchange)}/{_segment(routing_key)}"


_DEFAULT_HEADER = AmqpMessageHeader(durable=True)


def _symbol_keys(name: str, value: Any) -> dict[Any, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"server_specific_parameters[{name!r}] must be a dict")
    return {Symbol(k) if type(k) is str else k: v for k, v in value.items()}


def build_message(
    channel: str,
    message: MessageData,
    params: Mapping[str, Any] | None,
    address_strategy: AddressStrategyT,
    exchange_address_strategy: ExchangeAddressStrategyT,
) -> Message:
    """The AMQP message for `publish`: headers become application-properties, the payload one
    data section, content_type properties.content-type, reply_to properties.reply-to, and the
    target address goes in `to` (repid 2.x lays its messages out the same way).
    """
    header = _DEFAULT_HEADER
    properties: AmqpMessageProperties | None = None
    to: str | None = None
    routing_key: str | None = None
    delivery_annotations = message_annotations = footer = None
    if params:
        unknown = set(params) - PUBLISH_PARAMETERS
        if unknown:
            raise TypeError(
                f"unknown AmqpServer server_specific_parameters {sorted(unknown)}; "
                f"supported: {sorted(PUBLISH_PARAMETERS)}"
            )
        header = params.get("header") or _DEFAULT_HEADER
        if not isinstance(header, AmqpMessageHeader):
            raise TypeError("server_specific_parameters['header'] must be an AmqpMessageHeader")
        properties = params.get("properties")
        if properties is not None and not isinstance(properties, AmqpMessageProperties):
            raise TypeError(
                "server_specific_parameters['properties'] must be an AmqpMessageProperties"
            )
        to = params.get("to")
        routing_key = params.get("routing_key")
        delivery_annotations = _symbol_keys(
            "delivery_annotations", params.get("delivery_annotations")
        )
        message_annotations = _symbol_keys("message_annotations", params.get("message_annotations"))
        footer = _symbol_keys("footers", params.get("footers"))
    if to is None:
        if properties is not None and properties.to is not None:
            to = properties.to
        elif routing_key is not None:
            to = exchange_address_strategy(channel, routing_key)
        else:
            to = address_strategy(channel)
    if properties is None:
        properties = AmqpMessageProperties(
            message_id=new_message_id(),
            to=to,
            content_type=message.content_type,
            reply_to=message.reply_to,
        )
    else:
        properties = dataclasses.replace(
            properties,
            to=to,
            message_id=properties.message_id
            if properties.message_id is not None
            else new_message_id(),
            content_type=properties.content_type
            if properties.content_type is not None
            else message.content_type,
            reply_to=properties.reply_to if properties.reply_to is not None else message.reply_to,
        )
    return Message(
        body=[message.payload],
        header=header,
        delivery_annotations=delivery_annotations,
        message_annotations=message_annotations,
        properties=properties,
        application_properties=dict(message.headers) if message.headers else None,
        footer=footer,
    )


def new_message_id() -> str:
    """A random version-4 UUID as 32 hex digits, like `uuid.uuid4().hex` but cheaper."""
    value = int.from_bytes(os.urandom(16), "big")
    value = (value & _UUID_CLEAR) | _UUID_SET  # version 4, RFC 4122 variant
    return f"{value:032x}"


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)

# Constant sections of a plain message, encoded once: the default header, the descriptors of
# properties (0x73), application-properties (0x74) and data (0x75).
_HEADER_BYTES = encode(_DEFAULT_HEADER.to_described())
_pack_size = struct.Struct(">I").pack
_pack_list32 = struct.Struct(">BII").pack


def _variable(code8: int, code32: int, raw: bytes) -> bytes:
    n = len(raw)
    if n <= 0xFF:
        return bytes((code8, n)) + raw
    return bytes((code32,)) + _pack_size(n) + raw


def _compound(code8: int, code32: int, count: int, body: bytes) -> bytes:
    size = len(body)
    if count <= 0xFF and size + 1 <= 0xFF:
        return bytes((code8, size + 1, count)) + body
    return _pack_list32(code32, size + 4, count) + body


# The last (to, content type, reply-to, headers) encoded by `encode_plain_message`, with the
# bytes before and after the message id: consecutive publishes usually share all of them, and
# then only the id and the payload are new. One entry, replaced as a whole.
_last_plain: tuple[Any, ...] = (None, None, None, None, b"", b"")
_ID_LENGTH = 32  # new_message_id()
_ID_PLACEHOLDER = "0" * _ID_LENGTH


def encode_plain_message(
    message_id: str,
    to: str,
    payload: bytes,
    headers: Mapping[str, str] | None,
    ct: str | None,
    reply_to: str | None = None,
) -> bytes | None:
    """The encoded message `build_message` + `encode_message` give without parameters.

    Byte for byte the same (default header, properties message-id/to/reply-to/content-type, the
    headers as application-properties, one data section), written directly since this runs for
    every published message. Returns None for input it does not cover (non-str headers, a
    non-ASCII content type, unencodable strings): the generic path then encodes it or reports
    the error.
    """
    global _last_plain
    if len(message_id) == _ID_LENGTH and message_id.isascii():
        last = _last_plain
        if last[0] == to and last[1] == ct and last[2] == reply_to and last[3] == headers:
            before, after = last[4], last[5]
        else:
            template = _encode_sections(_ID_PLACEHOLDER, to, headers, ct, reply_to)
            if template is None:
                return None
            at = template.index(b"\xa1\x20" + _ID_PLACEHOLDER.encode()) + 2
            before, after = template[:at], template[at + _ID_LENGTH :]
            _last_plain = (to, ct, reply_to, dict(headers) if headers else headers, before, after)
        sections = [before, message_id.encode(), after]
    else:
        encoded = _encode_sections(message_id, to, headers, ct, reply_to)
        if encoded is None:
            return None
        sections = [encoded]
    n = len(payload)
    # The payload is joined once, not copied into a section first.
    sections.append(
        bytes((0, 0x53, 0x75, 0xA0, n)) if n <= 0xFF else b"\x00\x53\x75\xb0" + _pack_size(n)
    )
    sections.append(payload)
    return b"".join(sections)


def _encode_sections(
    message_id: str,
    to: str,
    headers: Mapping[str, str] | None,
    ct: str | None,
    reply_to: str | None,
) -> bytes | None:
    """Header, properties and application-properties of a plain message (no data section)."""
    try:
        props = _variable(0xA1, 0xB1, message_id.encode()) + b"\x40"
        props += _variable(0xA1, 0xB1, to.encode())
        fields = 3
        if reply_to is not None or ct is not None:
            # subject (null), reply-to; then correlation-id (null) and content-type
            props += b"\x40"
            props += b"\x40" if reply_to is None else _variable(0xA1, 0xB1, reply_to.encode())
            fields = 5
            if ct is not None:
                props += b"\x40" + _variable(0xA3, 0xB3, ct.encode("ascii"))
                fields = 7
        sections = [_HEADER_BYTES, b"\x00\x53\x73", _compound(0xC0, 0xD0, fields, props)]
        if headers:
            parts = []
            for key, value in headers.items():
                if type(key) is not str or type(value) is not str:
                    return None
                parts.append(_variable(0xA1, 0xB1, key.encode()))
                parts.append(_variable(0xA1, 0xB1, value.encode()))
            sections.append(b"\x00\x53\x74")
            sections.append(_compound(0xC1, 0xD1, len(parts), b"".join(parts)))
    except UnicodeEncodeError:
        return None
    return b"".join(sections)


def headers_of(message: Message) -> dict[str, str] | None:
    """application-properties as string headers (other clients may send non-string values)."""
    props = message.application_properties
    if not props:
        return None
    headers: dict[str, str] = {}
    for key, value in props.items():
        if not isinstance(key, str):
            continue
        if isinstance(value, str):
            headers[key] = value
        elif isinstance(value, bytes):
            headers[key] = value.decode("utf-8", "replace")
        elif isinstance(value, bool):
            headers[key] = "true" if value else "false"
        else:
            headers[key] = str(value)
    return headers


def payload_of(message: Message) -> bytes | None:
    """The payload bytes: data sections joined; a str/bytes amqp-value; None if unusable."""
    body = message.body
    if isinstance(body, AmqpValue):
        value = body.value
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        if value is None:
            return b""
        return None
    if body and isinstance(body[0], AmqpSequence):
        return None
    return b"".join(part for part in body if isinstance(part, bytes))
