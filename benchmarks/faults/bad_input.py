"""Bad input, injected at the broker with the broker's own tools.

Every injector takes a list of `BadMessage` kinds and puts one message of each on the
channel: Redis with `redis-cli XADD` (fields named as the package under test names them,
learned from an entry it wrote), RabbitMQ with qpid-proton (raw AMQP sections, so bodies no
Repid producer would send), Pub/Sub with a raw gRPC Publish (no attributes at all, or bytes
that are not UTF-8).

`expect` says what should become of each kind: "dead" (ends in the dead-letter store),
"processed" (a valid message after all), "refused" (the broker itself refuses it).
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .pubsub import PubsubBroker
    from .redis import RedisBroker

__all__ = [
    "AMQP_KINDS",
    "MEMORY_KINDS",
    "PUBSUB_KINDS",
    "REDIS_KINDS",
    "BadMessage",
    "inject_amqp",
    "inject_pubsub",
    "inject_redis",
    "redis_field_names",
]

Expect = Literal["dead", "processed", "refused"]


@dataclass(frozen=True)
class BadMessage:
    kind: str
    expect: Expect
    description: str


TOPIC = "work"
GOOD_JSON = b'{"seq": -1, "attempt": 0, "ms": 0}'

REDIS_KINDS = [
    BadMessage("missing-payload", "dead", "an entry with headers but no payload field"),
    BadMessage("garbage-fields", "dead", "an entry with unrelated field names"),
    BadMessage("headers-not-json", "dead", "the headers field is not JSON"),
    BadMessage("headers-not-object", "dead", "the headers field is a JSON list"),
    BadMessage("headers-invalid-utf8", "dead", "the headers field has bytes that are not UTF-8"),
    BadMessage("payload-not-json", "dead", "the payload is not JSON (and not UTF-8)"),
    BadMessage("payload-wrong-types", "dead", "the payload fails the actor's validation"),
    BadMessage("no-topic", "dead", "no headers at all: no actor takes it (poison after retries)"),
    BadMessage("unknown-topic", "dead", "a topic no actor has (poison after retries)"),
]

AMQP_KINDS = [
    BadMessage("body-sequence", "dead", "an amqp-sequence body section"),
    BadMessage("body-value-map", "dead", "an amqp-value body holding a map"),
    BadMessage("body-value-null", "dead", "an amqp-value body holding null"),
    BadMessage("two-data-sections", "processed", "two data sections (concatenated, per the spec)"),
    BadMessage("no-body", "dead", "no body section at all"),
    BadMessage("header-not-string", "processed", "an application property that is an int"),
    BadMessage("payload-not-json", "dead", "a data body that is not JSON"),
    BadMessage("payload-wrong-types", "dead", "a JSON body that fails the actor's validation"),
    BadMessage("no-topic", "dead", "no application properties: no actor takes it"),
    BadMessage("unknown-topic", "dead", "a topic no actor has"),
    BadMessage("big-10mb", "processed", "a valid 10 MB message"),
]

PUBSUB_KINDS = [
    BadMessage("no-attributes", "dead", "JSON data and no attributes: no topic"),
    BadMessage("no-attributes-not-json", "dead", "data that is not JSON, no attributes"),
    BadMessage("payload-not-json", "dead", "topic=work, data not JSON"),
    BadMessage("payload-wrong-types", "dead", "topic=work, JSON failing validation"),
    BadMessage("unknown-topic", "dead", "a topic no actor has"),
    BadMessage("attribute-invalid-utf8", "refused", "an attribute value that is not UTF-8"),
]

MEMORY_KINDS = [
    BadMessage("payload-not-json", "dead", "payload not JSON"),
    BadMessage("payload-wrong-types", "dead", "payload fails validation"),
    BadMessage("no-topic", "dead", "no headers"),
    BadMessage("unknown-topic", "dead", "a topic no actor has"),
    BadMessage("empty", "dead", "an empty payload"),
]


# -- Redis ---------------------------------------------------------------------------------------


def redis_field_names(broker: RedisBroker, key: str) -> tuple[str, str]:
    """(payload field, headers field) of the entries the package under test writes, read from
    the stream's first entry (a message it published)."""
    # Raw output: the entry id, then field and value on alternate lines (ours have no newlines).
    lines = broker.cli("XRANGE", key, "-", "+", "COUNT", "1").splitlines()
    payload_field = headers_field = ""
    for name, value in zip(lines[1::2], lines[2::2], strict=False):
        if "seq" in value and not payload_field:
            payload_field = name
        elif "topic" in value and not headers_field:
            headers_field = name
    if not payload_field:
        raise RuntimeError(f"cannot tell the payload field of {key!r} from {lines!r}")
    return payload_field, headers_field or "headers"


