"""AMQP 1.0 framing (spec part 2.3): protocol headers, the 8-byte frame header, frame bodies."""

from __future__ import annotations

import struct
from typing import Any

from repid.connections.amqp.protocol.composite import Composite, decode_composite
from repid.connections.amqp.protocol.errors import AmqpProtocolError, Condition
from repid.connections.amqp.protocol.performatives import (
    Performative,
    SaslChallenge,
    SaslInit,
    SaslMechanisms,
    SaslOutcome,
    SaslResponse,
    Transfer,
)
from repid.connections.amqp.protocol.types import _Buffer, decode_value, encode_value

__all__ = [
    "AMQP_HEADER",
    "EMPTY_FRAME",
    "FRAME_HEADER_SIZE",
    "MIN_MAX_FRAME_SIZE",
    "SASL_HEADER",
    "TYPE_AMQP",
    "TYPE_SASL",
    "FrameHeader",
    "decode_frame_body",
    "encode_frame",
    "encode_frame_header",
    "parse_frame_header",
]

AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
SASL_HEADER = b"AMQP\x03\x01\x00\x00"
TYPE_AMQP = 0
TYPE_SASL = 1
FRAME_HEADER_SIZE = 8
#: Every peer must accept frames of at least this size, and frames before open stay within it.
MIN_MAX_FRAME_SIZE = 512
#: The heartbeat: a frame with no body.
EMPTY_FRAME = b"\x00\x00\x00\x08\x02\x00\x00\x00"

_HEADER = struct.Struct(">IBBH")
_SASL_BODIES = (SaslMechanisms, SaslInit, SaslChallenge, SaslResponse, SaslOutcome)


class FrameHeader:
    """size, data offset (in 4-byte words), type and channel of one frame."""

    __slots__ = ("channel", "doff", "size", "type")

    def __init__(self, size: int, doff: int, type: int, channel: int) -> None:
        self.size = size
        self.doff = doff
        self.type = type
        self.channel = channel


def parse_frame_header(buf: _Buffer, pos: int, max_frame_size: int) -> FrameHeader:
    """Validate the frame header at `buf[pos:pos+8]` (the caller checked 8 bytes are there)."""
    size, doff, frame_type, channel = _HEADER.unpack_from(buf, pos)
    if size < FRAME_HEADER_SIZE:
        raise AmqpProtocolError(Condition.FRAMING_ERROR, f"frame size {size} is below 8")
    if size > max_frame_size:
        raise AmqpProtocolError(
            Condition.FRAMING_ERROR, f"frame size {size} exceeds the maximum {max_frame_size}"
        )
    if doff < 2 or doff * 4 > size:
        raise AmqpProtocolError(Condition.FRAMING_ERROR, f"invalid data offset {doff}")
    if frame_type not in (TYPE_AMQP, TYPE_SASL):
        raise AmqpProtocolError(Condition.FRAMING_ERROR, f"unknown frame type {frame_type}")
    return FrameHeader(size, doff, frame_type, channel)


def encode_frame_header(size: int, frame_type: int, channel: int) -> bytes:
    """The 8-byte header of a frame of `size` bytes (no extended header)."""
    return _HEADER.pack(size, 2, frame_type, channel)


def encode_frame(
    body: Composite | Any, *, channel: int = 0, frame_type: int = TYPE_AMQP, payload: bytes = b""
) -> bytes:
    """One whole frame: header, encoded performative and (for transfers) payload."""
    out = bytearray(8)
    encode_value(body.to_described(), out)
    out += payload
    out[0:8] = _HEADER.pack(len(out), 2, frame_type, channel)
    return bytes(out)


def decode_frame_body(
    buf: _Buffer, start: int, end: int, frame_type: int
) -> tuple[Composite, _Buffer]:
    """Decode the performative (or SASL body) in `buf[start:end]`; return it and its payload.

    Only transfer frames may carry a payload after the performative.
    """
    described, pos = decode_value(buf, start, end)
    body = decode_composite(described)
    if frame_type == TYPE_SASL:
        if not isinstance(body, _SASL_BODIES):
            raise AmqpProtocolError(Condition.DECODE_ERROR, "non-SASL body in a SASL frame")
    elif not isinstance(body, Performative):
        raise AmqpProtocolError(Condition.DECODE_ERROR, f"{body._spec.name} is not a performative")
    if pos != end and not isinstance(body, Transfer):
        raise AmqpProtocolError(
            Condition.DECODE_ERROR, f"{end - pos} unexpected bytes after {body._spec.name}"
        )
    return body, buf[pos:end]
