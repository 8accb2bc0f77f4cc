"""The AMQP 1.0 type system (spec part 1): encoder and bounds-checked decoder.

Python values map to AMQP types like this:

| AMQP           | Python                         | AMQP           | Python            |
| -------------- | ------------------------------ | -------------- | ----------------- |
| null           | `None`                         | char           | `Char` (str)      |
| boolean        | `bool`                         | timestamp      | `Timestamp` (ms)  |
| ubyte..ulong   | `Ubyte`, `Ushort`, `Uint`, `Ulong` | uuid       | `uuid.UUID`       |
| byte..int      | `Byte`, `Short`, `Int`         | binary         | `bytes`           |
| long           | `int`                          | string         | `str`             |
| float / double | `Float` / `float`              | symbol         | `Symbol` (str)    |
| decimal32..128 | `Decimal32/64/128` (raw bytes) | list / map     | `list` / `dict`   |
| array          | `Array`                        | described      | `Described`       |

The wrapper classes subclass the builtin they carry, so they compare equal to plain values.
Encoders always pick the most compact encoding. The decoder never reads past the end of its
buffer, never allocates more than the buffer justifies and bounds nesting depth; any malformed
input raises `AmqpProtocolError(amqp:decode-error)` and nothing else.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from repid.connections.amqp.protocol.errors import AmqpEncodeError, AmqpProtocolError, Condition

__all__ = [
    "MAX_DEPTH",
    "Array",
    "Byte",
    "Char",
    "Decimal32",
    "Decimal64",
    "Decimal128",
    "Described",
    "Float",
    "Int",
    "Short",
    "Symbol",
    "Timestamp",
    "Ubyte",
    "Uint",
    "Ulong",
    "Ushort",
    "decode",
    "decode_all",
    "decode_value",
    "encode",
    "encode_value",
    "skip_value",
    "symbols",
]

#: Deepest nesting of compound/described values the decoder accepts.
MAX_DEPTH = 48
#: Most elements of a zero-width type (null, true, uint0 ...) one array may declare: such
#: elements take no bytes, so the buffer size alone would not bound the allocation.
MAX_ZERO_WIDTH_ARRAY = 65536


class Ubyte(int):
    """AMQP ubyte (0..255)."""

    __slots__ = ()


class Ushort(int):
    """AMQP ushort (0..65535)."""

    __slots__ = ()


class Uint(int):
    """AMQP uint (0..2**32-1)."""

    __slots__ = ()


class Ulong(int):
    """AMQP ulong (0..2**64-1)."""

    __slots__ = ()


class Byte(int):
    """AMQP byte (-128..127)."""

    __slots__ = ()


class Short(int):
    """AMQP short (-32768..32767)."""

    __slots__ = ()


class Int(int):
    """AMQP int (signed 32 bit). Plain Python `int` encodes as AMQP long."""

    __slots__ = ()


class Timestamp(int):
    """AMQP timestamp: milliseconds since the Unix epoch (signed 64 bit)."""

    __slots__ = ()


class Float(float):
    """AMQP float (IEEE 754 binary32). Plain Python `float` encodes as AMQP double."""

    __slots__ = ()


class Symbol(str):
    """AMQP symbol: an ASCII string from a constrained domain."""

    __slots__ = ()


class Char(str):
    """AMQP char: one Unicode code point."""

    __slots__ = ()


class Decimal32(bytes):
    """AMQP decimal32, kept as its 4 raw IEEE 754 decimal bytes."""

    __slots__ = ()


class Decimal64(bytes):
    """AMQP decimal64, kept as its 8 raw bytes."""

    __slots__ = ()


class Decimal128(bytes):
    """AMQP decimal128, kept as its 16 raw bytes."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Described:
    """A described type: a descriptor (`Ulong` code or `Symbol` name) and its value."""

    descriptor: Any
    value: Any


@dataclass(frozen=True, slots=True)
class Array:
    """An AMQP array: elements of one type sharing one constructor.

    `element_type` is the Python class of the elements (`Uint`, `Symbol`, `str`, `list` ...).
    If `descriptor` is set, the elements are values of that described type (stored undescribed).
    """

    element_type: type
    items: tuple[Any, ...]
    descriptor: Any = None