def inject_redis(broker: RedisBroker, key: str, kinds: list[BadMessage]) -> None:
    payload, headers = redis_field_names(broker, key)
    topic = json.dumps({"topic": TOPIC}).encode()
    fields: dict[str, list[bytes]] = {
        "missing-payload": [headers.encode(), topic],
        "garbage-fields": [b"foo", b"bar", b"baz", b"\xffqux"],
        "headers-not-json": [payload.encode(), GOOD_JSON, headers.encode(), b"not json {"],
        "headers-not-object": [payload.encode(), GOOD_JSON, headers.encode(), b"[1, 2]"],
        "headers-invalid-utf8": [
            payload.encode(), GOOD_JSON, headers.encode(), b'{"topic": "work", "x": "\xff\xfe"}'
        ],
        "payload-not-json": [payload.encode(), b"\xff not json", headers.encode(), topic],
        "payload-wrong-types": [
            payload.encode(), b'{"seq": "abc", "attempt": []}', headers.encode(), topic
        ],
        "no-topic": [payload.encode(), GOOD_JSON],
        "unknown-topic": [payload.encode(), GOOD_JSON, headers.encode(), b'{"topic": "nobody"}'],
    }  # fmt: skip
    for bad in kinds:
        broker.cli("XADD", key, "*", *fields[bad.kind])


# -- AMQP 1.0 (qpid-proton, raw sections) ----------------------------------------------------------


def _described(code: int, value: bytes) -> bytes:
    return b"\x00\x53" + bytes([code]) + value


def _binary(data: bytes) -> bytes:
    return b"\xb0" + struct.pack(">I", len(data)) + data


def _string(text: str) -> bytes:
    raw = text.encode()
    return b"\xb1" + struct.pack(">I", len(raw)) + raw


