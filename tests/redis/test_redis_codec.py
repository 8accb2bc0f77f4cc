"""Stream entry layout and XADD option validation (no broker needed)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repid.connections.backoff import Backoff
from repid.connections.redis._codec import (
    MalformedEntryError,
    decode_entry,
    encode_fields,
    pack_add_batch,
    pack_xadd,
    parse_packed,
)
from repid.connections.redis._params import XAddOptions, parse_xadd_options
from repid.connections.redis.keys import KeyLayout, hash_tag, same_slot
from repid.connections.redis.subscriber import next_entry_id
from repid.data import MessageData


def as_redis_returns(fields: dict[bytes, object]) -> dict[bytes, bytes]:
    """What redis-py gives back for the fields we XADD: every value as bytes."""
    out = {}
    for key, value in fields.items():
        out[key] = value if isinstance(value, bytes) else str(value).encode()
    return out


@given(
    payload=st.binary(),
    headers=st.none() | st.dictionaries(st.text(), st.text()),
    content_type=st.none() | st.text(),
    reply_to=st.none() | st.text(),
)
def test_round_trip(
    payload: bytes, headers: dict[str, str] | None, content_type: str | None, reply_to: str | None
):
    fields = encode_fields(payload, headers, content_type, reply_to)
    decoded = decode_entry(as_redis_returns(fields))
    assert decoded == (payload, headers, content_type, 0, reply_to)


def test_decodes_what_repid_2_writes():
    # An entry exactly as repid 2.1.4 XADDs it (observed with XRANGE): its headers JSON has
    # spaces after the separators, and the reply channel is a field of its own.
    fields = {
        b"payload": b'{"a":1}',
        b"headers": b'{"topic": "t3", "x-custom": "v"}',
        b"content_type": b"application/json",
        b"reply_to": b"replies",
    }
    assert decode_entry(fields) == (
        b'{"a":1}',
        {"topic": "t3", "x-custom": "v"},
        "application/json",
        0,
        "replies",
    )


@given(count=st.integers(min_value=0, max_value=10**9))
def test_delivery_count_field(count: int):
    fields = as_redis_returns(encode_fields(b"x", None, None))
    fields[b"delivery_count"] = str(count).encode()
    assert decode_entry(fields)[3] == count


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({b"headers": b"{}"}, "payload"),
        ({b"payload": b"x", b"headers": b"not json"}, "not JSON"),
        ({b"payload": b"x", b"headers": b"[1]"}, "object of strings"),
        ({b"payload": b"x", b"headers": json.dumps({"a": 1}).encode()}, "object of strings"),
        ({b"payload": b"x", b"headers": b"\xff"}, "not JSON"),
        ({b"payload": b"x", b"content_type": b"\xff"}, "UTF-8"),
        ({b"payload": b"x", b"delivery_count": b"many"}, "integer"),
        ({b"payload": b"x", b"reply_to": b"\xff"}, "UTF-8"),
    ],
)
def test_malformed_entries(fields: dict[bytes, bytes], why: str):
    with pytest.raises(MalformedEntryError, match=why):
        decode_entry(fields)


def test_xadd_defaults_and_args():
    assert parse_xadd_options(None) == XAddOptions()
    assert parse_xadd_options({}) == XAddOptions()
    options = parse_xadd_options({"maxlen": 10, "nomkstream": True, "stream_id": "5-1"})
    assert options == XAddOptions(maxlen=10, approximate=True, nomkstream=True, stream_id="5-1")
    assert options.command_args() == ["NOMKSTREAM", "MAXLEN", "~", 10, "5-1"]
    exact = parse_xadd_options({"maxlen": 3, "approximate": False})
    assert exact.command_args() == ["MAXLEN", "=", 3, "*"]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"maxlenn": 1}, "unknown"),
        ({"maxlen": -1}, "maxlen"),
        ({"maxlen": True}, "maxlen"),
        ({"maxlen": "10"}, "maxlen"),
        ({"approximate": 1}, "approximate"),
        ({"nomkstream": "yes"}, "nomkstream"),
        ({"stream_id": ""}, "stream_id"),
        ({"stream_id": 5}, "stream_id"),
    ],
)
def test_xadd_bad_parameters(params: dict[str, object], match: str):
    with pytest.raises(ValueError, match=match):
        parse_xadd_options(params)


def pack_like_fetch(entries: list[tuple[bytes, bytes, list[bytes]]]) -> bytes:
    """What the FETCH Lua script returns for `entries` (stream, id, flat field list)."""

    def token(value: bytes) -> bytes:
        return b"%d:%b" % (len(value), value)

    out = b""
    for key, entry_id, flat in entries:
        out += token(key) + token(entry_id) + token(b"%d" % len(flat))
        out += b"".join(token(item) for item in flat)
    return out


@given(
    st.lists(
        st.tuples(
            st.binary(min_size=1, max_size=20),
            st.binary(min_size=3, max_size=20),
            st.dictionaries(st.binary(max_size=10), st.binary(max_size=40), max_size=4),
        ),
        max_size=10,
    )
)
def test_parse_packed_round_trip(entries):
    flat_entries = [
        (key, entry_id, [x for item in fields.items() for x in item])
        for key, entry_id, fields in entries
    ]
    assert parse_packed(pack_like_fetch(flat_entries)) == entries


@pytest.mark.parametrize("garbage", [b"5:ab", b"x:1", b"1:a1:b", b"1:a1:b1:2", b"1:a1:b1:21:k"])
def test_parse_packed_rejects_garbage(garbage: bytes):
    with pytest.raises(ValueError):
        parse_packed(garbage)


def reference_pack(*args: bytes) -> bytes:
    """RESP array of bulk strings, written the plain way."""
    out = b"*%d\r\n" % len(args)
    for arg in args:
        out += b"$%d\r\n" % len(arg) + arg + b"\r\n"
    return out


def field_args(
    payload: bytes,
    headers: dict[str, str] | None,
    content_type: str | None,
    reply_to: str | None = None,
):
    args = [b"payload", payload]
    if headers is not None:
        args += [
            b"headers",
            json.dumps(headers, ensure_ascii=False, separators=(",", ":")).encode(),
        ]
    if content_type is not None:
        args += [b"content_type", content_type.encode()]
    if reply_to is not None:
        args += [b"reply_to", reply_to.encode()]
    return args


messages_strategy = st.builds(
    MessageData,
    payload=st.binary(max_size=50),
    headers=st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    content_type=st.none() | st.text(max_size=10),
    reply_to=st.none() | st.text(max_size=10),
)
options_strategy = st.none() | st.lists(st.binary(min_size=1, max_size=6), max_size=4)


@given(key=st.binary(min_size=1, max_size=20), options=options_strategy, message=messages_strategy)
def test_pack_xadd_matches_reference(key: bytes, options, message: MessageData):
    packed = b"".join(
        pack_xadd(
            key, options, message.payload, message.headers, message.content_type, message.reply_to
        )
    )
    head = [b"*"] if options is None else options
    fields = field_args(message.payload, message.headers, message.content_type, message.reply_to)
    expected = reference_pack(b"XADD", key, *head, *fields)
    assert packed == expected


@given(
    key=st.binary(min_size=1, max_size=20),
    options=st.lists(st.binary(min_size=1, max_size=6), max_size=4),
    messages=st.lists(messages_strategy, max_size=5),
)
def test_pack_add_batch_matches_reference(key: bytes, options, messages):
    packed = b"".join(pack_add_batch(b"f" * 40, key, options, messages))
    args = [b"EVALSHA", b"f" * 40, b"1", key, b"%d" % len(options), *options]
    for message in messages:
        fields = field_args(
            message.payload, message.headers, message.content_type, message.reply_to
        )
        args += [b"%d" % len(fields), *fields]
    assert packed == reference_pack(*args)


@given(ms=st.integers(min_value=0, max_value=2**48), seq=st.integers(min_value=0, max_value=2**40))
def test_next_entry_id_is_the_successor(ms: int, seq: int):
    following = next_entry_id(b"%d-%d" % (ms, seq))
    assert following == b"%d-%d" % (ms, seq + 1)


@given(failures=st.integers(min_value=1, max_value=10_000))
def test_backoff_is_bounded(failures: int):
    backoff = Backoff(0.05, 5.0)
    delays = [backoff.next() for _ in range(min(failures, 64))]
    assert all(0 <= delay <= 5.0 for delay in delays)


def test_key_layout_defaults_are_repid_2s():
    layout = KeyLayout()
    assert layout.stream("orders") == "repid:orders"
    assert layout.group("orders") == "repid:orders:group"
    assert layout.dead_letters("orders") == "repid:orders:dlq"
    assert layout.delayed("orders") == "{repid:orders}:delayed"
    assert layout.delayed_entry_prefix("orders") == "{repid:orders}:delayed:"
    assert KeyLayout(dead_letter_stream=None).dead_letters("orders") is None


@given(channel=st.text(max_size=30))
def test_every_key_of_a_channel_is_in_its_streams_slot(channel: str):
    layout = KeyLayout()
    stream = layout.stream(channel)
    stream_slot = hash_tag(stream) or stream
    for key in (layout.delayed(channel), layout.delayed_entry_prefix(channel) + "abc"):
        if "}" in stream and hash_tag(stream) is None:
            continue  # a stray `}` without a tag: documented as not Cluster-safe
        assert (hash_tag(key) or key) == stream_slot


def test_hash_tag():
    assert hash_tag("repid:orders") is None
    assert hash_tag("{repid:orders}:delayed") == "repid:orders"
    assert hash_tag("a{}b{c}") is None  # an empty first tag: the whole key is hashed
    assert hash_tag("a{b") is None
    assert same_slot("a{x}b", ":s") == "a{x}b:s"
    assert same_slot("a{b", ":s") == "{a{b}:s"
