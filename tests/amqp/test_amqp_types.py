"""AMQP 1.0 type codec: every type round-trips, compact encodings, hostile input."""

from __future__ import annotations

import math
import struct
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repid.connections.amqp.protocol import types as t
from repid.connections.amqp.protocol.errors import AmqpProtocolError, Condition

ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
utf8_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40
)  # no lone surrogates: they are not valid UTF-8

finite_floats = st.floats(allow_nan=False)
float32 = st.floats(allow_nan=False, width=32)

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(0, 2**8 - 1).map(t.Ubyte),
    st.integers(0, 2**16 - 1).map(t.Ushort),
    st.integers(0, 2**32 - 1).map(t.Uint),
    st.integers(0, 2**64 - 1).map(t.Ulong),
    st.integers(-(2**7), 2**7 - 1).map(t.Byte),
    st.integers(-(2**15), 2**15 - 1).map(t.Short),
    st.integers(-(2**31), 2**31 - 1).map(t.Int),
    st.integers(-(2**63), 2**63 - 1),
    float32.map(t.Float),
    finite_floats,
    st.binary(min_size=4, max_size=4).map(t.Decimal32),
    st.binary(min_size=8, max_size=8).map(t.Decimal64),
    st.binary(min_size=16, max_size=16).map(t.Decimal128),
    st.characters(blacklist_categories=("Cs",)).map(t.Char),
    st.integers(-(2**63), 2**63 - 1).map(t.Timestamp),
    st.uuids(),
    st.binary(max_size=300),
    utf8_text,
    ascii_text.map(t.Symbol),
)

hashable_keys = st.one_of(
    ascii_text.map(t.Symbol), utf8_text, st.integers(0, 2**64 - 1).map(t.Ulong)
)

# Element strategies per array element type (every element shares one type).
array_elements: dict[type, st.SearchStrategy[Any]] = {
    bool: st.booleans(),
    t.Ubyte: st.integers(0, 255).map(t.Ubyte),
    t.Ushort: st.integers(0, 2**16 - 1).map(t.Ushort),
    t.Uint: st.integers(0, 2**32 - 1).map(t.Uint),
    t.Ulong: st.integers(0, 2**64 - 1).map(t.Ulong),
    t.Byte: st.integers(-128, 127).map(t.Byte),
    t.Short: st.integers(-(2**15), 2**15 - 1).map(t.Short),
    t.Int: st.integers(-(2**31), 2**31 - 1).map(t.Int),
    int: st.integers(-(2**63), 2**63 - 1),
    t.Timestamp: st.integers(-(2**63), 2**63 - 1).map(t.Timestamp),
    t.Float: float32.map(t.Float),
    float: finite_floats,
    t.Char: st.characters(blacklist_categories=("Cs",)).map(t.Char),
    t.Decimal64: st.binary(min_size=8, max_size=8).map(t.Decimal64),
    uuid.UUID: st.uuids(),
    bytes: st.binary(max_size=300),
    str: utf8_text,
    t.Symbol: ascii_text.map(t.Symbol),
}


@st.composite
def arrays(draw: st.DrawFn, children: st.SearchStrategy[Any] | None = None) -> t.Array:
    element_type = draw(st.sampled_from(sorted(array_elements, key=lambda k: k.__name__)))
    items = draw(st.lists(array_elements[element_type], max_size=8))
    descriptor = draw(st.one_of(st.none(), ascii_text.map(t.Symbol)))
    return t.Array(element_type, tuple(items), descriptor)


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(hashable_keys, children, max_size=5),
        st.builds(
            t.Described,
            st.one_of(ascii_text.map(t.Symbol), st.integers(0, 2**64 - 1).map(t.Ulong)),
            children,
        ),
        st.lists(st.lists(children, max_size=3), max_size=3).map(
            lambda lists: t.Array(list, tuple(lists))
        ),
        st.lists(arrays(), max_size=3).map(lambda arrs: t.Array(t.Array, tuple(arrs))),
    )


values = st.recursive(st.one_of(scalars, arrays()), _extend, max_leaves=25)


