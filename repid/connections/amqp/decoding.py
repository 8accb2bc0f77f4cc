"""The consume path's decoder: from a delivery's bytes to the fields the subscriber reads.

`decode_delivery` runs for every message a worker receives. Most messages have one layout (the
one `encode_plain_message` writes, plus what RabbitMQ adds on the way: a header with the
delivery count and message annotations), and for that layout `_decode_plain` reads the few
fields the subscriber needs straight from the bytes, without building the sections as values.
It accepts only canonical encodings of each field's declared type and returns None for
anything else: then the generic `decode_message` decodes the message, so both paths give the
same fields for every input the fast one takes (tests/amqp/test_amqp_decoding.py checks this
on generated and corrupted messages), and every error is reported by the generic one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from repid.connections.amqp.addressing import headers_of, payload_of
from repid.connections.amqp.protocol.errors import AmqpProtocolError, Condition
from repid.connections.amqp.protocol.message import decode_message
from repid.connections.amqp.protocol.types import skip_value

__all__ = ["DeliveryFields", "decode_delivery"]


class DeliveryFields(NamedTuple):
    """What the subscriber takes from a received message."""

    payload: bytes
    headers: dict[str, str] | None
    message_id: str | None
    reply_to: str | None
    content_type: str | None
    delivery_count: int


def decode_delivery(data: bytes) -> DeliveryFields:
    """The fields of an encoded message; raises `AmqpProtocolError` for one that is unusable."""
    fields = _decode_plain(data)
    return fields if fields is not None else _decode_generic(data)


def _decode_generic(data: bytes) -> DeliveryFields:
    """Any message, through the generic decoder (which reports what is wrong with it)."""
    message = decode_message(data, annotations=False)
    payload = payload_of(message)
    if payload is None:
        raise AmqpProtocolError(
            Condition.DECODE_ERROR, "the body is not data, a string or binary value"
        )
    properties = message.properties
    message_id = reply_to = content_type = None
    if properties is not None:
        if properties.message_id is not None:
            message_id = str(properties.message_id)
        if isinstance(properties.reply_to, str):
            reply_to = properties.reply_to
        if properties.content_type is not None:
            content_type = str(properties.content_type)
    header = message.header
    return DeliveryFields(
        payload,
        headers_of(message),
        message_id,
        reply_to,
        content_type,
        header.delivery_count if header is not None else 0,
    )


_unpack_I = struct.Struct(">I").unpack_from
_V = TypeVar("_V")

# Constructor codes the fast path takes, by field type: null (0x40) is always allowed.
_BOOL = frozenset((0x41, 0x42))  # true, false (0x56, a bool in a byte, goes generic)
_UBYTE = frozenset((0x50,))
_UINT = frozenset((0x43, 0x52, 0x70))  # uint0, smalluint, uint
_TIMESTAMP = frozenset((0x83,))
_STRING = frozenset((0xA1,))  # str8-utf8 (str32 goes generic)
_SYMBOL = frozenset((0xA3,))  # sym8
_BINARY = frozenset((0xA0,))  # vbin8
_FIXED_WIDTH = {0x41: 0, 0x42: 0, 0x43: 0, 0x50: 1, 0x52: 1, 0x70: 4, 0x83: 8}

_HEADER_FIELDS = (_BOOL, _UBYTE, _UINT, _BOOL, _UINT)
# message-id and correlation-id may be any of four types; only a string takes the fast path.
_PROPERTIES_FIELDS = (
    *(_STRING, _BINARY, _STRING, _STRING, _STRING, _STRING, _SYMBOL, _SYMBOL),
    *(_TIMESTAMP, _TIMESTAMP, _STRING, _UINT, _STRING),
)


# Sections repeat from message to message: the header differs only by its delivery count, the
# properties only by the message id, the application properties not at all. Each cache maps
# the bytes of a section (without the id) that was parsed and found plain to what was read
# from it, so a section seen before costs one slice and one lookup. Bounded: cleared when full.
_CACHE_SIZE = 256
_headers_cache: dict[bytes, int] = {}
_properties_cache: dict[bytes, tuple[str | None, str | None]] = {}
_application_cache: dict[bytes, dict[str, str]] = {}


def _cached(cache: dict[bytes, _V], key: bytes, parse: Callable[[bytes], _V | None]) -> _V | None:
    """`cache[key]`, else `parse(key)` remembered (None, not plain, is not remembered)."""
    value = cache.get(key)
    if value is None:
        value = parse(key)
        if value is not None:
            _remember(cache, key, value)
    return value


def _remember(cache: dict[bytes, _V], key: bytes, value: _V) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _section(data: bytes, pos: int, end: int) -> bytes | None:
    """The bytes of the 8-bit-sized section (list8 or map8) at `pos`, or None if cut short."""
    if pos + 5 > end:
        return None
    stop = pos + 5 + data[pos + 4]
    return data[pos:stop] if stop <= end else None


def _decode_plain(data: bytes) -> DeliveryFields | None:
    """The fields of a message in the common layout, or None (see the module docstring)."""
    end = len(data)
    pos = 0
    delivery_count = 0
    message_id = reply_to = content_type = None
    headers: dict[str, str] | None = None
    # header (0x70): only the delivery count is read, every field's type is checked.
    if data.startswith(b"\x00\x53\x70\xc0"):
        section = _section(data, 0, end)
        if section is None:
            return None
        count = _cached(_headers_cache, section, _parse_header)
        if count is None:
            return None
        delivery_count = count
        pos = len(section)
    # delivery annotations (0x71), message annotations (0x72): stepped over, as the generic
    # path does on the consume path (a map8 by its size, anything else by skip_value).
    for code in (0x71, 0x72):
        if data.startswith(b"\x00\x53", pos) and pos + 4 < end and data[pos + 2] == code:
            if data[pos + 3] == 0xC1:
                size = data[pos + 4]
                if size == 0:
                    return None
                pos += 5 + size
                if pos > end:
                    return None
            else:
                try:
                    pos = skip_value(data, pos + 3, end, 1)
                except AmqpProtocolError:
                    return None
    # properties (0x73): a 32-character string id (what repid sends) keeps the rest cacheable.
    if data.startswith(b"\x00\x53\x73\xc0", pos):
        section = _section(data, pos, end)
        if section is None:
            return None
        pos += len(section)
        if section[6:8] == b"\xa1\x20" and len(section) >= 40:
            try:
                message_id = str(section[8:40], "utf-8")
            except UnicodeDecodeError:
                return None
            key = section[:8] + section[40:]  # the section without its id
            known = _properties_cache.get(key)
            if known is None:
                parsed = _parse_properties(section)  # a miss parses the whole section
                if parsed is None:
                    return None
                known = parsed[1:]
                _remember(_properties_cache, key, known)
            reply_to, content_type = known
        else:
            parsed = _parse_properties(section)
            if parsed is None:
                return None
            message_id, reply_to, content_type = parsed
    # application properties (0x74): string keys and string values only.
    if data.startswith(b"\x00\x53\x74\xc1", pos):
        section = _section(data, pos, end)
        if section is None:
            return None
        pos += len(section)
        known_headers = _cached(_application_cache, section, _parse_application_properties)
        if known_headers is None:
            return None
        if known_headers:
            headers = dict(known_headers)  # a copy: the receiver may change its headers
    # one data section (0x75), and nothing after it.
    if not data.startswith(b"\x00\x53\x75", pos) or pos + 4 > end:
        return None
    code = data[pos + 3]
    if code == 0xA0:
        n = data[pos + 4] if pos + 4 < end else -1
        pos += 5
    elif code == 0xB0:
        if pos + 8 > end:
            return None
        n = _unpack_I(data, pos + 4)[0]
        pos += 8
    else:
        return None
    if n < 0 or pos + n != end:
        return None
    return DeliveryFields(
        data[pos:end], headers, message_id, reply_to, content_type, delivery_count
    )


def _parse_header(section: bytes) -> int | None:
    """The delivery count of a whole header section (list8), or None if it is not plain."""
    read = _read_list8(section, _HEADER_FIELDS, _READ_HEADER)
    if read is None:
        return None
    count: int | None = read[0]
    return count or 0


def _parse_properties(section: bytes) -> tuple[str | None, str | None, str | None] | None:
    """(message id, reply-to, content type) of a whole properties section (list8), or None."""
    read = _read_list8(section, _PROPERTIES_FIELDS, _READ_PROPERTIES)
    if read is None:
        return None
    return read[0], read[1], read[2]


_READ_HEADER = {4: 0}  # field index -> slot in the result of _read_list8: delivery-count
_READ_PROPERTIES = {0: 0, 4: 1, 6: 2}  # message-id, reply-to, content-type


def _read_list8(
    section: bytes, types: tuple[frozenset[int], ...], wanted: dict[int, int]
) -> list[Any] | None:
    """The `wanted` fields of a described list8 section whose fields all have the given
    constructors (null allowed): uints as ints, strings and symbols as str (every string is
    validated, read or not). None if the section is anything else."""
    stop = len(section)
    count = section[5] if stop > 5 else 0
    if stop < 6 or count > len(types):
        return None
    found: list[Any] = [None] * len(wanted)
    pos = 6
    for index in range(count):
        if pos >= stop:
            return None
        code = section[pos]
        pos += 1
        if code == 0x40:
            continue
        if code not in types[index]:
            return None
        slot = wanted.get(index)
        if code >= 0xA0:  # a variable-width value: one length byte
            if pos >= stop:
                return None
            n = section[pos]
            pos += 1
            if pos + n > stop:
                return None
            if code != 0xA0:
                try:
                    text = str(section[pos : pos + n], "utf-8" if code == 0xA1 else "ascii")
                except UnicodeDecodeError:
                    return None
                if slot is not None:
                    found[slot] = text
            pos += n
            continue
        width = _FIXED_WIDTH[code]
        if pos + width > stop:
            return None
        if slot is not None:
            if code == 0x52:
                found[slot] = section[pos]
            elif code == 0x70:
                found[slot] = _unpack_I(section, pos)[0]
            elif code == 0x43:
                found[slot] = 0
        pos += width
    return found if pos == stop else None


def _parse_application_properties(section: bytes) -> dict[str, str] | None:
    """The string keys and values of a whole application-properties section (map8)."""
    stop = len(section)
    count = section[5] if stop > 5 else 0
    if stop < 6 or count % 2:
        return None
    values: list[str] = []
    pos = 6
    for _ in range(count):
        if pos + 2 > stop or section[pos] != 0xA1:
            return None
        n = section[pos + 1]
        pos += 2
        if pos + n > stop:
            return None
        try:
            values.append(str(section[pos : pos + n], "utf-8"))
        except UnicodeDecodeError:
            return None
        pos += n
    if pos != stop:
        return None
    return dict(zip(values[::2], values[1::2], strict=True))