def _map(items: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(k + v for k, v in items)
    return b"\xd1" + struct.pack(">II", len(body) + 4, 2 * len(items)) + body


def _list(items: list[bytes]) -> bytes:
    body = b"".join(items)
    return b"\xd0" + struct.pack(">II", len(body) + 4, len(items)) + body


def _properties(message_id: str) -> bytes:
    # properties: message-id (string), user-id (null), to (null), subject, reply-to, ...
    return _described(0x73, _list([_string(message_id)]))


def _app_properties(values: dict[str, bytes]) -> bytes:
    return _described(0x74, _map([(_string(k), v) for k, v in values.items()]))


def amqp_message(kind: str, padding: int = 10 * 1024 * 1024) -> bytes:
    """The encoded AMQP message (sections) for one bad kind."""
    topic = {"topic": _string(TOPIC)}
    data = _described(0x75, _binary(GOOD_JSON))
    sections: dict[str, list[bytes]] = {
        "body-sequence": [_app_properties(topic), _described(0x76, _list([b"\x54\x01"]))],
        "body-value-map": [
            _app_properties(topic),
            _described(0x77, _map([(_string("seq"), b"\x54\x01")])),
        ],
        "body-value-null": [_app_properties(topic), _described(0x77, b"\x40")],
        "two-data-sections": [
            _app_properties(topic),
            _described(0x75, _binary(b'{"seq": -2, ')),
            _described(0x75, _binary(b'"attempt": 0, "ms": 0}')),
        ],
        "no-body": [_app_properties(topic)],
        "header-not-string": [
            _app_properties({"topic": _string(TOPIC), "n": b"\x71" + struct.pack(">i", 5)}),
            _described(0x75, _binary(b'{"seq": -3, "attempt": 0, "ms": 0}')),
        ],
        "payload-not-json": [_app_properties(topic), _described(0x75, _binary(b"\xff not json"))],
        "payload-wrong-types": [
            _app_properties(topic),
            _described(0x75, _binary(b'{"seq": "abc", "attempt": []}')),
        ],
        "no-topic": [data],
        "unknown-topic": [_app_properties({"topic": _string("nobody")}), data],
        "big-10mb": [
            _app_properties(topic),
            _described(
                0x75,
                _binary(
                    json.dumps({"seq": -4, "attempt": 0, "ms": 0, "pad": "x" * padding}).encode()
                ),
            ),
        ],
    }
    return _properties(f"bad-{kind}-{uuid.uuid4().hex[:8]}") + b"".join(sections[kind])


def inject_amqp(url: str, queue: str, kinds: list[BadMessage]) -> dict[str, str]:
    """Send each kind to `/queues/{queue}` with qpid-proton, raw, and wait for the broker's
    outcome; returns {kind: what the broker said} for the ones it did not accept (a new
    connection is opened after a refusal, since the broker may end the link or session)."""
    from proton import Delivery
    from proton.utils import BlockingConnection

    refused: dict[str, str] = {}
    connection = None
    sender = None
    try:
        for bad in kinds:
            if connection is None:
                connection = BlockingConnection(url, timeout=20)
                sender = connection.create_sender(f"/queues/{queue}")
            assert sender is not None
            link = sender.link
            delivery = link.delivery(f"bad-{bad.kind}-{uuid.uuid4().hex[:6]}".encode())
            link.stream(amqp_message(bad.kind))
            link.advance()
            try:
                connection.wait(
                    lambda d=delivery: d.remote_state != 0 or d.settled,  # type: ignore[misc]
                    timeout=5,  # RabbitMQ answers in milliseconds, or never
                    msg=f"outcome of {bad.kind}",
                )
            except Exception as exc:
                # qpid-proton names the connection by its URL, password and all.
                refused[bad.kind] = re.sub(r"//[^/@\s]*@", "//", f"no outcome: {exc}")
            else:
                if delivery.remote_state != Delivery.ACCEPTED:
                    condition = delivery.remote.condition
                    refused[bad.kind] = f"state {delivery.remote_state}: {condition}"
                delivery.settle()
            if bad.kind in refused:
                with contextlib.suppress(Exception):
                    connection.close()
                connection = None
    finally:
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()
    return refused


# -- Pub/Sub (raw gRPC) ---------------------------------------------------------------------------


def inject_pubsub(broker: PubsubBroker, topic: str, kinds: list[BadMessage]) -> dict[str, str]:
    """Publish each kind; returns {kind: the emulator's refusal} for the ones it refused."""
    work = [(b"topic", TOPIC.encode())]
    messages: dict[str, tuple[bytes, list[tuple[bytes, bytes]]]] = {
        "no-attributes": (GOOD_JSON, []),
        "no-attributes-not-json": (b"\xff not json", []),
        "payload-not-json": (b"\xff not json", work),
        "payload-wrong-types": (b'{"seq": "abc", "attempt": []}', work),
        "unknown-topic": (GOOD_JSON, [(b"topic", b"nobody")]),
        "attribute-invalid-utf8": (GOOD_JSON, [*work, (b"x", b"\xff\xfe")]),
    }
    refused = {}
    for bad in kinds:
        data, attributes = messages[bad.kind]
        error = broker.publish_raw(topic, data, attributes)
        if error:
            refused[bad.kind] = error
    return refused
