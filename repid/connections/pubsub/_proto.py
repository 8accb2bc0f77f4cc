"""A hand-written protobuf codec for the few `google.pubsub.v1` messages Repid uses.

Why not the `protobuf` runtime with code generated from Google's `pubsub.proto`?

* The `pubsub` extra then needs only `grpcio` and `google-auth`; neither depends on `protobuf`,
  so generated code would add a third (large, native) dependency and a generated-code version
  that has to match the installed runtime.
* Repid uses nine messages and a dozen fields of them. The wire format for those (varints,
  length-delimited bytes/strings/sub-messages, packed int32) is small enough to write, test
  with hypothesis round trips and check against the real emulator.
* Decoding straight into slotted records avoids building full message objects we would convert
  again anyway, and keeps the per-message hot path free of descriptor reflection.

Field numbers are the ones in `google/pubsub/v1/pubsub.proto` (package `google.pubsub.v1`).
Decoders skip fields they do not know (so newer servers can add fields), reject truncated or
malformed input with `DecodeError`, and bound every length by the bytes actually present.
Only proto3 wire types 0 (varint), 1 (64-bit), 2 (length-delimited) and 5 (32-bit) are
accepted; the deprecated group types are rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "AcknowledgeRequest",
    "DecodeError",
    "ModifyAckDeadlineRequest",
    "PublishRequest",
    "PubsubMessage",
    "ReceivedMessage",
    "StreamingPullRequest",
    "decode_acknowledge_request",
    "decode_empty",
    "decode_modify_ack_deadline_request",
    "decode_publish_request",
    "decode_publish_response",
    "decode_pubsub_message",
    "decode_streaming_pull_request",
    "decode_streaming_pull_response",
    "decode_subscription_delivery_limit",
    "encode_acknowledge_request",
    "encode_get_subscription_request",
    "encode_modify_ack_deadline_request",
    "encode_publish_request",
    "encode_publish_response",
    "encode_pubsub_message",
    "encode_streaming_pull_request",
    "encode_streaming_pull_response",
    "encode_subscription_dead_letter_policy",
]

# Wire types.
_VARINT = 0
_I64 = 1
_LEN = 2
_I32 = 5

_MASK64 = (1 << 64) - 1


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the expected message."""


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class PubsubMessage:
    """`google.pubsub.v1.PubsubMessage` (publish_time is kept as seconds + nanos)."""

    data: bytes = b""  # 1
    attributes: dict[str, str] = field(default_factory=dict)  # 2 (map<string, string>)
    message_id: str = ""  # 3
    publish_time_seconds: int = 0  # 4 -> google.protobuf.Timestamp.seconds (1)
    publish_time_nanos: int = 0  # 4 -> google.protobuf.Timestamp.nanos (2)
    ordering_key: str = ""  # 5


@dataclass(slots=True)
class ReceivedMessage:
    """`google.pubsub.v1.ReceivedMessage`."""

    ack_id: str = ""  # 1
    message: PubsubMessage = field(default_factory=PubsubMessage)  # 2
    delivery_attempt: int = 0  # 3 (0 when the subscription has no dead-letter policy)


@dataclass(slots=True)
class PublishRequest:
    """`google.pubsub.v1.PublishRequest`."""

    topic: str = ""  # 1
    messages: list[PubsubMessage] = field(default_factory=list)  # 2


@dataclass(slots=True)
class StreamingPullRequest:
    """`google.pubsub.v1.StreamingPullRequest` (the fields Repid sends)."""

    subscription: str = ""  # 1
    ack_ids: list[str] = field(default_factory=list)  # 2
    modify_deadline_seconds: list[int] = field(default_factory=list)  # 3 (packed int32)
    modify_deadline_ack_ids: list[str] = field(default_factory=list)  # 4
    stream_ack_deadline_seconds: int = 0  # 5
    client_id: str = ""  # 6
    max_outstanding_messages: int = 0  # 7 (int64)
    max_outstanding_bytes: int = 0  # 8 (int64)


@dataclass(slots=True)
class AcknowledgeRequest:
    """`google.pubsub.v1.AcknowledgeRequest`."""

    subscription: str = ""  # 1
    ack_ids: list[str] = field(default_factory=list)  # 2