def same(a: Any, b: Any) -> bool:
    """Equal values of identical types, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, t.Described):
        return same(a.descriptor, b.descriptor) and same(a.value, b.value)
    if isinstance(a, t.Array):
        return (
            a.element_type is b.element_type
            and same(a.descriptor, b.descriptor)
            and same(list(a.items), list(b.items))
        )
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@settings(max_examples=400)
@given(values)
def test_every_value_round_trips_with_its_type(value: Any) -> None:
    encoded = t.encode(value)
    decoded = t.decode(encoded)
    assert same(decoded, value)
    assert t.encode(decoded) == encoded


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_the_protocol_error(data: bytes) -> None:
    try:
        t.decode_all(data)
    except AmqpProtocolError as exc:
        assert exc.condition == Condition.DECODE_ERROR


@settings(max_examples=300)
@given(values, st.data())
def test_mutated_encodings_raise_only_the_protocol_error(value: Any, data: st.DataObject) -> None:
    encoded = bytearray(t.encode(value))
    # Flip a few bytes and/or truncate: lengths and counts end up lying.
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    try:
        t.decode_all(bytes(encoded[:cut]))
    except AmqpProtocolError as exc:
        assert exc.condition == Condition.DECODE_ERROR


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, b"\x40"),
        (True, b"\x41"),
        (False, b"\x42"),
        (t.Uint(0), b"\x43"),
        (t.Uint(7), b"\x52\x07"),
        (t.Uint(256), b"\x70\x00\x00\x01\x00"),
        (t.Ulong(0), b"\x44"),
        (t.Ulong(200), b"\x53\xc8"),
        (t.Ulong(256), b"\x80" + (256).to_bytes(8, "big")),
        (t.Int(-1), b"\x54\xff"),
        (t.Int(1000), b"\x71\x00\x00\x03\xe8"),
        (-1, b"\x55\xff"),
        (1000, b"\x81" + (1000).to_bytes(8, "big")),
        ([], b"\x45"),
        ("ab", b"\xa1\x02ab"),
        ("a" * 256, b"\xb1\x00\x00\x01\x00" + b"a" * 256),
        (t.Symbol("ab"), b"\xa3\x02ab"),
        (b"\x01", b"\xa0\x01\x01"),
        ([True], b"\xc0\x02\x01\x41"),
        ({t.Symbol("k"): None}, b"\xc1\x05\x02\xa3\x01k\x40"),
        (t.Array(t.Symbol, (t.Symbol("a"),)), b"\xe0\x04\x01\xa3\x01a"),
        (t.Described(t.Ulong(0x24), []), b"\x00\x53\x24\x45"),
    ],
)
def test_encoders_pick_the_compact_form(value: Any, expected: bytes) -> None:
    assert t.encode(value) == expected
    assert same(t.decode(expected), value)


def test_wide_list_and_map_forms_decode() -> None:
    # list32 / map32 / array32 / sym32 / vbin32 forms produced by other encoders.
    list32 = b"\xd0" + struct.pack(">II", 4 + 2, 2) + b"\x41\x42"
    assert t.decode(list32) == [True, False]
    map32 = b"\xd1" + struct.pack(">II", 4 + 4, 2) + b"\xa3\x01k\x40"
    assert t.decode(map32) == {"k": None}
    array32 = b"\xf0" + struct.pack(">II", 4 + 1 + 8, 2) + b"\x70" + struct.pack(">II", 1, 2)
    assert t.decode(array32) == t.Array(t.Uint, (t.Uint(1), t.Uint(2)))
    assert t.decode(b"\xb3\x00\x00\x00\x01x") == t.Symbol("x")
    assert t.decode(b"\xb0\x00\x00\x00\x01x") == b"x"
    assert t.decode(b"\x56\x01") is True
    array_of_true = b"\xe0\x02\x05\x41"  # zero-width elements
    assert t.decode(array_of_true).items == (True,) * 5


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x70\x00\x00",  # truncated uint
        b"\xa1\x05ab",  # string shorter than its length
        b"\xb0\xff\xff\xff\xff",  # 4 GiB binary declared, nothing there: no allocation
        b"\xd0\xff\xff\xff\xff\xff\xff\xff\xff",  # huge list
        b"\xc0\x01\x05",  # list count larger than its bytes
        b"\xc1\x03\x01\x40\x40",  # odd map count
        b"\xc1\x04\x02\x45\x40",  # unhashable (list) map key
        b"\x56\x02",  # invalid boolean
        b"\x73\xff\xff\xff\xff",  # invalid char
        b"\xa1\x01\xff",  # invalid UTF-8
        b"\xa3\x01\xff",  # non-ASCII symbol
        b"\x01",  # unknown constructor
        b"\xe0\x02\x01\x01",  # unknown array element constructor
        b"\xf0\x00\x00\x00\x05\xff\xff\xff\xff\x40",  # 4 billion nulls
        b"\x00" * 200 + b"\x40",  # descriptor nesting deeper than the limit
        b"\xc0\x02\x01" * 100,  # list nesting deeper than the limit
        b"\x40\x40",  # trailing bytes
    ],
)
def test_hostile_inputs_are_decode_errors(data: bytes) -> None:
    with pytest.raises(AmqpProtocolError) as info:
        t.decode(data)
    assert info.value.condition == Condition.DECODE_ERROR


@pytest.mark.parametrize(
    "value",
    [t.Ubyte(256), t.Uint(-1), t.Ulong(2**64), t.Byte(200), t.Int(2**31), 2**65, t.Symbol("é")],
)
def test_out_of_range_values_are_encode_errors(value: Any) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        t.encode(value)


def test_nan_round_trips() -> None:
    assert math.isnan(t.decode(t.encode(float("nan"))))


@settings(max_examples=200)
@given(values)
def test_skip_value_steps_over_exactly_one_value(value: Any) -> None:
    encoded = t.encode(value) + b"\x40"
    assert t.skip_value(encoded, 0, len(encoded)) == len(encoded) - 1


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_skip_value_on_arbitrary_bytes_raises_only_the_protocol_error(data: bytes) -> None:
    pos = 0
    try:
        while pos < len(data):
            new = t.skip_value(data, pos, len(data))
            assert pos < new <= len(data)
            pos = new
    except AmqpProtocolError as exc:
        assert exc.condition == Condition.DECODE_ERROR