# --------------------------------------------------------------------------- encoding

_pack_B = struct.Struct(">B").pack
_pack_H = struct.Struct(">H").pack
_pack_I = struct.Struct(">I").pack
_pack_Q = struct.Struct(">Q").pack
_pack_b = struct.Struct(">b").pack
_pack_h = struct.Struct(">h").pack
_pack_i = struct.Struct(">i").pack
_pack_q = struct.Struct(">q").pack
_pack_f = struct.Struct(">f").pack
_pack_d = struct.Struct(">d").pack
_pack_BB = struct.Struct(">BB").pack
_pack_BII = struct.Struct(">BII").pack
_pack_BBB = struct.Struct(">BBB").pack

_Encoder = Callable[[Any, bytearray, int], None]


def _range_error(value: Any, kind: str) -> AmqpEncodeError:
    return AmqpEncodeError(f"{value!r} does not fit AMQP {kind}")


def _enc_none(value: Any, out: bytearray, depth: int) -> None:
    out.append(0x40)


def _enc_bool(value: Any, out: bytearray, depth: int) -> None:
    out.append(0x41 if value else 0x42)


def _enc_ubyte(value: Any, out: bytearray, depth: int) -> None:
    if not 0 <= value <= 0xFF:
        raise _range_error(value, "ubyte")
    out += _pack_BB(0x50, value)