@dataclass(slots=True)
class ModifyAckDeadlineRequest:
    """`google.pubsub.v1.ModifyAckDeadlineRequest` (note: ack_ids is field 4)."""

    subscription: str = ""  # 1
    ack_ids: list[str] = field(default_factory=list)  # 4
    ack_deadline_seconds: int = 0  # 3


# ---------------------------------------------------------------------------------------------
# Encoding primitives
# ---------------------------------------------------------------------------------------------

# Tags for the fields we write, computed once: (field_number << 3) | wire_type.
_ONE_BYTE_VARINTS = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    """Encode a non-negative int, or a negative int64/int32 as its 10-byte two's complement."""
    if 0 <= value < 128:
        return _ONE_BYTE_VARINTS[value]
    value &= _MASK64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field_number: int, wire_type: int) -> bytes:
    return _varint((field_number << 3) | wire_type)


def _put_len(out: bytearray, tag: bytes, payload: bytes) -> None:
    out += tag
    out += _varint(len(payload))
    out += payload


def _put_str(out: bytearray, tag: bytes, value: str) -> None:
    if value:
        _put_len(out, tag, value.encode())


def _put_int(out: bytearray, tag: bytes, value: int) -> None:
    if value:
        out += tag
        out += _varint(value)


_T1_LEN = _tag(1, _LEN)
_T2_LEN = _tag(2, _LEN)
_T3_LEN = _tag(3, _LEN)
_T4_LEN = _tag(4, _LEN)
_T5_LEN = _tag(5, _LEN)
_T6_LEN = _tag(6, _LEN)
_T13_LEN = _tag(13, _LEN)
_T1_VARINT = _tag(1, _VARINT)
_T2_VARINT = _tag(2, _VARINT)
_T3_VARINT = _tag(3, _VARINT)
_T5_VARINT = _tag(5, _VARINT)
_T7_VARINT = _tag(7, _VARINT)
_T8_VARINT = _tag(8, _VARINT)


def _map_entry(key: str, value: str) -> bytes:
    entry = bytearray()
    _put_str(entry, _T1_LEN, key)
    _put_str(entry, _T2_LEN, value)
    return bytes(entry)


# ---------------------------------------------------------------------------------------------
# Decoding primitives
# ---------------------------------------------------------------------------------------------


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Return (value, new_pos); at most 10 bytes, never past `end`."""
    if pos >= end:
        raise DecodeError("truncated varint")
    byte = buf[pos]
    if byte < 0x80:  # the common case: a small field number or length
        return byte, pos + 1
    result = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        if pos >= end:
            raise DecodeError("truncated varint")
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _MASK64, pos
        shift += 7


def _read_len(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a length prefix; return (start, stop) of the bytes it covers, within `end`."""
    length, pos = _read_varint(buf, pos, end)
    stop = pos + length
    if stop > end:
        raise DecodeError(f"length {length} runs past the end of the message")
    return pos, stop


def _skip(buf: bytes, pos: int, end: int, wire_type: int) -> int:
    """Skip one unknown field's value; return the position after it."""
    if wire_type == _VARINT:
        return _read_varint(buf, pos, end)[1]
    if wire_type == _LEN:
        return _read_len(buf, pos, end)[1]
    if wire_type == _I64:
        pos += 8
    elif wire_type == _I32:
        pos += 4
    else:
        raise DecodeError(f"unsupported wire type {wire_type}")
    if pos > end:
        raise DecodeError("truncated fixed-width field")
    return pos


def _utf8(buf: bytes, start: int, stop: int) -> str:
    try:
        return buf[start:stop].decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"invalid UTF-8 in a string field: {exc}") from None


