"""The consume path's decoder: its fast path gives exactly what the generic decoder gives."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repid.connections.amqp import AmqpMessageHeader, AmqpMessageProperties
from repid.connections.amqp.addressing import (
    encode_plain_message,
    new_message_id,
)
from repid.connections.amqp.decoding import (
    DeliveryFields,
    _decode_generic,
    _decode_plain,
    decode_delivery,
)
from repid.connections.amqp.protocol.errors import AmqpProtocolError
from repid.connections.amqp.protocol.message import AmqpValue, Message, encode_message
from repid.connections.amqp.protocol.message import decode_message as generic_decode
from repid.connections.amqp.protocol.types import Symbol

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
ascii_text = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40)
uint = st.integers(0, 2**32 - 1)

# What RabbitMQ 4 adds to a message it delivers: a header with the delivery count (and
# first-acquirer) and message annotations naming the exchange and routing key.
RABBITMQ_DELIVERY = bytes.fromhex(
    "005370c006054140404143005372c12604a30a782d65786368616e6765a100a30d782d726f7574696e67"
    "2d6b6579a10673616d706c65005373c04907a120613937366662366231653261343633616134633366"
    "636231666239393262646240a10e2f7175657565732f73616d706c65404040a3106170706c69636174"
    "696f6e2f6a736f6e005374c10e02a105746f706963a1046e6f6f70005375a0157b2269223a312c2274"
    "223a322e352c2277223a307d"
)

# Its header and message annotations, the sections RabbitMQ puts before the publisher's own.
RABBITMQ_PREFIX = RABBITMQ_DELIVERY[: RABBITMQ_DELIVERY.index(b"\x00\x53\x73")]


def reference(data: bytes) -> DeliveryFields:
    """The generic decoder alone (what every message took before the fast path)."""
    return _decode_generic(data)


def test_a_rabbitmq_delivery_takes_the_fast_path() -> None:
    fields = _decode_plain(RABBITMQ_DELIVERY)
    assert fields == DeliveryFields(
        b'{"i":1,"t":2.5,"w":0}',
        {"topic": "noop"},
        "a976fb6b1e2a463aa4c3fcb1fb992bdb",
        None,
        "application/json",
        0,
    )
    assert fields == reference(RABBITMQ_DELIVERY)


headers_st = st.none() | st.dictionaries(text, text, max_size=6)


@settings(max_examples=300)
@given(
    st.binary(max_size=600),
    headers_st,
    st.none() | ascii_text.filter(bool),
    st.none() | text,
    text,
    st.none() | uint,
    st.booleans(),
)
def test_plain_messages_as_delivered_decode_fast_and_the_same(
    payload: bytes,
    headers: dict[str, str] | None,
    content_type: str | None,
    reply_to: str | None,
    to: str,
    delivery_count: int | None,
    annotated: bool,
) -> None:
    plain = encode_plain_message(new_message_id(), to, payload, headers, content_type, reply_to)
    if plain is None:  # input the encoder's own fast path leaves to the generic one
        return
    # Replace the publisher's header with a delivered one, as RabbitMQ does.
    header = AmqpMessageHeader(durable=True, first_acquirer=True)
    if delivery_count is not None:
        header = AmqpMessageHeader(durable=True, delivery_count=delivery_count)
    published = generic_decode(plain)
    published.header = header
    if annotated:
        published.message_annotations = {Symbol("x-exchange"): "", Symbol("x-routing-key"): to}
    data = encode_message(published)
    fast = _decode_plain(data)
    short_properties = len(to.encode()) + len((reply_to or "").encode()) + len(content_type or "")
    short_headers = sum(len(k.encode()) + len(v.encode()) + 4 for k, v in (headers or {}).items())
    if short_properties < 180 and short_headers < 240:
        assert fast is not None  # sections under 256 bytes: the 8-bit forms the fast path reads
    if fast is not None:
        assert fast == reference(data)
    assert decode_delivery(data) == reference(data)


message_ids = st.none() | text | st.integers(0, 2**64 - 1) | st.uuids() | st.binary(max_size=16)
values = st.none() | text | st.integers(-(2**31), 2**31 - 1) | st.booleans() | st.binary(max_size=8)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    """Any message a peer might send: every section optional, any property types."""
    header = draw(
        st.none()
        | st.builds(
            AmqpMessageHeader,
            durable=st.booleans(),
            priority=st.integers(0, 255),
            ttl=st.none() | uint,
            first_acquirer=st.booleans(),
            delivery_count=uint,
        )
    )
    properties = draw(
        st.none()
        | st.builds(
            AmqpMessageProperties,
            message_id=message_ids,
            user_id=st.none() | st.binary(max_size=8),
            to=st.none() | text,
            subject=st.none() | text,
            reply_to=st.none() | text,
            correlation_id=message_ids,
            content_type=st.none() | ascii_text.map(Symbol),
            content_encoding=st.none() | ascii_text.map(Symbol),
            absolute_expiry_time=st.none() | st.integers(0, 2**40),
            creation_time=st.none() | st.integers(0, 2**40),
            group_id=st.none() | text,
            group_sequence=st.none() | uint,
            reply_to_group_id=st.none() | text,
        )
    )
    body: Any = draw(
        st.lists(st.binary(max_size=300), min_size=1, max_size=3)
        | st.builds(AmqpValue, st.none() | text | st.binary(max_size=50) | st.integers(0, 9))
    )
    annotations = st.none() | st.dictionaries(ascii_text.map(Symbol), values, max_size=3)
    return Message(
        body=body,
        header=header,
        delivery_annotations=draw(annotations),
        message_annotations=draw(annotations),
        properties=properties,
        application_properties=draw(st.none() | st.dictionaries(text, values, max_size=4)),
        footer=draw(annotations),
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_any_message_decodes_as_the_generic_decoder_says(message: Message) -> None:
    data = encode_message(message)
    fast = _decode_plain(data)
    try:
        expected = reference(data)
    except AmqpProtocolError:
        assert fast is None
        with pytest.raises(AmqpProtocolError):
            decode_delivery(data)
        return
    if fast is not None:
        assert fast == expected
    assert decode_delivery(data) == expected


short_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)


@settings(max_examples=600)
@given(
    st.binary(max_size=300),
    st.none() | st.dictionaries(short_text, short_text, max_size=3),  # sections under 256 bytes
    st.data(),
)
def test_corrupted_messages_never_decode_differently(
    payload: bytes, headers: dict[str, str] | None, data: st.DataObject
) -> None:
    """Flipped, cut and inserted bytes: the fast path gives the generic answer or steps aside."""
    plain = encode_plain_message(new_message_id(), "/queues/q", payload, headers, "text/plain")
    assert plain is not None
    delivered = RABBITMQ_PREFIX + plain[plain.index(b"\x00\x53\x73") :]
    assert _decode_plain(delivered) is not None  # intact, it takes the fast path
    raw = bytearray(delivered)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        kind = data.draw(st.sampled_from(("flip", "cut", "insert")))
        if kind == "flip" and at < len(raw):
            raw[at] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[at : at + data.draw(st.integers(1, 8))]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    corrupted = bytes(raw)
    fast = _decode_plain(corrupted)
    try:
        expected = reference(corrupted)
    except (AmqpProtocolError, RecursionError):
        assert fast is None
        return
    if fast is not None:
        assert fast == expected


def test_message_ids_of_other_types_are_read_by_the_generic_path() -> None:
    for message_id in (7, uuid.UUID(int=5), b"\x01\x02"):
        message = Message(body=[b"x"], properties=AmqpMessageProperties(message_id=message_id))
        data = encode_message(message)
        assert _decode_plain(data) is None
        assert decode_delivery(data).message_id == str(message_id)


def test_an_unusable_body_is_a_protocol_error() -> None:
    data = encode_message(Message(body=AmqpValue([1, 2])))
    with pytest.raises(AmqpProtocolError):
        decode_delivery(data)


@pytest.mark.parametrize(
    "marker",
    [b"mid-1", b"to-22", b"sub-3", b"rep-4", b"cor-5", b"typ-6", b"enc-7", b"grp-8", b"rgi-9"]
    + [b"key-a", b"val-b"],
)
def test_invalid_text_in_any_field_is_rejected_by_both_paths(marker: bytes) -> None:
    def s(value: bytes) -> str:
        return value.decode()

    message = Message(
        body=[b"x"],
        header=AmqpMessageHeader(durable=True, delivery_count=3),
        properties=AmqpMessageProperties(
            message_id=s(b"mid-1"),
            to=s(b"to-22"),
            subject=s(b"sub-3"),
            reply_to=s(b"rep-4"),
            correlation_id=s(b"cor-5"),
            content_type=Symbol(s(b"typ-6")),
            content_encoding=Symbol(s(b"enc-7")),
            group_id=s(b"grp-8"),
            reply_to_group_id=s(b"rgi-9"),
        ),
        application_properties={s(b"key-a"): s(b"val-b")},
    )
    data = encode_message(message)
    assert _decode_plain(data) == reference(data)  # intact: the fast path reads it
    broken = data.replace(marker, marker[:-1] + b"\xff")
    assert broken != data
    assert _decode_plain(broken) is None
    with pytest.raises(AmqpProtocolError):
        decode_delivery(broken)


def test_sections_seen_before_still_give_each_message_its_own_fields() -> None:
    """The section caches: same layout, new id and count each time, and a changed header."""
    seen = set()
    for i in range(600):  # more than the caches hold, so they are cleared on the way
        plain = encode_plain_message(
            new_message_id(), f"/queues/q{i % 300}", b"%d" % i, {"n": str(i % 7)}, "text/plain"
        )
        assert plain is not None
        message = generic_decode(plain)
        message.header = AmqpMessageHeader(durable=True, delivery_count=i % 5)
        data = encode_message(message)
        fields = _decode_plain(data)
        assert fields == reference(data)
        assert fields is not None and fields.delivery_count == i % 5
        assert fields.headers == {"n": str(i % 7)}
        seen.add(fields.message_id)
    assert len(seen) == 600


def test_a_receiver_changing_its_headers_does_not_change_the_next_messages() -> None:
    first = _decode_plain(RABBITMQ_DELIVERY)
    assert first is not None and first.headers is not None
    first.headers["topic"] = "changed"
    again = _decode_plain(RABBITMQ_DELIVERY)
    assert again is not None and again.headers == {"topic": "noop"}