def _enc_ushort(value: Any, out: bytearray, depth: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise _range_error(value, "ushort")
    out.append(0x60)
    out += _pack_H(value)


def _enc_uint(value: Any, out: bytearray, depth: int) -> None:
    if value == 0:
        out.append(0x43)
    elif 0 < value <= 0xFF:
        out += _pack_BB(0x52, value)
    elif 0 < value <= 0xFFFFFFFF:
        out.append(0x70)
        out += _pack_I(value)
    else:
        raise _range_error(value, "uint")


def _enc_ulong(value: Any, out: bytearray, depth: int) -> None:
    if value == 0:
        out.append(0x44)
    elif 0 < value <= 0xFF:
        out += _pack_BB(0x53, value)
    elif 0 < value <= 0xFFFFFFFFFFFFFFFF:
        out.append(0x80)
        out += _pack_Q(value)
    else:
        raise _range_error(value, "ulong")


def _enc_byte(value: Any, out: bytearray, depth: int) -> None:
    if not -0x80 <= value <= 0x7F:
        raise _range_error(value, "byte")
    out.append(0x51)
    out += _pack_b(value)


def _enc_short(value: Any, out: bytearray, depth: int) -> None:
    if not -0x8000 <= value <= 0x7FFF:
        raise _range_error(value, "short")
    out.append(0x61)
    out += _pack_h(value)


def _enc_int(value: Any, out: bytearray, depth: int) -> None:
    if -0x80 <= value <= 0x7F:
        out.append(0x54)
        out += _pack_b(value)
    elif -0x80000000 <= value <= 0x7FFFFFFF:
        out.append(0x71)
        out += _pack_i(value)
    else:
        raise _range_error(value, "int")


def _enc_long(value: Any, out: bytearray, depth: int) -> None:
    if -0x80 <= value <= 0x7F:
        out.append(0x55)
        out += _pack_b(value)
    elif -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
        out.append(0x81)
        out += _pack_q(value)
    elif 0 < value <= 0xFFFFFFFFFFFFFFFF:
        # A plain int too large for long is still representable: send it as ulong.
        _enc_ulong(value, out, depth)
    else:
        raise _range_error(value, "long")


def _enc_timestamp(value: Any, out: bytearray, depth: int) -> None:
    if not -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
        raise _range_error(value, "timestamp")
    out.append(0x83)
    out += _pack_q(value)


def _enc_float(value: Any, out: bytearray, depth: int) -> None:
    out.append(0x72)
    try:
        out += _pack_f(value)
    except OverflowError as exc:
        raise _range_error(value, "float") from exc


def _enc_double(value: Any, out: bytearray, depth: int) -> None:
    out.append(0x82)
    out += _pack_d(value)


def _enc_char(value: Any, out: bytearray, depth: int) -> None:
    if len(value) != 1:
        raise _range_error(value, "char")
    out.append(0x73)
    out += _pack_I(ord(value))


def _fixed_bytes(code: int, size: int, kind: str) -> _Encoder:
    def enc(value: Any, out: bytearray, depth: int) -> None:
        if len(value) != size:
            raise _range_error(value, kind)
        out.append(code)
        out += value

    return enc


def _enc_uuid(value: Any, out: bytearray, depth: int) -> None:
    out.append(0x98)
    out += value.bytes


def _variable(code8: int, code32: int, raw: bytes, out: bytearray) -> None:
    n = len(raw)
    if n <= 0xFF:
        out += _pack_BB(code8, n)
    elif n <= 0xFFFFFFFF:
        out.append(code32)
        out += _pack_I(n)
    else:  # pragma: no cover - 4 GiB values are not realistic
        raise _range_error("<value>", "vbin32/str32")
    out += raw


def _enc_binary(value: Any, out: bytearray, depth: int) -> None:
    _variable(0xA0, 0xB0, value, out)


def _enc_string(value: Any, out: bytearray, depth: int) -> None:
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise _range_error(value, "string") from exc
    _variable(0xA1, 0xB1, raw, out)


def _enc_symbol(value: Any, out: bytearray, depth: int) -> None:
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise _range_error(value, "symbol (ASCII only)") from exc
    _variable(0xA3, 0xB3, raw, out)


def _compound(code8: int, code32: int, count: int, body: bytes | bytearray, out: bytearray) -> None:
    size = len(body)
    if count <= 0xFF and size + 1 <= 0xFF:
        out += _pack_BBB(code8, size + 1, count)
    else:
        out += _pack_BII(code32, size + 4, count)
    out += body


def _enc_list(value: Any, out: bytearray, depth: int) -> None:
    if not value:
        out.append(0x45)
        return
    if depth >= MAX_DEPTH:
        raise AmqpEncodeError("value nested too deeply")
    body = bytearray()
    for item in value:
        encode_value(item, body, depth + 1)
    _compound(0xC0, 0xD0, len(value), body, out)


def _enc_map(value: Any, out: bytearray, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise AmqpEncodeError("value nested too deeply")
    body = bytearray()
    for key, item in value.items():
        encode_value(key, body, depth + 1)
        encode_value(item, body, depth + 1)
    _compound(0xC1, 0xD1, 2 * len(value), body, out)


def _enc_described(value: Any, out: bytearray, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise AmqpEncodeError("value nested too deeply")
    out.append(0x00)
    encode_value(value.descriptor, out, depth + 1)
    encode_value(value.value, out, depth + 1)


# Array element encodings: (constructor code, body encoder). Bodies are written without the
# constructor byte. Each element type has a narrow and a wide constructor where the spec has
# two; the narrow one is used when every element fits it.

_ArrayBody = Callable[[Any, bytearray, int], None]


def _body_struct(pack: Callable[[Any], bytes], kind: str) -> _ArrayBody:
    def enc(value: Any, out: bytearray, depth: int) -> None:
        try:
            out += pack(value)
        except (struct.error, OverflowError) as exc:
            raise _range_error(value, kind) from exc

    return enc


def _body_bool(value: Any, out: bytearray, depth: int) -> None:
    out.append(1 if value else 0)


def _body_char(value: Any, out: bytearray, depth: int) -> None:
    if len(value) != 1:
        raise _range_error(value, "char")
    out += _pack_I(ord(value))


def _body_raw(size: int) -> _ArrayBody:
    def enc(value: Any, out: bytearray, depth: int) -> None:
        if len(value) != size:
            raise _range_error(value, f"{size}-byte value")
        out += value

    return enc


def _body_uuid(value: Any, out: bytearray, depth: int) -> None:
    out += value.bytes


def _raw_of(element_type: type, value: Any) -> bytes:
    if element_type is Symbol:
        try:
            return bytes(value.encode("ascii"))
        except UnicodeEncodeError as exc:
            raise _range_error(value, "symbol (ASCII only)") from exc
    if element_type is str:
        try:
            return bytes(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise _range_error(value, "string") from exc
    return bytes(value)


def _body_var(wide: bool, element_type: type) -> _ArrayBody:
    def enc(value: Any, out: bytearray, depth: int) -> None:
        raw = _raw_of(element_type, value)
        out += _pack_I(len(raw)) if wide else _pack_B(len(raw))
        out += raw

    return enc


def _compound_body(value: Any, depth: int) -> tuple[int, bytes]:
    """Encode a list/map/array value's content; returns (count, bytes after the count)."""
    scratch = bytearray()
    encode_value(value, scratch, depth)
    code = scratch[0]
    if code == 0x45:
        return 0, b""
    if code in (0xC0, 0xC1):
        return scratch[2], bytes(scratch[3:])
    if code in (0xD0, 0xD1):
        return struct.unpack_from(">I", scratch, 5)[0], bytes(scratch[9:])
    if code == 0xE0:
        return scratch[2], bytes(scratch[3:])
    return struct.unpack_from(">I", scratch, 5)[0], bytes(scratch[9:])


_FIXED_ARRAY: dict[type, tuple[int, _ArrayBody]] = {
    bool: (0x56, _body_bool),
    Ubyte: (0x50, _body_struct(_pack_B, "ubyte")),
    Ushort: (0x60, _body_struct(_pack_H, "ushort")),
    Uint: (0x70, _body_struct(_pack_I, "uint")),
    Ulong: (0x80, _body_struct(_pack_Q, "ulong")),
    Byte: (0x51, _body_struct(_pack_b, "byte")),
    Short: (0x61, _body_struct(_pack_h, "short")),
    Int: (0x71, _body_struct(_pack_i, "int")),
    int: (0x81, _body_struct(_pack_q, "long")),
    Timestamp: (0x83, _body_struct(_pack_q, "timestamp")),
    Float: (0x72, _body_struct(_pack_f, "float")),
    float: (0x82, _body_struct(_pack_d, "double")),
    Char: (0x73, _body_char),
    Decimal32: (0x74, _body_raw(4)),
    Decimal64: (0x84, _body_raw(8)),
    Decimal128: (0x94, _body_raw(16)),
    uuid.UUID: (0x98, _body_uuid),
}
_VAR_ARRAY: dict[type, tuple[int, int]] = {
    bytes: (0xA0, 0xB0),
    str: (0xA1, 0xB1),
    Symbol: (0xA3, 0xB3),
}
_COMPOUND_ARRAY: dict[type, tuple[int, int]] = {
    list: (0xC0, 0xD0),
    dict: (0xC1, 0xD1),
    Array: (0xE0, 0xF0),
}


def _enc_array(value: Any, out: bytearray, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise AmqpEncodeError("value nested too deeply")
    element_type = value.element_type
    items = value.items
    body = bytearray()
    if value.descriptor is not None:
        body.append(0x00)
        encode_value(value.descriptor, body, depth + 1)
    if element_type is type(None):
        if any(item is not None for item in items):
            raise AmqpEncodeError("an array of nulls holds only None")
        body.append(0x40)
    elif element_type in _FIXED_ARRAY:
        code, enc = _FIXED_ARRAY[element_type]
        body.append(code)
        for item in items:
            enc(item, body, depth + 1)
    elif element_type in _VAR_ARRAY:
        narrow, wide = _VAR_ARRAY[element_type]
        raws = [_raw_of(element_type, item) for item in items]
        is_wide = any(len(raw) > 0xFF for raw in raws)
        body.append(wide if is_wide else narrow)
        for raw in raws:
            body += _pack_I(len(raw)) if is_wide else _pack_B(len(raw))
            body += raw
    elif element_type in _COMPOUND_ARRAY:
        narrow, wide = _COMPOUND_ARRAY[element_type]
        parts = [_compound_body(item, depth + 1) for item in items]
        is_wide = any(count > 0xFF or len(raw) + 1 > 0xFF for count, raw in parts)
        body.append(wide if is_wide else narrow)
        for count, raw in parts:
            if is_wide:
                body += _pack_I(len(raw) + 4)
                body += _pack_I(count)
            else:
                body += _pack_BB(len(raw) + 1, count)
            body += raw
    else:
        raise AmqpEncodeError(f"arrays of {element_type!r} are not supported")
    _compound(0xE0, 0xF0, len(items), body, out)


_ENCODERS: dict[type, _Encoder] = {
    type(None): _enc_none,
    bool: _enc_bool,
    Ubyte: _enc_ubyte,
    Ushort: _enc_ushort,
    Uint: _enc_uint,
    Ulong: _enc_ulong,
    Byte: _enc_byte,
    Short: _enc_short,
    Int: _enc_int,
    int: _enc_long,
    Timestamp: _enc_timestamp,
    Float: _enc_float,
    float: _enc_double,
    Char: _enc_char,
    Decimal32: _fixed_bytes(0x74, 4, "decimal32"),
    Decimal64: _fixed_bytes(0x84, 8, "decimal64"),
    Decimal128: _fixed_bytes(0x94, 16, "decimal128"),
    uuid.UUID: _enc_uuid,
    bytes: _enc_binary,
    bytearray: _enc_binary,
    memoryview: _enc_binary,
    str: _enc_string,
    Symbol: _enc_symbol,
    list: _enc_list,
    tuple: _enc_list,
    dict: _enc_map,
    Described: _enc_described,
    Array: _enc_array,
}


def encode_value(value: Any, out: bytearray, depth: int = 0) -> None:
    """Append the AMQP encoding of `value` to `out`."""
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        encoder = _encoder_for_subclass(value)
    encoder(value, out, depth)


def _encoder_for_subclass(value: Any) -> _Encoder:
    for klass in type(value).__mro__:
        if klass in _ENCODERS:
            return _ENCODERS[klass]
    if hasattr(value, "to_described"):  # performatives and message sections
        return lambda v, out, depth: _enc_described(v.to_described(), out, depth)
    raise AmqpEncodeError(f"no AMQP encoding for {type(value).__name__}")


def encode(value: Any) -> bytes:
    """Return the AMQP encoding of `value`."""
    out = bytearray()
    encode_value(value, out)
    return bytes(out)


# --------------------------------------------------------------------------- decoding

_Buffer = bytes | bytearray | memoryview
_Decoder = Callable[[_Buffer, int, int, int], tuple[Any, int]]

_unpack_B = struct.Struct(">B").unpack_from
_unpack_H = struct.Struct(">H").unpack_from
_unpack_I = struct.Struct(">I").unpack_from
_unpack_Q = struct.Struct(">Q").unpack_from
_unpack_b = struct.Struct(">b").unpack_from
_unpack_h = struct.Struct(">h").unpack_from
_unpack_i = struct.Struct(">i").unpack_from
_unpack_q = struct.Struct(">q").unpack_from
_unpack_f = struct.Struct(">f").unpack_from
_unpack_d = struct.Struct(">d").unpack_from
_unpack_BB = struct.Struct(">BB").unpack_from
_unpack_II = struct.Struct(">II").unpack_from


def _error(description: str) -> AmqpProtocolError:
    return AmqpProtocolError(Condition.DECODE_ERROR, description)


def _truncated(pos: int, need: int, end: int) -> AmqpProtocolError:
    return _error(f"truncated value: need {need} bytes at offset {pos}, {end - pos} left")


def _fixed(
    size: int, unpack: Callable[[_Buffer, int], tuple[Any, ...]], wrap: Callable[[Any], Any]
) -> _Decoder:
    def dec(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
        if pos + size > end:
            raise _truncated(pos, size, end)
        return wrap(unpack(buf, pos)[0]), pos + size

    return dec


def _constant(value: Any) -> _Decoder:
    def dec(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
        return value, pos

    return dec


def _dec_boolean(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos >= end:
        raise _truncated(pos, 1, end)
    byte = buf[pos]
    if byte > 1:
        raise _error(f"invalid boolean byte 0x{byte:02x}")
    return byte == 1, pos + 1


def _dec_char(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos + 4 > end:
        raise _truncated(pos, 4, end)
    point = _unpack_I(buf, pos)[0]
    if point > 0x10FFFF:
        raise _error(f"invalid char code point {point}")
    return Char(chr(point)), pos + 4


def _dec_raw(size: int, wrap: Callable[[bytes], Any]) -> _Decoder:
    def dec(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
        if pos + size > end:
            raise _truncated(pos, size, end)
        return wrap(bytes(buf[pos : pos + size])), pos + size

    return dec


def _length(buf: _Buffer, pos: int, end: int, wide: bool) -> tuple[int, int]:
    if wide:
        if pos + 4 > end:
            raise _truncated(pos, 4, end)
        n = _unpack_I(buf, pos)[0]
        pos += 4
    else:
        if pos >= end:
            raise _truncated(pos, 1, end)
        n = buf[pos]
        pos += 1
    # Checked before anything is allocated: a length can never exceed the bytes present.
    if pos + n > end:
        raise _error(f"declared length {n} exceeds the {end - pos} bytes left")
    return n, pos


def _dec_var(wide: bool, kind: str) -> _Decoder:
    # One specialised function per constructor: strings and symbols are most of what a
    # message's properties and annotations hold.
    encoding = "utf-8" if kind == "string" else "ascii"
    wrap: Callable[[str], Any] = str if kind == "string" else Symbol

    def dec(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
        if wide:
            n, pos = _length(buf, pos, end, True)
        else:
            if pos >= end:
                raise _truncated(pos, 1, end)
            n = buf[pos]
            pos += 1
            if pos + n > end:
                raise _error(f"declared length {n} exceeds the {end - pos} bytes left")
        stop = pos + n
        if kind == "binary":
            return bytes(buf[pos:stop]), stop
        try:
            return wrap(str(buf[pos:stop], encoding)), stop
        except UnicodeDecodeError as exc:
            raise _error(f"invalid {kind} bytes") from exc

    return dec


def _compound_header(buf: _Buffer, pos: int, end: int, wide: bool) -> tuple[int, int, int]:
    """Read size and count; return (count, content start, content end)."""
    size, pos = _length(buf, pos, end, wide)
    stop = pos + size
    width = 4 if wide else 1
    if size < width:
        raise _error(f"compound size {size} is smaller than its count field")
    count = _unpack_I(buf, pos)[0] if wide else buf[pos]
    pos += width
    return count, pos, stop


def _check_depth(depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise _error(f"values nested deeper than {MAX_DEPTH}")


def _dec_list(wide: bool) -> _Decoder:
    def dec(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
        _check_depth(depth)
        count, pos, stop = _compound_header(buf, pos, end, wide)
        if count > stop - pos:  # every element takes at least its constructor byte
            raise _error(f"list count {count} exceeds its {stop - pos} bytes")
        items: list[Any] = []
        append = items.append
        decoders = _DECODERS
        inner = depth + 1
        for _ in range(count):
            if pos >= stop:
                raise _truncated(pos, 1, stop)
            code = buf[pos]
            if code == 0x40:  # null: the most common field value of the performatives
                append(None)
                pos += 1
                continue
            item, pos = decoders[code](buf, pos + 1, stop, inner)
            append(item)
        if pos != stop:
            raise _error("list content does not match its declared size")
        return items, stop

    return dec


def _dec_map(wide: bool) -> _Decoder:
    def dec(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
        _check_depth(depth)
        count, pos, stop = _compound_header(buf, pos, end, wide)
        if count % 2:
            raise _error(f"map with an odd element count {count}")
        if count > stop - pos:
            raise _error(f"map count {count} exceeds its {stop - pos} bytes")
        result: dict[Any, Any] = {}
        for _ in range(count // 2):
            key, pos = decode_value(buf, pos, stop, depth + 1)
            value, pos = decode_value(buf, pos, stop, depth + 1)
            try:
                result[key] = value
            except TypeError as exc:  # list/map keys: legal on the wire, unusable here
                raise _error("unhashable map key") from exc
        if pos != stop:
            raise _error("map content does not match its declared size")
        return result, stop

    return dec


_ZERO_WIDTH = frozenset({0x40, 0x41, 0x42, 0x43, 0x44, 0x45})


def _dec_array(wide: bool) -> _Decoder:
    def dec(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
        _check_depth(depth)
        count, pos, stop = _compound_header(buf, pos, end, wide)
        if pos >= stop:
            raise _truncated(pos, 1, stop)
        descriptor = None
        code = buf[pos]
        pos += 1
        if code == 0x00:
            descriptor, pos = decode_value(buf, pos, stop, depth + 1)
            if pos >= stop:
                raise _truncated(pos, 1, stop)
            code = buf[pos]
            pos += 1
        if code == 0x00:
            raise _error("array element constructor is itself described twice")
        element = _DECODERS[code]
        if element is _dec_unknown:
            raise _error(f"unknown array element constructor 0x{code:02x}")
        if code in _ZERO_WIDTH:
            if count > MAX_ZERO_WIDTH_ARRAY:
                raise _error(f"array of {count} zero-width elements")
        elif count > stop - pos:
            raise _error(f"array count {count} exceeds its {stop - pos} bytes")
        items = []
        for _ in range(count):
            item, pos = element(buf, pos, stop, depth + 1)
            items.append(item)
        if pos != stop:
            raise _error("array content does not match its declared size")
        element_type = _ELEMENT_TYPE[code]
        return Array(element_type, tuple(items), descriptor), stop

    return dec


def _dec_described(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
    _check_depth(depth)
    if pos + 1 < end and buf[pos] == 0x53:  # smallulong: every descriptor of the spec
        descriptor: Any = _SMALL_ULONG[buf[pos + 1]]
        pos += 2
    else:
        descriptor, pos = decode_value(buf, pos, end, depth + 1)
    value, pos = decode_value(buf, pos, end, depth + 1)
    return Described(descriptor, value), pos


def _dec_unknown(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
    raise _error(f"unknown constructor 0x{buf[pos - 1]:02x}")


def _identity(value: Any) -> Any:
    return value


_DECODERS: list[_Decoder] = [_dec_unknown] * 256
_ELEMENT_TYPE: dict[int, type] = {}


def _register(code: int, decoder: _Decoder, element_type: type) -> None:
    _DECODERS[code] = decoder
    _ELEMENT_TYPE[code] = element_type


_register(0x00, _dec_described, Described)
_register(0x40, _constant(None), type(None))
_register(0x41, _constant(True), bool)
_register(0x42, _constant(False), bool)
_register(0x56, _dec_boolean, bool)
_register(0x50, _fixed(1, _unpack_B, Ubyte), Ubyte)
_register(0x60, _fixed(2, _unpack_H, Ushort), Ushort)
_register(0x70, _fixed(4, _unpack_I, Uint), Uint)
# Small unsigned values are shared instances: no allocation per delivery id or descriptor.
_SMALL_UINT = tuple(Uint(i) for i in range(256))
_SMALL_ULONG = tuple(Ulong(i) for i in range(256))


def _small(cache: tuple[Any, ...]) -> _Decoder:
    def dec(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
        if pos >= end:
            raise _truncated(pos, 1, end)
        return cache[buf[pos]], pos + 1

    return dec


_register(0x52, _small(_SMALL_UINT), Uint)
_register(0x43, _constant(_SMALL_UINT[0]), Uint)
_register(0x80, _fixed(8, _unpack_Q, Ulong), Ulong)
_register(0x53, _small(_SMALL_ULONG), Ulong)
_register(0x44, _constant(_SMALL_ULONG[0]), Ulong)
_register(0x51, _fixed(1, _unpack_b, Byte), Byte)
_register(0x61, _fixed(2, _unpack_h, Short), Short)
_register(0x71, _fixed(4, _unpack_i, Int), Int)
_register(0x54, _fixed(1, _unpack_b, Int), Int)
_register(0x81, _fixed(8, _unpack_q, _identity), int)
_register(0x55, _fixed(1, _unpack_b, _identity), int)
_register(0x72, _fixed(4, _unpack_f, Float), Float)
_register(0x82, _fixed(8, _unpack_d, _identity), float)
_register(0x74, _dec_raw(4, Decimal32), Decimal32)
_register(0x84, _dec_raw(8, Decimal64), Decimal64)
_register(0x94, _dec_raw(16, Decimal128), Decimal128)
_register(0x73, _dec_char, Char)
_register(0x83, _fixed(8, _unpack_q, Timestamp), Timestamp)
_register(0x98, _dec_raw(16, lambda raw: uuid.UUID(bytes=raw)), uuid.UUID)
_register(0xA0, _dec_var(False, "binary"), bytes)
_register(0xB0, _dec_var(True, "binary"), bytes)
_register(0xA1, _dec_var(False, "string"), str)
_register(0xB1, _dec_var(True, "string"), str)
_register(0xA3, _dec_var(False, "symbol"), Symbol)
_register(0xB3, _dec_var(True, "symbol"), Symbol)
_register(0x45, _constant(None), list)  # list0 is special-cased below (a fresh list each time)
_register(0xC0, _dec_list(False), list)
_register(0xD0, _dec_list(True), list)
_register(0xC1, _dec_map(False), dict)
_register(0xD1, _dec_map(True), dict)
_register(0xE0, _dec_array(False), Array)
_register(0xF0, _dec_array(True), Array)


def _dec_list0(buf: _Buffer, pos: int, end: int, depth: int) -> tuple[Any, int]:
    return [], pos


_DECODERS[0x45] = _dec_list0


def decode_value(buf: _Buffer, pos: int, end: int, depth: int = 0) -> tuple[Any, int]:
    """Decode one value from `buf[pos:end]`; return it and the offset just after it."""
    if pos >= end:
        raise _truncated(pos, 1, end)
    return _DECODERS[buf[pos]](buf, pos + 1, end, depth)


_SKIP_FIXED: dict[int, int] = {
    **dict.fromkeys((0x40, 0x41, 0x42, 0x43, 0x44, 0x45), 0),
    **dict.fromkeys((0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56), 1),
    **dict.fromkeys((0x60, 0x61), 2),
    **dict.fromkeys((0x70, 0x71, 0x72, 0x73, 0x74), 4),
    **dict.fromkeys((0x80, 0x81, 0x82, 0x83, 0x84), 8),
    **dict.fromkeys((0x94, 0x98), 16),
}
_SKIP_SIZED: dict[int, bool] = {
    **dict.fromkeys((0xA0, 0xA1, 0xA3, 0xC0, 0xC1, 0xE0), False),
    **dict.fromkeys((0xB0, 0xB1, 0xB3, 0xD0, 0xD1, 0xF0), True),
}


def skip_value(buf: _Buffer, pos: int, end: int, depth: int = 0) -> int:
    """The offset just after the value at `pos`, without building it (bounds still checked).

    Used for sections nobody reads (e.g. message annotations on the consume path): sized
    values are stepped over by their declared size, so their content is not validated.
    """
    if pos >= end:
        raise _truncated(pos, 1, end)
    code = buf[pos]
    pos += 1
    width = _SKIP_FIXED.get(code)
    if width is not None:
        if pos + width > end:
            raise _truncated(pos, width, end)
        return pos + width
    wide = _SKIP_SIZED.get(code)
    if wide is not None:
        size, pos = _length(buf, pos, end, wide)
        return pos + size
    if code == 0x00:
        _check_depth(depth)
        pos = skip_value(buf, pos, end, depth + 1)
        return skip_value(buf, pos, end, depth + 1)
    raise _error(f"unknown constructor 0x{code:02x}")


def decode(data: _Buffer) -> Any:
    """Decode exactly one value that fills `data`."""
    value, pos = decode_value(data, 0, len(data))
    if pos != len(data):
        raise _error(f"{len(data) - pos} trailing bytes after the value")
    return value


def decode_all(data: _Buffer) -> list[Any]:
    """Decode a sequence of values that fills `data` (e.g. the sections of a message)."""
    values = []
    pos, end = 0, len(data)
    while pos < end:
        value, pos = decode_value(data, pos, end)
        values.append(value)
    return values


def symbols(values: Sequence[str]) -> Array:
    """An array of symbols (the `multiple="true"` symbol fields of the performatives)."""
    return Array(Symbol, tuple(Symbol(v) for v in values))