def _int32(value: int) -> int:
    """Reinterpret a decoded varint as a signed int32 (negative int32s use 10 bytes)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _int64(value: int) -> int:
    return value - (1 << 64) if value & (1 << 63) else value


def _skip_or_reject(buf: bytes, pos: int, end: int, tag: int, wires: Mapping[int, int]) -> int:
    """After a tag the fast path did not take: reject a known field with the wrong wire type,
    skip an unknown field. Returns the position after it."""
    number, wire = tag >> 3, tag & 7
    expected = wires.get(number)
    if expected is not None and wire != expected:
        _check_wire(number, wire, expected)
    return _skip(buf, pos, end, wire)


# Field number -> wire type of the decoders with a fast path.
_MAP_ENTRY_WIRES = {1: _LEN, 2: _LEN}
_PUBSUB_MESSAGE_WIRES = {1: _LEN, 2: _LEN, 3: _LEN, 4: _LEN, 5: _LEN}
_RECEIVED_MESSAGE_WIRES = {1: _LEN, 2: _LEN, 3: _VARINT}


def _check_wire(field_number: int, wire_type: int, expected: int) -> None:
    if wire_type != expected:
        raise DecodeError(f"field {field_number} has wire type {wire_type}, expected {expected}")


def _decode_strings_only(
    buf: bytes, string_fields: Mapping[int, list[str]], scalar_fields: dict[int, int]
) -> None:
    """Decode a flat message of repeated strings and int varints into the given containers."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        target = string_fields.get(number)
        if target is not None:
            _check_wire(number, wire, _LEN)
            start, pos = _read_len(buf, pos, end)
            target.append(_utf8(buf, start, pos))
        elif number in scalar_fields:
            _check_wire(number, wire, _VARINT)
            value, pos = _read_varint(buf, pos, end)
            scalar_fields[number] = value
        else:
            pos = _skip(buf, pos, end, wire)


# ---------------------------------------------------------------------------------------------
# PubsubMessage
# ---------------------------------------------------------------------------------------------


def encode_pubsub_message(
    data: bytes,
    attributes: Mapping[str, str] | None = None,
    ordering_key: str = "",
    *,
    message_id: str = "",
    publish_time_seconds: int = 0,
    publish_time_nanos: int = 0,
) -> bytes:
    """Encode a PubsubMessage. Publishers leave message_id and publish_time empty."""
    out = bytearray()
    if data:
        _put_len(out, _T1_LEN, data)
    if attributes:
        for key, value in attributes.items():
            _put_len(out, _T2_LEN, _map_entry(key, value))
    _put_str(out, _T3_LEN, message_id)
    if publish_time_seconds or publish_time_nanos:
        ts = bytearray()
        _put_int(ts, _T1_VARINT, publish_time_seconds)
        _put_int(ts, _T2_VARINT, publish_time_nanos)
        _put_len(out, _T4_LEN, bytes(ts))
    _put_str(out, _T5_LEN, ordering_key)
    return bytes(out)


def _decode_map_entry(buf: bytes, pos: int, end: int) -> tuple[str, str]:
    key = value = ""
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _read_varint(buf, pos, end)
        if tag & 7 != _LEN:
            pos = _skip_or_reject(buf, pos, end, tag, _MAP_ENTRY_WIRES)
            continue
        # The length, inline for the usual one-byte case (this runs for every attribute).
        if pos < end and buf[pos] < 0x80:
            start = pos + 1
            pos = start + buf[pos]
            if pos > end:
                raise DecodeError("a length runs past the end of the message")
        else:
            start, pos = _read_len(buf, pos, end)
        if tag == 0x0A:
            key = _utf8(buf, start, pos)
        elif tag == 0x12:
            value = _utf8(buf, start, pos)
    return key, value


