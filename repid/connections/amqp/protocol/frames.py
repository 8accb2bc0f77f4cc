"""AMQP 1.0 framing (spec part 2.3): protocol headers, the 8-byte frame header, frame bodies."""

from __future__ import annotations

import struct
from typing import Any

from repid.connections.amqp.protocol.composite import Composite, decode_composite
from repid.connections.amqp.protocol.errors import AmqpProtocolError, Condition
from repid.connections.amqp.protocol.performatives import (
    Accepted,
    Disposition,
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
    if (
        frame_type == TYPE_AMQP
        and end - start >= 8
        and buf[start] == 0x00
        and buf[start + 1] == 0x53
    ):
        # The two performatives that come once per message, in their common shape, skip the
        # generic decoder (None: anything else, decoded below).
        code = buf[start + 2]
        if code == 0x15:
            disposition = _plain_disposition(buf, start + 3, end)
            if disposition is not None:
                return disposition, b""
        elif code == 0x14:
            transfer = _plain_transfer(buf, start + 3, end)
            if transfer is not None:
                return transfer
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


# The shapes of the fields of a disposition as brokers send it for a publisher confirm:
# booleans as true/false constructors (or null for the defaults), uints as uint0 / smalluint /
# uint, the state as accepted with an empty list (list0 or an empty list8). RabbitMQ 4 sends
# `c0 0b 06 41 52 01 40 41 00 53 24 45 40`: role, first, no last, settled, accepted, null.
_ACCEPTED_BODIES = (b"\x00\x53\x24\x45", b"\x00\x53\x24\xc0\x01\x00")
_unpack_uint = struct.Struct(">I").unpack_from


def _plain_uint(buf: _Buffer, pos: int, end: int) -> tuple[int | None, int]:
    """(value, next position) of a uint at `pos`, or (None, pos) if it is not one."""
    code = buf[pos] if pos < end else -1
    if code == 0x43:
        return 0, pos + 1
    if code == 0x52 and pos + 2 <= end:
        return buf[pos + 1], pos + 2
    if code == 0x70 and pos + 5 <= end:
        value: int = _unpack_uint(buf, pos + 1)[0]
        return value, pos + 5
    return None, pos


def _plain_flag(buf: _Buffer, pos: int, stop: int) -> int:
    """1 / 0 for a true / false constructor at `pos`, 2 for null, -1 for anything else."""
    if pos >= stop:
        return -1
    return _FLAGS.get(buf[pos], -1)


_FLAGS = {0x41: 1, 0x42: 0, 0x40: 2}


def _plain_disposition(buf: _Buffer, pos: int, end: int) -> Disposition | None:
    """Decode a disposition's field list in the common shape without the generic decoder.

    Returns None for anything else (other encodings, other states, trailing bytes), which
    then takes the generic, fully validating path: this only shortcuts a publisher confirm,
    which arrives once per published message. `buf` may go on past `end` (the next frame):
    nothing at or after `end` is read.
    """
    if buf[pos] != 0xC0:
        return None
    size, count = buf[pos + 1], buf[pos + 2]
    stop = pos + 2 + size
    if stop != end or not 2 <= count <= 6:
        return None
    pos += 3
    role = _plain_flag(buf, pos, stop)
    if role != 0 and role != 1:
        return None  # role is mandatory: not null
    first, pos = _plain_uint(buf, pos + 1, stop)
    if first is None:
        return None
    last: int | None = None
    settled = batchable = 0
    state: Any = None
    if count >= 3:
        if pos < stop and buf[pos] == 0x40:
            pos += 1
        else:
            last, pos = _plain_uint(buf, pos, stop)
            if last is None:
                return None
    if count >= 4:
        settled = _plain_flag(buf, pos, stop)
        if settled < 0:
            return None
        pos += 1
    if count >= 5:
        if pos < stop and buf[pos] == 0x40:
            pos += 1
        elif bytes(buf[pos : min(pos + 4, stop)]) == _ACCEPTED_BODIES[0]:
            state, pos = Accepted(), pos + 4
        elif bytes(buf[pos : min(pos + 6, stop)]) == _ACCEPTED_BODIES[1]:
            state, pos = Accepted(), pos + 6
        else:
            return None
    if count == 6:  # RabbitMQ sends batchable, as null
        batchable = _plain_flag(buf, pos, stop)
        if batchable < 0:
            return None
        pos += 1
    if pos != stop:
        return None
    # null (2) means the field's default, false
    return Disposition(role == 1, first, last, settled == 1, state, batchable == 1)


def _plain_transfer(buf: _Buffer, pos: int, end: int) -> tuple[Transfer, _Buffer] | None:
    """Decode a transfer's field list in the common shape without the generic decoder.

    The shape brokers deliver messages with: handle, delivery-id and message-format as uints,
    the delivery tag as a binary of up to 255 bytes, the flags as true/false/null, and null for
    rcv-settle-mode and state. Returns None for anything else, which then takes the generic,
    fully validating path. This runs once per message a consumer receives.
    """
    if buf[pos] != 0xC0:
        return None
    size, count = buf[pos + 1], buf[pos + 2]
    stop = pos + 2 + size
    if stop > end or not 1 <= count <= 11:
        return None
    pos += 3
    handle, pos = _plain_uint(buf, pos, stop)
    if handle is None:
        return None  # handle is mandatory: not null
    # [delivery-id, delivery-tag, message-format, settled, more, rcv-settle-mode, state,
    #  resume, aborted, batchable], None where absent or null.
    fields: list[Any] = [None] * 10
    for index in range(count - 1):
        if pos >= stop:
            return None
        code = buf[pos]
        if code == 0x40:
            pos += 1
            continue
        if index == 0 or index == 2:
            fields[index], pos = _plain_uint(buf, pos, stop)
            if fields[index] is None:
                return None
        elif index == 1:
            if code != 0xA0 or pos + 1 >= stop:
                return None
            n = buf[pos + 1]
            if pos + 2 + n > stop:
                return None
            fields[1] = bytes(buf[pos + 2 : pos + 2 + n])
            pos += 2 + n
        elif index in (5, 6):  # rcv-settle-mode, state: the generic path
            return None
        else:
            flag = _FLAGS.get(code, -1)
            if flag < 0:
                return None
            fields[index] = flag == 1
            pos += 1
    if pos != stop:
        return None
    delivery_id, tag, message_format, settled, more, _, _, resume, aborted, batchable = fields
    transfer = Transfer(
        handle,
        delivery_id,
        tag,
        message_format,
        settled,
        more is True,
        None,
        None,
        resume is True,
        aborted is True,
        batchable is True,
    )
    return transfer, buf[stop:end]
