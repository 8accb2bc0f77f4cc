"""Frames, performatives and message sections: round trips and hostile input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repid.connections.amqp.protocol import frames as fr
from repid.connections.amqp.protocol import performatives as p
from repid.connections.amqp.protocol import types as t
from repid.connections.amqp.protocol.composite import decode_composite
from repid.connections.amqp.protocol.connection import _MAX_FIRST_TRANSFER, _first_transfer
from repid.connections.amqp.protocol.errors import AmqpProtocolError, Condition
from repid.connections.amqp.protocol.message import (
    AmqpMessageHeader,
    AmqpMessageProperties,
    AmqpSequence,
    AmqpValue,
    Message,
    decode_message,
    encode_message,
)

uint = st.integers(0, 2**32 - 1)
ushort = st.integers(0, 2**16 - 1)
ubyte = st.integers(0, 255)
ulong = st.integers(0, 2**64 - 1)
text = st.text(max_size=20).filter(lambda s: all(not 0xD800 <= ord(c) <= 0xDFFF for c in s))
sym = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=12)
syms = st.one_of(st.none(), st.lists(sym, min_size=1, max_size=3))
fields_map = st.one_of(
    st.none(), st.dictionaries(sym.map(t.Symbol), st.one_of(text, st.integers(0, 100)), max_size=3)
)
opt = st.one_of
long = st.integers(-(2**63), 2**63 - 1)

error = st.builds(p.Error, condition=sym, description=opt(st.none(), text), info=fields_map)
outcome = st.one_of(
    st.builds(p.Accepted),
    st.builds(p.Rejected, error=opt(st.none(), error)),
    st.builds(p.Released),
    st.builds(
        p.Modified,
        delivery_failed=st.booleans(),
        undeliverable_here=st.booleans(),
        message_annotations=fields_map,
    ),
)
state = st.one_of(outcome, st.builds(p.Received, section_number=uint, section_offset=ulong))
address = opt(st.none(), text)
source = st.builds(
    p.Source,
    address=address,
    durable=st.integers(0, 2),
    expiry_policy=st.sampled_from(["session-end", "link-detach", "never"]),
    timeout=uint,
    dynamic=st.booleans(),
    distribution_mode=opt(st.none(), sym),
    filter=fields_map,
    default_outcome=opt(st.none(), outcome),
    outcomes=syms,
    capabilities=syms,
)
target = st.builds(
    p.Target, address=address, durable=st.integers(0, 2), timeout=uint, capabilities=syms
)

performatives = st.one_of(
    st.builds(
        p.Open,
        container_id=text,
        hostname=opt(st.none(), text),
        max_frame_size=uint,
        channel_max=ushort,
        idle_time_out=opt(st.none(), uint),
        outgoing_locales=syms,
        offered_capabilities=syms,
        properties=fields_map,
    ),
    st.builds(
        p.Begin,
        remote_channel=opt(st.none(), ushort),
        next_outgoing_id=uint,
        incoming_window=uint,
        outgoing_window=uint,
        handle_max=uint,
    ),
    st.builds(
        p.Attach,
        name=text,
        handle=uint,
        role=st.booleans(),
        snd_settle_mode=st.integers(0, 2),
        rcv_settle_mode=st.integers(0, 1),
        source=opt(st.none(), source),
        target=opt(st.none(), target),
        initial_delivery_count=opt(st.none(), uint),
        max_message_size=opt(st.none(), ulong),
        properties=fields_map,
    ),
    st.builds(
        p.Flow,
        next_incoming_id=opt(st.none(), uint),
        incoming_window=uint,
        next_outgoing_id=uint,
        outgoing_window=uint,
        handle=opt(st.none(), uint),
        delivery_count=opt(st.none(), uint),
        link_credit=opt(st.none(), uint),
        available=opt(st.none(), uint),
        drain=st.booleans(),
        echo=st.booleans(),
    ),
    st.builds(
        p.Transfer,
        handle=uint,
        delivery_id=opt(st.none(), uint),
        delivery_tag=opt(st.none(), st.binary(max_size=32)),
        message_format=opt(st.none(), uint),
        settled=opt(st.none(), st.booleans()),
        more=st.booleans(),
        rcv_settle_mode=opt(st.none(), st.integers(0, 1)),
        state=opt(st.none(), state),
        aborted=st.booleans(),
    ),
    st.builds(
        p.Disposition,
        role=st.booleans(),
        first=uint,
        last=opt(st.none(), uint),
        settled=st.booleans(),
        state=opt(st.none(), state),
    ),
    st.builds(p.Detach, handle=uint, closed=st.booleans(), error=opt(st.none(), error)),
    st.builds(p.End, error=opt(st.none(), error)),
    st.builds(p.Close, error=opt(st.none(), error)),
)

sasl_bodies = st.one_of(
    st.builds(p.SaslMechanisms, sasl_server_mechanisms=st.lists(sym, min_size=1, max_size=3)),
    st.builds(
        p.SaslInit,
        mechanism=sym,
        initial_response=opt(st.none(), st.binary(max_size=20)),
        hostname=opt(st.none(), text),
    ),
    st.builds(p.SaslChallenge, challenge=st.binary(max_size=20)),
    st.builds(p.SaslResponse, response=st.binary(max_size=20)),
    st.builds(
        p.SaslOutcome, code=st.integers(0, 4), additional_data=opt(st.none(), st.binary(max_size=9))
    ),
)


@settings(max_examples=150)
@given(performatives, st.integers(0, 2**16 - 1), st.binary(max_size=64))
def test_every_performative_round_trips_through_a_frame(
    body: Any, channel: int, payload: bytes
) -> None:
    if not isinstance(body, p.Transfer):
        payload = b""
    frame = fr.encode_frame(body, channel=channel, payload=payload)
    header = fr.parse_frame_header(frame, 0, 2**32 - 1)
    assert (header.size, header.doff, header.type, header.channel) == (len(frame), 2, 0, channel)
    decoded, rest = fr.decode_frame_body(frame, 8, len(frame), header.type)
    assert decoded == body
    assert bytes(rest) == payload


@settings(max_examples=100)
@given(sasl_bodies)
def test_every_sasl_body_round_trips(body: Any) -> None:
    frame = fr.encode_frame(body, frame_type=fr.TYPE_SASL)
    decoded, _ = fr.decode_frame_body(frame, 8, len(frame), fr.TYPE_SASL)
    assert decoded == body


properties = st.builds(
    AmqpMessageProperties,
    message_id=opt(st.none(), text, st.uuids(), st.integers(0, 2**64 - 1), st.binary(max_size=8)),
    user_id=opt(st.none(), st.binary(max_size=8)),
    to=opt(st.none(), text),
    subject=opt(st.none(), text),
    reply_to=opt(st.none(), text),
    correlation_id=opt(st.none(), text),
    content_type=opt(st.none(), sym),
    content_encoding=opt(st.none(), sym),
    absolute_expiry_time=opt(st.none(), st.integers(0, 2**62)),
    creation_time=opt(st.none(), st.integers(0, 2**62)),
    group_id=opt(st.none(), text),
    group_sequence=opt(st.none(), uint),
    reply_to_group_id=opt(st.none(), text),
)
header = st.builds(
    AmqpMessageHeader,
    durable=st.booleans(),
    priority=ubyte,
    ttl=opt(st.none(), uint),
    first_acquirer=st.booleans(),
    delivery_count=uint,
)
annotations = opt(
    st.none(),
    st.dictionaries(sym.map(t.Symbol), st.one_of(text, long, st.none()), min_size=1),
)
bodies = st.one_of(
    st.lists(st.binary(max_size=300), max_size=3),
    st.lists(st.lists(long, max_size=3).map(AmqpSequence), min_size=1, max_size=2),
    st.one_of(text, long, st.none(), st.binary()).map(AmqpValue),
)
messages = st.builds(
    Message,
    body=bodies,
    header=opt(st.none(), header),
    delivery_annotations=annotations,
    message_annotations=annotations,
    properties=opt(st.none(), properties),
    application_properties=opt(
        st.none(), st.dictionaries(text, st.one_of(text, long, st.booleans()), min_size=1)
    ),
    footer=annotations,
)


@settings(max_examples=150)
@given(messages)
def test_whole_messages_round_trip(message: Message) -> None:
    decoded = decode_message(encode_message(message))
    assert decoded == message
    assert encode_message(decoded) == encode_message(message)


@settings(max_examples=150)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_as_message_raise_only_the_protocol_error(data: bytes) -> None:
    try:
        decode_message(data)
    except AmqpProtocolError as exc:
        assert exc.condition == Condition.DECODE_ERROR


@settings(max_examples=150)
@given(st.binary(max_size=120), st.sampled_from([fr.TYPE_AMQP, fr.TYPE_SASL]))
def test_arbitrary_frame_bodies_raise_only_the_protocol_error(data: bytes, kind: int) -> None:
    try:
        fr.decode_frame_body(data, 0, len(data), kind)
    except AmqpProtocolError as exc:
        assert exc.condition == Condition.DECODE_ERROR


def test_symbolic_descriptors_are_understood() -> None:
    described = t.Described(t.Symbol("amqp:close:list"), [])
    assert decode_composite(described) == p.Close()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (t.Described(t.Ulong(0x10), []), "mandatory"),  # open without container-id
        (t.Described(t.Ulong(0x10), [5]), "invalid value"),  # container-id not a string
        (t.Described(t.Ulong(0x12), ["n", t.Uint(1), t.Uint(0)]), "invalid value"),  # role
        (t.Described(t.Ulong(0x99), []), "unknown descriptor"),
        (t.Described(t.Ulong(0x10), {}), "not encoded as a list"),
        (t.Described([1], []), "unknown descriptor"),
        ("not described", "expected a described"),
        (t.Described(t.Ulong(0x14), [t.Uint(0), None, None, None, None, None, None, 7]), "state"),
    ],
)
def test_invalid_composites_are_decode_errors(value: Any, reason: str) -> None:
    with pytest.raises(AmqpProtocolError, match=reason) as info:
        decode_composite(value)
    assert info.value.condition == Condition.DECODE_ERROR


def test_payload_is_only_allowed_after_transfer() -> None:
    frame = fr.encode_frame(p.Close()) + b"xx"
    with pytest.raises(AmqpProtocolError, match="unexpected bytes"):
        fr.decode_frame_body(frame, 8, len(frame), fr.TYPE_AMQP)


def test_sasl_frames_must_carry_sasl_bodies() -> None:
    frame = fr.encode_frame(p.Close(), frame_type=fr.TYPE_SASL)
    with pytest.raises(AmqpProtocolError, match="non-SASL"):
        fr.decode_frame_body(frame, 8, len(frame), fr.TYPE_SASL)
    frame = fr.encode_frame(p.SaslOutcome(code=0))
    with pytest.raises(AmqpProtocolError, match="not a performative"):
        fr.decode_frame_body(frame, 8, len(frame), fr.TYPE_AMQP)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"\x00\x00\x00\x07\x02\x00\x00\x00", "below 8"),
        (b"\x00\x01\x00\x00\x02\x00\x00\x00", "exceeds the maximum"),
        (b"\x00\x00\x00\x08\x01\x00\x00\x00", "data offset"),
        (b"\x00\x00\x00\x08\x03\x00\x00\x00", "data offset"),
        (b"\x00\x00\x00\x08\x02\x07\x00\x00", "frame type"),
    ],
)
def test_bad_frame_headers_are_framing_errors(header: bytes, reason: str) -> None:
    with pytest.raises(AmqpProtocolError, match=reason) as info:
        fr.parse_frame_header(header, 0, 4096)
    assert info.value.condition == Condition.FRAMING_ERROR


def test_message_section_order_is_enforced() -> None:
    properties = t.encode(AmqpMessageProperties(subject="s").to_described())
    header = t.encode(AmqpMessageHeader(durable=True).to_described())
    with pytest.raises(AmqpProtocolError, match="out of order"):
        decode_message(properties + header)
    data = t.encode(t.Described(t.Ulong(0x75), b"x"))
    value = t.encode(t.Described(t.Ulong(0x77), 1))
    with pytest.raises(AmqpProtocolError, match="amqp-value"):
        decode_message(data + value)
    assert decode_message(header + properties + data + data).data == b"xx"


def test_message_header_defaults_are_omitted_on_the_wire() -> None:
    assert t.encode(AmqpMessageHeader().to_described()) == b"\x00\x53\x70\x45"


@settings(max_examples=150)
@given(messages)
def test_skipping_annotations_keeps_everything_else(message: Message) -> None:
    encoded = encode_message(message)
    lean = decode_message(encoded, annotations=False)
    full = decode_message(encoded)
    assert (lean.delivery_annotations, lean.message_annotations, lean.footer) == (None,) * 3
    full.delivery_annotations = full.message_annotations = full.footer = None
    assert lean == full


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_as_lean_message_raise_only_the_protocol_error(data: bytes) -> None:
    try:
        decode_message(data, annotations=False)
    except AmqpProtocolError as exc:
        assert exc.condition == Condition.DECODE_ERROR


def _generic_decode(frame: bytes) -> Any:
    """The performative of `frame` through the generic decoder only (no shortcuts)."""
    described, _ = t.decode_value(frame, 8, len(frame))
    return decode_composite(described)


@settings(max_examples=200)
@given(
    st.booleans(),
    uint,
    opt(st.none(), uint),
    st.booleans(),
    opt(st.none(), outcome),
    st.booleans(),
)
def test_publisher_confirm_shortcut_decodes_like_the_generic_decoder(
    role: bool, first: int, last: int | None, settled: bool, state: Any, batchable: bool
) -> None:
    body = p.Disposition(role, first, last, settled, state, batchable)
    frame = fr.encode_frame(body)
    decoded, rest = fr.decode_frame_body(frame, 8, len(frame), fr.TYPE_AMQP)
    assert decoded == body == _generic_decode(frame)
    assert bytes(rest) == b""


@pytest.mark.parametrize(
    "fields",
    [
        b"\x41\x52\x07\x40\x41\x00\x53\x24\x45",  # accepted as list0
        b"\x41\x52\x01\x40\x41\x00\x53\x24\x45\x40",  # RabbitMQ 4's publisher confirm
        b"\x41\x43\x40\x41\x40\x41",  # batchable true
        b"\x41\x52\x07\x40\x41\x00\x53\x24\xc0\x01\x00",  # accepted as an empty list8
        b"\x41\x70\x00\x01\x00\x00\x70\x00\x01\x00\x05\x41",  # uint32 first and last
        b"\x41\x43\x40\x40\x40",  # nulls for last, settled and state
        b"\x56\x01\x52\x07\x40\x41",  # a boolean with a value byte: the generic path
        b"\x41\x52\x07\x40\x41\x00\x53\x25\x45",  # rejected: the generic path
    ],
)
def test_disposition_encodings_decode_like_the_generic_decoder(fields: bytes) -> None:
    body = b"\x00\x53\x15\xc0" + bytes((len(fields) + 1, _count_fields(fields))) + fields
    frame = fr.encode_frame_header(8 + len(body), fr.TYPE_AMQP, 0) + body
    decoded, _ = fr.decode_frame_body(frame, 8, len(frame), fr.TYPE_AMQP)
    assert decoded == _generic_decode(frame)


def _count_fields(items: bytes) -> int:
    count, pos = 0, 0
    while pos < len(items):
        pos = t.skip_value(items, pos, len(items), 0)
        count += 1
    return count


@pytest.mark.parametrize(
    ("fields", "count"),
    [
        (b"\x40\x52\x07", 2),  # null role (mandatory)
        (b"\x41\x40", 2),  # null first (mandatory)
        (b"\x41", 1),  # first missing
        (b"\x41\x52\x07\x40\x41\x00\x53\x24\x45\x41", 5),  # more bytes than fields
        (b"\x41\x52\x07\x40\x41", 5),  # fewer fields than the count
    ],
)
def test_invalid_dispositions_are_still_decode_errors(fields: bytes, count: int) -> None:
    body = b"\x00\x53\x15\xc0" + bytes((len(fields) + 1, count)) + fields
    frame = fr.encode_frame_header(8 + len(body), fr.TYPE_AMQP, 0) + body
    with pytest.raises(AmqpProtocolError):
        fr.decode_frame_body(frame, 8, len(frame), fr.TYPE_AMQP)


@settings(max_examples=200)
@given(uint, uint, st.binary(max_size=255), st.booleans())
def test_first_transfer_is_encoded_like_the_generic_encoder(
    handle: int, delivery_id: int, tag: bytes, settled: bool
) -> None:
    generic = t.encode(
        p.Transfer(
            handle=handle, delivery_id=delivery_id, delivery_tag=tag, settled=settled
        ).to_described()
    )
    assert _first_transfer(handle, delivery_id, tag, settled) == generic
    assert len(generic) + 8 <= _MAX_FIRST_TRANSFER


# Candidates for each disposition field in order (role, first, last, settled, state,
# batchable), well-formed and not, so that generated lists come close to the real shape.
_BOOL_TOKENS = [b"\x40", b"\x41", b"\x42", b"\x56\x01", b"\x00", b"\x43"]
_UINT_TOKENS = [b"\x40", b"\x43", b"\x52\x07", b"\x70\x00\x01\x00\x00", b"\x52", b"\x41"]
_STATE_TOKENS = [
    b"\x40",
    b"\x00\x53\x24\x45",
    b"\x00\x53\x24\xc0\x01\x00",
    b"\x00\x53\x25\x45",
    b"\x00\x53\x24",
    b"\x00\x53\x24\xc0\x02\x01\x40",
]
_disposition_fields = st.tuples(
    *(
        st.sampled_from(tokens)
        for tokens in (
            _BOOL_TOKENS,
            _UINT_TOKENS,
            _UINT_TOKENS,
            _BOOL_TOKENS,
            _STATE_TOKENS,
            _BOOL_TOKENS,
        )
    ),
    st.integers(0, 6),
).map(lambda parts: b"".join(parts[: parts[-1]]))


@settings(max_examples=400)
@given(
    st.integers(0, 7),
    st.one_of(st.binary(max_size=14), _disposition_fields),
    st.binary(max_size=4),
)
def test_any_disposition_bytes_decode_like_the_generic_decoder(
    count: int, fields: bytes, after: bytes
) -> None:
    # A list8 of `count` arbitrary field bytes, followed in the buffer by unrelated bytes
    # (the next frame): the shortcut and the generic decoder agree, or both reject it.
    body = b"\x00\x53\x15\xc0" + bytes((len(fields) + 1, count)) + fields
    frame = fr.encode_frame_header(8 + len(body), fr.TYPE_AMQP, 0) + body
    try:
        expected: Any = _generic_decode(frame)
    except AmqpProtocolError:
        expected = AmqpProtocolError
    try:
        decoded, _ = fr.decode_frame_body(frame + after, 8, len(frame), fr.TYPE_AMQP)
    except AmqpProtocolError:
        decoded = AmqpProtocolError
    assert decoded == expected


def _transfer_frame(fields: bytes, count: int, payload: bytes = b"") -> bytes:
    body = b"\x00\x53\x14\xc0" + bytes((len(fields) + 1, count)) + fields + payload
    return fr.encode_frame_header(8 + len(body), fr.TYPE_AMQP, 0) + body


def test_a_rabbitmq_transfer_takes_the_shortcut() -> None:
    # RabbitMQ 4's transfer of delivery 299 (tag 0x0000012b), then the message's first bytes.
    fields = bytes.fromhex("43700000012ba0040000012b4342404040404040")
    frame = _transfer_frame(fields, 11, b"\x00\x53\x70")
    assert fr._plain_transfer(frame, 11, len(frame)) is not None
    decoded, rest = fr.decode_frame_body(frame, 8, len(frame), fr.TYPE_AMQP)
    assert decoded == p.Transfer(0, 299, b"\x00\x00\x01\x2b", 0, False) == _generic_decode(frame)
    assert bytes(rest) == b"\x00\x53\x70"


@settings(max_examples=300)
@given(
    uint,
    opt(st.none(), uint),
    opt(st.none(), st.binary(max_size=32)),
    opt(st.none(), uint),
    opt(st.none(), st.booleans()),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.binary(max_size=20),
)
def test_transfer_shortcut_decodes_like_the_generic_decoder(
    handle: int,
    delivery_id: int | None,
    tag: bytes | None,
    message_format: int | None,
    settled: bool | None,
    more: bool,
    resume: bool,
    aborted: bool,
    batchable: bool,
    payload: bytes,
) -> None:
    body = p.Transfer(
        handle,
        delivery_id,
        tag,
        message_format,
        settled,
        more,
        resume=resume,
        aborted=aborted,
        batchable=batchable,
    )
    frame = fr.encode_frame(body, payload=payload) if payload else fr.encode_frame(body)
    decoded, rest = fr.decode_frame_body(frame, 8, len(frame), fr.TYPE_AMQP)
    assert decoded == body == _generic_decode(frame)
    assert bytes(rest) == payload


_BINARY_TOKENS = [b"\x40", b"\xa0\x02ab", b"\xa0\x00", b"\xb0\x00\x00\x00\x01a", b"\xa0\x09x"]
_transfer_fields = st.tuples(
    *(
        st.sampled_from(tokens)
        for tokens in (
            _UINT_TOKENS,  # handle
            _UINT_TOKENS,  # delivery-id
            _BINARY_TOKENS,  # delivery-tag
            _UINT_TOKENS,  # message-format
            _BOOL_TOKENS,  # settled
            _BOOL_TOKENS,  # more
            [b"\x40", b"\x50\x01", b"\x41"],  # rcv-settle-mode
            _STATE_TOKENS,  # state
            _BOOL_TOKENS,  # resume
            _BOOL_TOKENS,  # aborted
            _BOOL_TOKENS,  # batchable
        )
    ),
    st.integers(0, 11),
).map(lambda parts: b"".join(parts[: parts[-1]]))


@settings(max_examples=600)
@given(
    st.integers(0, 12),
    st.one_of(st.binary(max_size=24), _transfer_fields),
    st.binary(max_size=6),
)
def test_any_transfer_bytes_decode_like_the_generic_decoder(
    count: int, fields: bytes, payload: bytes
) -> None:
    frame = _transfer_frame(fields, count, payload)
    try:
        expected: Any = _generic_decode(frame)
    except AmqpProtocolError:
        expected = AmqpProtocolError
    try:
        decoded, _ = fr.decode_frame_body(frame, 8, len(frame), fr.TYPE_AMQP)
    except AmqpProtocolError:
        decoded = AmqpProtocolError
    assert decoded == expected