def _decode_timestamp(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    seconds = nanos = 0
    while pos < end:
        tag, pos = _read_varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 1:
            _check_wire(number, wire, _VARINT)
            raw, pos = _read_varint(buf, pos, end)
            seconds = _int64(raw)
        elif number == 2:
            _check_wire(number, wire, _VARINT)
            raw, pos = _read_varint(buf, pos, end)
            nanos = _int32(raw)
        else:
            pos = _skip(buf, pos, end, wire)
    return seconds, nanos


def _decode_pubsub_message(buf: bytes, pos: int, end: int) -> PubsubMessage:
    # Every field of PubsubMessage is length-delimited: one fast path reads them all.
    data = b""
    attributes: dict[str, str] = {}
    message_id = ordering_key = ""
    seconds = nanos = 0
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _read_varint(buf, pos, end)
        if tag & 7 != _LEN:
            pos = _skip_or_reject(buf, pos, end, tag, _PUBSUB_MESSAGE_WIRES)
            continue
        if pos < end and buf[pos] < 0x80:
            start = pos + 1
            pos = start + buf[pos]
            if pos > end:
                raise DecodeError("a length runs past the end of the message")
        else:
            start, pos = _read_len(buf, pos, end)
        if tag == 0x0A:  # 1: data
            data = buf[start:pos]
        elif tag == 0x12:  # 2: attributes entry
            key, value = _decode_map_entry(buf, start, pos)
            attributes[key] = value
        elif tag == 0x1A:  # 3: message_id
            message_id = _utf8(buf, start, pos)
        elif tag == 0x22:  # 4: publish_time
            seconds, nanos = _decode_timestamp(buf, start, pos)
        elif tag == 0x2A:  # 5: ordering_key
            ordering_key = _utf8(buf, start, pos)
    return PubsubMessage(data, attributes, message_id, seconds, nanos, ordering_key)


def decode_pubsub_message(buf: bytes) -> PubsubMessage:
    """Decode a PubsubMessage."""
    return _decode_pubsub_message(buf, 0, len(buf))


def _encode_message_record(msg: PubsubMessage) -> bytes:
    return encode_pubsub_message(
        msg.data,
        msg.attributes,
        msg.ordering_key,
        message_id=msg.message_id,
        publish_time_seconds=msg.publish_time_seconds,
        publish_time_nanos=msg.publish_time_nanos,
    )


# ---------------------------------------------------------------------------------------------
# Publish
# ---------------------------------------------------------------------------------------------


def encode_publish_request(topic: str, encoded_messages: Iterable[bytes]) -> bytes:
    """Encode a PublishRequest from already encoded PubsubMessages."""
    out = bytearray()
    _put_str(out, _T1_LEN, topic)
    for encoded in encoded_messages:
        _put_len(out, _T2_LEN, encoded)
    return bytes(out)


def decode_publish_request(buf: bytes) -> PublishRequest:
    """Decode a PublishRequest (used by tests; servers decode these)."""
    request = PublishRequest()
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _read_varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 1:
            _check_wire(number, wire, _LEN)
            start, pos = _read_len(buf, pos, end)
            request.topic = _utf8(buf, start, pos)
        elif number == 2:
            _check_wire(number, wire, _LEN)
            start, pos = _read_len(buf, pos, end)
            request.messages.append(_decode_pubsub_message(buf, start, pos))
        else:
            pos = _skip(buf, pos, end, wire)
    return request


def encode_publish_response(message_ids: Sequence[str]) -> bytes:
    """Encode a PublishResponse (used by tests)."""
    out = bytearray()
    for message_id in message_ids:
        _put_len(out, _T1_LEN, message_id.encode())
    return bytes(out)


def decode_publish_response(buf: bytes) -> list[str]:
    """Decode a PublishResponse into its message ids."""
    ids: list[str] = []
    _decode_strings_only(buf, {1: ids}, {})
    return ids


def decode_empty(buf: bytes) -> None:
    """Decode `google.protobuf.Empty` (anything is accepted: unknown fields are skipped)."""
    return


# ---------------------------------------------------------------------------------------------
# StreamingPull
# ---------------------------------------------------------------------------------------------


def encode_streaming_pull_request(
    *,
    subscription: str = "",
    ack_ids: Sequence[str] = (),
    modify_deadline_seconds: Sequence[int] = (),
    modify_deadline_ack_ids: Sequence[str] = (),
    stream_ack_deadline_seconds: int = 0,
    client_id: str = "",
    max_outstanding_messages: int = 0,
    max_outstanding_bytes: int = 0,
) -> bytes:
    """Encode a StreamingPullRequest; empty fields are omitted (proto3 defaults)."""
    if len(modify_deadline_seconds) != len(modify_deadline_ack_ids):
        raise ValueError("modify_deadline_seconds and modify_deadline_ack_ids differ in length")
    out = bytearray()
    _put_str(out, _T1_LEN, subscription)
    for ack_id in ack_ids:
        _put_len(out, _T2_LEN, ack_id.encode())
    if modify_deadline_seconds:
        packed = b"".join(_varint(seconds) for seconds in modify_deadline_seconds)
        _put_len(out, _T3_LEN, packed)
    for ack_id in modify_deadline_ack_ids:
        _put_len(out, _T4_LEN, ack_id.encode())
    _put_int(out, _T5_VARINT, stream_ack_deadline_seconds)
    _put_str(out, _T6_LEN, client_id)
    _put_int(out, _T7_VARINT, max_outstanding_messages)
    _put_int(out, _T8_VARINT, max_outstanding_bytes)
    return bytes(out)


def decode_streaming_pull_request(buf: bytes) -> StreamingPullRequest:
    """Decode a StreamingPullRequest (used by tests). Accepts packed and unpacked field 3."""
    request = StreamingPullRequest()
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _read_varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 3:
            if wire == _LEN:  # packed
                start, pos = _read_len(buf, pos, end)
                while start < pos:
                    raw, start = _read_varint(buf, start, pos)
                    request.modify_deadline_seconds.append(_int32(raw))
            else:
                _check_wire(number, wire, _VARINT)
                raw, pos = _read_varint(buf, pos, end)
                request.modify_deadline_seconds.append(_int32(raw))
        elif number in (1, 2, 4, 6):
            _check_wire(number, wire, _LEN)
            start, pos = _read_len(buf, pos, end)
            text = _utf8(buf, start, pos)
            if number == 1:
                request.subscription = text
            elif number == 2:
                request.ack_ids.append(text)
            elif number == 4:
                request.modify_deadline_ack_ids.append(text)
            else:
                request.client_id = text
        elif number in (5, 7, 8):
            _check_wire(number, wire, _VARINT)
            raw, pos = _read_varint(buf, pos, end)
            if number == 5:
                request.stream_ack_deadline_seconds = _int32(raw)
            elif number == 7:
                request.max_outstanding_messages = _int64(raw)
            else:
                request.max_outstanding_bytes = _int64(raw)
        else:
            pos = _skip(buf, pos, end, wire)
    return request


def _encode_received_message(received: ReceivedMessage) -> bytes:
    out = bytearray()
    _put_str(out, _T1_LEN, received.ack_id)
    _put_len(out, _T2_LEN, _encode_message_record(received.message))
    _put_int(out, _T3_VARINT, received.delivery_attempt)
    return bytes(out)


def encode_streaming_pull_response(received_messages: Sequence[ReceivedMessage]) -> bytes:
    """Encode a StreamingPullResponse (used by tests)."""
    out = bytearray()
    for received in received_messages:
        _put_len(out, _T1_LEN, _encode_received_message(received))
    return bytes(out)


def _decode_received_message(buf: bytes, pos: int, end: int) -> ReceivedMessage:
    ack_id = ""
    message: PubsubMessage | None = None
    delivery_attempt = 0
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _read_varint(buf, pos, end)
        if tag == 0x0A or tag == 0x12:  # 1: ack_id, 2: message
            start, pos = _read_len(buf, pos, end)
            if tag == 0x0A:
                ack_id = _utf8(buf, start, pos)
            else:
                message = _decode_pubsub_message(buf, start, pos)
        elif tag == 0x18:  # 3: delivery_attempt
            raw, pos = _read_varint(buf, pos, end)
            delivery_attempt = _int32(raw)
        else:
            pos = _skip_or_reject(buf, pos, end, tag, _RECEIVED_MESSAGE_WIRES)
    return ReceivedMessage(
        ack_id, PubsubMessage() if message is None else message, delivery_attempt
    )


def decode_streaming_pull_response(buf: bytes) -> list[ReceivedMessage]:
    """Decode a StreamingPullResponse into its received messages.

    The confirmation and subscription-properties fields (exactly-once delivery, ordering) are
    skipped: Repid does not enable exactly-once delivery.
    """
    received: list[ReceivedMessage] = []
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _read_varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 1:
            _check_wire(number, wire, _LEN)
            start, pos = _read_len(buf, pos, end)
            received.append(_decode_received_message(buf, start, pos))
        else:
            pos = _skip(buf, pos, end, wire)
    return received


# ---------------------------------------------------------------------------------------------
# Acknowledge / ModifyAckDeadline
# ---------------------------------------------------------------------------------------------


def encode_acknowledge_request(subscription: str, ack_ids: Sequence[str]) -> bytes:
    """Encode an AcknowledgeRequest."""
    out = bytearray()
    _put_str(out, _T1_LEN, subscription)
    for ack_id in ack_ids:
        _put_len(out, _T2_LEN, ack_id.encode())
    return bytes(out)


def decode_acknowledge_request(buf: bytes) -> AcknowledgeRequest:
    """Decode an AcknowledgeRequest (used by tests)."""
    subscription: list[str] = []
    ack_ids: list[str] = []
    _decode_strings_only(buf, {1: subscription, 2: ack_ids}, {})
    return AcknowledgeRequest(
        subscription=subscription[-1] if subscription else "", ack_ids=ack_ids
    )


def encode_modify_ack_deadline_request(
    subscription: str, ack_ids: Sequence[str], ack_deadline_seconds: int
) -> bytes:
    """Encode a ModifyAckDeadlineRequest (ack_ids is field 4, the deadline field 3)."""
    out = bytearray()
    _put_str(out, _T1_LEN, subscription)
    _put_int(out, _T3_VARINT, ack_deadline_seconds)
    for ack_id in ack_ids:
        _put_len(out, _T4_LEN, ack_id.encode())
    return bytes(out)


def decode_modify_ack_deadline_request(buf: bytes) -> ModifyAckDeadlineRequest:
    """Decode a ModifyAckDeadlineRequest (used by tests)."""
    subscription: list[str] = []
    ack_ids: list[str] = []
    scalars = {3: 0}
    _decode_strings_only(buf, {1: subscription, 4: ack_ids}, scalars)
    return ModifyAckDeadlineRequest(
        subscription=subscription[-1] if subscription else "",
        ack_ids=ack_ids,
        ack_deadline_seconds=_int32(scalars[3]),
    )


# ---------------------------------------------------------------------------------------------
# GetSubscription: only the dead-letter policy is read
# ---------------------------------------------------------------------------------------------

DEFAULT_MAX_DELIVERY_ATTEMPTS = 5
"""Pub/Sub's `max_delivery_attempts` when a dead-letter policy leaves it at 0."""


def encode_get_subscription_request(subscription: str) -> bytes:
    """Encode a GetSubscriptionRequest (field 1: the subscription's full name)."""
    out = bytearray()
    _put_str(out, _T1_LEN, subscription)
    return bytes(out)


def encode_subscription_dead_letter_policy(
    name: str, dead_letter_topic: str | None, max_delivery_attempts: int = 0
) -> bytes:
    """Encode a Subscription with only its name and dead-letter policy (used by tests)."""
    out = bytearray()
    _put_str(out, _T1_LEN, name)
    if dead_letter_topic is not None:
        policy = bytearray()
        _put_str(policy, _T1_LEN, dead_letter_topic)
        _put_int(policy, _T2_VARINT, max_delivery_attempts)
        _put_len(out, _T13_LEN, bytes(policy))
    return bytes(out)


def decode_subscription_delivery_limit(buf: bytes) -> int | None:
    """From a Subscription: the delivery attempts after which Pub/Sub dead-letters a message
    (its `dead_letter_policy`, field 13), or None without a dead-letter topic."""
    pos, end = 0, len(buf)
    limit: int | None = None
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number != 13:
            pos = _skip(buf, pos, end, wire)
            continue
        _check_wire(number, wire, _LEN)
        start, pos = _read_len(buf, pos, end)
        topic: list[str] = []
        scalars = {2: 0}
        _decode_strings_only(buf[start:pos], {1: topic}, scalars)
        attempts = _int32(scalars[2])
        if not topic or not topic[-1]:
            limit = None  # a policy without a topic dead-letters nothing
        else:
            limit = attempts if attempts > 0 else DEFAULT_MAX_DELIVERY_ATTEMPTS
    return limit
