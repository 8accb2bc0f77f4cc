"""The hand-written pubsub.proto codec: hypothesis round trips, hostile input, known bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repid.connections.pubsub import _proto as p

text = st.text(max_size=40)
int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
attributes = st.dictionaries(text, text, max_size=5)

messages = st.builds(
    p.PubsubMessage,
    data=st.binary(max_size=200),
    attributes=attributes,
    message_id=text,
    publish_time_seconds=int64,
    publish_time_nanos=st.integers(min_value=0, max_value=999_999_999),
    ordering_key=text,
)
received = st.builds(p.ReceivedMessage, ack_id=text, message=messages, delivery_attempt=int32)


def _encode_record(msg: p.PubsubMessage) -> bytes:
    return p.encode_pubsub_message(
        msg.data,
        msg.attributes,
        msg.ordering_key,
        message_id=msg.message_id,
        publish_time_seconds=msg.publish_time_seconds,
        publish_time_nanos=msg.publish_time_nanos,
    )


@given(messages)
def test_pubsub_message_round_trip(msg: p.PubsubMessage) -> None:
    assert p.decode_pubsub_message(_encode_record(msg)) == msg


@given(text, st.lists(messages, max_size=4))
def test_publish_request_round_trip(topic: str, msgs: list[p.PubsubMessage]) -> None:
    encoded = p.encode_publish_request(topic, [_encode_record(m) for m in msgs])
    assert p.decode_publish_request(encoded) == p.PublishRequest(topic=topic, messages=msgs)


@given(st.lists(text, max_size=10))
def test_publish_response_round_trip(ids: list[str]) -> None:
    assert p.decode_publish_response(p.encode_publish_response(ids)) == ids


@given(st.lists(received, max_size=4))
def test_streaming_pull_response_round_trip(items: list[p.ReceivedMessage]) -> None:
    assert p.decode_streaming_pull_response(p.encode_streaming_pull_response(items)) == items


@st.composite
def pull_requests(draw: st.DrawFn) -> p.StreamingPullRequest:
    modify_ids = draw(st.lists(text, max_size=5))
    return p.StreamingPullRequest(
        subscription=draw(text),
        ack_ids=draw(st.lists(text, max_size=5)),
        modify_deadline_seconds=draw(
            st.lists(int32, min_size=len(modify_ids), max_size=len(modify_ids))
        ),
        modify_deadline_ack_ids=modify_ids,
        stream_ack_deadline_seconds=draw(int32),
        client_id=draw(text),
        max_outstanding_messages=draw(int64),
        max_outstanding_bytes=draw(int64),
    )


@given(pull_requests())
def test_streaming_pull_request_round_trip(request: p.StreamingPullRequest) -> None:
    encoded = p.encode_streaming_pull_request(
        subscription=request.subscription,
        ack_ids=request.ack_ids,
        modify_deadline_seconds=request.modify_deadline_seconds,
        modify_deadline_ack_ids=request.modify_deadline_ack_ids,
        stream_ack_deadline_seconds=request.stream_ack_deadline_seconds,
        client_id=request.client_id,
        max_outstanding_messages=request.max_outstanding_messages,
        max_outstanding_bytes=request.max_outstanding_bytes,
    )
    assert p.decode_streaming_pull_request(encoded) == request


@given(text, st.lists(text, max_size=10))
def test_acknowledge_request_round_trip(subscription: str, ids: list[str]) -> None:
    encoded = p.encode_acknowledge_request(subscription, ids)
    assert p.decode_acknowledge_request(encoded) == p.AcknowledgeRequest(subscription, ids)


@given(text, st.lists(text, max_size=10), int32)
def test_modify_ack_deadline_round_trip(subscription: str, ids: list[str], seconds: int) -> None:
    encoded = p.encode_modify_ack_deadline_request(subscription, ids, seconds)
    assert p.decode_modify_ack_deadline_request(encoded) == p.ModifyAckDeadlineRequest(
        subscription, ids, seconds
    )


def test_known_bytes_match_the_protobuf_wire_format() -> None:
    # Hand-computed from the proto field numbers: PublishRequest{topic=1, messages=2},
    # PubsubMessage{data=1, attributes=2 (map entry key=1 value=2), ordering_key=5}.
    msg = p.encode_pubsub_message(b"hi", {"k": "v"}, "o")
    assert msg == b"\x0a\x02hi" + b"\x12\x06\x0a\x01k\x12\x01v" + b"\x2a\x01o"
    assert p.encode_publish_request("t", [msg]) == b"\x0a\x01t\x12" + bytes([len(msg)]) + msg
    # ModifyAckDeadlineRequest: ack_ids is field 4, the deadline field 3.
    assert (
        p.encode_modify_ack_deadline_request("s", ["a"], 600) == b"\x0a\x01s\x18\xd8\x04\x22\x01a"
    )
    # StreamingPullRequest: modify_deadline_seconds (3) is packed; max_outstanding_messages is 7.
    assert (
        p.encode_streaming_pull_request(
            modify_deadline_seconds=[0, 10],
            modify_deadline_ack_ids=["x", "y"],
            max_outstanding_messages=5,
        )
        == b"\x1a\x02\x00\x0a\x22\x01x\x22\x01y\x38\x05"
    )


def test_unpacked_repeated_int32_is_accepted() -> None:
    encoded = b"\x18\x0a\x18\x00\x22\x01a\x22\x01b"
    decoded = p.decode_streaming_pull_request(encoded)
    assert decoded.modify_deadline_seconds == [10, 0]
    assert decoded.modify_deadline_ack_ids == ["a", "b"]


@given(st.lists(received, min_size=1, max_size=3), st.binary(max_size=30))
def test_unknown_fields_are_skipped(items: list[p.ReceivedMessage], junk: bytes) -> None:
    # Append fields a newer server might send: varint 99, fixed64 98, fixed32 97, bytes 96.
    extra = (
        b"\x98\x06\x01"  # field 99 varint
        + b"\x91\x06"
        + b"\x00" * 8  # field 98 fixed64
        + b"\x8d\x06"
        + b"\x00" * 4  # field 97 fixed32
        + b"\x82\x06"
        + bytes([len(junk)])
        + junk  # field 96 bytes
    )
    encoded = p.encode_streaming_pull_response(items) + extra
    assert p.decode_streaming_pull_response(encoded) == items
    inner = p.encode_pubsub_message(b"d", {"a": "b"}) + extra
    assert p.decode_pubsub_message(inner) == p.PubsubMessage(data=b"d", attributes={"a": "b"})


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a",  # tag without a length
        b"\x0a\x05abc",  # length past the end
        b"\x0a\xff\xff\xff\xff\x0f",  # huge length
        b"\x08" + b"\xff" * 11,  # varint longer than 10 bytes
        b"\x0b",  # group start (wire type 3)
        b"\x0d\x00\x00",  # truncated fixed32
        b"\x12\x02\xff\xfe",  # invalid UTF-8 in ack_id... (message field 1 is ack_id)
        b"\x08\x01",  # known field with the wrong wire type
    ],
)
def test_malformed_input_raises_decode_error(data: bytes) -> None:
    with pytest.raises(p.DecodeError):
        p.decode_streaming_pull_response(b"\x0a" + bytes([len(data)]) + data)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    for decode in (
        p.decode_streaming_pull_response,
        p.decode_publish_response,
        p.decode_pubsub_message,
        p.decode_streaming_pull_request,
    ):
        try:
            decode(data)
        except p.DecodeError:
            pass


def test_mismatched_modify_deadline_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        p.encode_streaming_pull_request(modify_deadline_seconds=[1], modify_deadline_ack_ids=[])


@given(
    name=text,
    topic=st.one_of(st.none(), text),
    attempts=st.integers(min_value=0, max_value=100),
)
def test_subscription_delivery_limit_round_trip(
    name: str, topic: str | None, attempts: int
) -> None:
    encoded = p.encode_subscription_dead_letter_policy(name, topic, attempts)
    expected = None if not topic else attempts or p.DEFAULT_MAX_DELIVERY_ATTEMPTS
    assert p.decode_subscription_delivery_limit(encoded) == expected


def test_subscription_delivery_limit_skips_other_fields() -> None:
    # topic (2), ack_deadline_seconds (5), labels (9): skipped; the policy (13) read.
    policy = p.encode_subscription_dead_letter_policy("s", "projects/p/topics/dlq", 7)
    other = b"\x12\x01t" + b"\x28\x0a" + b"\x4a\x06\x0a\x01k\x12\x01v"
    assert p.decode_subscription_delivery_limit(other + policy) == 7
    assert p.decode_subscription_delivery_limit(other) is None
    with pytest.raises(p.DecodeError):
        p.decode_subscription_delivery_limit(b"\x6a\x05\x0a")  # truncated policy
    with pytest.raises(p.DecodeError):
        p.decode_subscription_delivery_limit(b"\x68\x01")  # field 13 as a varint
