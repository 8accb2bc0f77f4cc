"""MessageData <-> AMQP message conversion and the v2 address strategies (no broker)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repid.connections.amqp import AmqpMessageHeader, AmqpMessageProperties
from repid.connections.amqp.addressing import (
    build_message,
    default_address_strategy,
    default_exchange_address_strategy,
    encode_plain_message,
    headers_of,
    new_message_id,
    payload_of,
)
from repid.connections.amqp.protocol.message import (
    AmqpSequence,
    AmqpValue,
    Message,
    decode_message,
    encode_message,
)
from repid.data import MessageData

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
content_types = st.none() | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30
)


@settings(max_examples=200)
@given(
    st.binary(max_size=2000),
    st.none() | st.dictionaries(text, text, max_size=5),
    content_types,
    text,
)
def test_message_data_survives_the_wire(
    payload: bytes, headers: dict[str, str] | None, content_type: str | None, channel: str
) -> None:
    built = build_message(
        channel,
        MessageData(payload, headers, content_type),
        None,
        default_address_strategy,
        default_exchange_address_strategy,
    )
    back = decode_message(encode_message(built))
    assert payload_of(back) == payload
    assert headers_of(back) == (headers or None)
    assert back.properties is not None
    assert back.properties.content_type == content_type
    assert back.properties.to == default_address_strategy(channel)
    assert back.header is not None and back.header.durable  # persistent by default


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        ("tasks", "/queues/tasks"),
        ("a/b c", "/queues/a%2Fb%20c"),
        ("über", "/queues/%C3%BCber"),
        ("x.y-z_~", "/queues/x.y-z_~"),
    ],
)
def test_queue_addresses_are_percent_encoded(channel: str, address: str) -> None:
    assert default_address_strategy(channel) == address


def test_exchange_addresses() -> None:
    assert default_exchange_address_strategy("ex", "a.b") == "/exchanges/ex/a.b"
    assert default_exchange_address_strategy("e x", "k/1") == "/exchanges/e%20x/k%2F1"
    assert default_exchange_address_strategy("ex", "") == "/exchanges/ex"


def test_to_beats_routing_key_beats_the_strategy() -> None:
    def build(params: dict) -> str | None:
        message = build_message(
            "chan",
            MessageData(b""),
            params,
            default_address_strategy,
            default_exchange_address_strategy,
        )
        assert message.properties is not None
        return message.properties.to

    assert build({}) == "/queues/chan"
    assert build({"routing_key": "rk"}) == "/exchanges/chan/rk"
    assert build({"routing_key": "rk", "to": "/queues/x"}) == "/queues/x"
    assert build({"properties": AmqpMessageProperties(to="/queues/p")}) == "/queues/p"


def test_user_properties_are_kept_and_not_mutated() -> None:
    properties = AmqpMessageProperties(message_id="m1", subject="s", content_type="text/x")
    header = AmqpMessageHeader(durable=False, priority=7)
    message = build_message(
        "c",
        MessageData(b"", None, "application/json"),
        {"properties": properties, "header": header},
        default_address_strategy,
        default_exchange_address_strategy,
    )
    assert message.properties is not None
    assert (message.properties.message_id, message.properties.subject) == ("m1", "s")
    assert message.properties.content_type == "text/x"  # the explicit property wins
    assert message.header is header
    assert properties.to is None  # the caller's object is untouched


@pytest.mark.parametrize(
    "params",
    [{"header": "durable"}, {"properties": {}}, {"message_annotations": [1]}, {"nope": 1}],
)
def test_bad_parameters_are_type_errors(params: dict) -> None:
    with pytest.raises(TypeError):
        build_message(
            "c",
            MessageData(b""),
            params,
            default_address_strategy,
            default_exchange_address_strategy,
        )


def test_bodies_from_other_clients() -> None:
    assert payload_of(Message(body=AmqpValue("text"))) == b"text"
    assert payload_of(Message(body=AmqpValue(b"raw"))) == b"raw"
    assert payload_of(Message(body=AmqpValue(None))) == b""
    assert payload_of(Message(body=AmqpValue(5))) is None
    assert payload_of(Message(body=[AmqpSequence([1])])) is None
    assert payload_of(Message(body=[b"a", b"b"])) == b"ab"
    odd = Message(application_properties={"n": 1, "b": True, "x": b"\xff", 5: "skip"})
    assert headers_of(odd) == {"n": "1", "b": "true", "x": "\ufffd"}


@settings(max_examples=200)
@given(
    st.binary(max_size=600),
    st.none() | st.dictionaries(text, text, max_size=5),
    content_types,
    text,
    st.none() | text,
)
def test_plain_encoding_is_byte_for_byte_the_generic_one(
    payload: bytes,
    headers: dict[str, str] | None,
    content_type: str | None,
    channel: str,
    reply_to: str | None,
) -> None:
    built = build_message(
        channel,
        MessageData(payload, headers, content_type, reply_to),
        None,
        default_address_strategy,
        default_exchange_address_strategy,
    )
    assert built.properties is not None and built.properties.to is not None
    assert built.properties.reply_to == reply_to
    fast = encode_plain_message(
        built.properties.message_id, built.properties.to, payload, headers, content_type, reply_to
    )
    assert fast == encode_message(built)


@pytest.mark.parametrize(
    ("headers", "content_type"),
    [
        ({"n": 1}, None),  # not a str value: the generic encoder decides
        ({"bad": "\ud800"}, None),  # a lone surrogate cannot be UTF-8
        (None, "text/plain; charset=\u00e9"),  # symbols are ASCII only
    ],
)
def test_plain_encoding_leaves_other_input_to_the_generic_path(
    headers: Any, content_type: str | None
) -> None:
    assert encode_plain_message("id", "/queues/q", b"x", headers, content_type) is None


def test_new_message_ids_are_distinct_version_4_uuids() -> None:
    ids = [new_message_id() for _ in range(200)]
    assert len(set(ids)) == 200
    for value in ids:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, value)


def test_plain_encoding_reuses_the_last_template_byte_for_byte() -> None:
    # Consecutive publishes with the same address, headers and content type take the cached
    # bytes around the message id; the result must still equal the generic encoder's.
    headers = {"topic": "noop"}
    for payload in (b"x", b"y" * 300, b""):
        for ct in ("application/json", "application/json", None):
            built = build_message(
                "q", MessageData(payload, dict(headers), ct), None,
                default_address_strategy, default_exchange_address_strategy,
            )  # fmt: skip
            assert built.properties is not None and built.properties.to is not None
            fast = encode_plain_message(
                built.properties.message_id, built.properties.to, payload, headers, ct
            )
            assert fast == encode_message(built)
