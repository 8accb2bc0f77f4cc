"""How a message is laid out in a stream entry (repid 2.x's layout, plus two fields).

Every entry has the field `payload` (raw bytes) and optionally:

* `headers` - one field holding a JSON object of string to string (one field instead of one per
  header keeps header names out of the field namespace, so a header can never collide with
  `payload`);
* `content_type` - UTF-8 text;
* `reply_to` - the channel a reply should go to (UTF-8 text);
* `delivery_count` - deliveries that happened to earlier copies of this message (a rejected
  message is re-added as a new entry, see `_scripts`), as decimal text;
* `origin_id` - on such a copy, the entry id the message had when first published (it is the
  message's `message_id` for good).

repid 2.x writes and reads the first four fields the same way (its headers JSON has spaces
after the separators; both forms are the same JSON) and ignores the last two.

Dead-letter entries carry the same fields plus `original_stream` and `original_id` (the stream
and entry id it had; 2.x's names) and `dead_reason` (ours: `nack` or why it was malformed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from repid.connections.abc import MessageData

__all__ = [
    "CONTENT_TYPE",
    "DEAD_FROM",
    "DEAD_REASON",
    "DEAD_STREAM",
    "DELIVERY_COUNT",
    "HEADERS",
    "ORIGIN_ID",
    "PAYLOAD",
    "REPLY_TO",
    "MalformedEntryError",
    "decode_entry",
    "encode_fields",
    "pack_add_batch",
    "pack_xadd",
    "parse_packed",
]

PAYLOAD = b"payload"
HEADERS = b"headers"
CONTENT_TYPE = b"content_type"
DELIVERY_COUNT = b"delivery_count"
REPLY_TO = b"reply_to"
DEAD_REASON = b"dead_reason"
DEAD_FROM = b"original_id"
DEAD_STREAM = b"original_stream"
ORIGIN_ID = b"origin_id"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.JSONDecoder().decode  # on str: skips json.loads' bytes sniffing


class MalformedEntryError(ValueError):
    """A stream entry that is not a Repid message (missing or undecodable fields)."""


def encode_fields(
    payload: bytes,
    headers: dict[str, str] | None,
    content_type: str | None,
    reply_to: str | None = None,
) -> dict[bytes, Any]:
    """The XADD field map for one message."""
    fields: dict[bytes, Any] = {PAYLOAD: payload}
    if headers is not None:
        fields[HEADERS] = _dumps(headers)
    if content_type is not None:
        fields[CONTENT_TYPE] = content_type
    if reply_to is not None:
        fields[REPLY_TO] = reply_to
    return fields


def decode_entry(
    fields: dict[bytes, bytes],
) -> tuple[bytes, dict[str, str] | None, str | None, int, str | None]:
    """Return (payload, headers, content_type, earlier deliveries, reply_to).

    Raises MalformedEntryError for an entry that is not a message.
    """
    payload = fields.get(PAYLOAD)
    if payload is None:
        raise MalformedEntryError("the entry has no 'payload' field")
    raw_headers = fields.get(HEADERS)
    headers: dict[str, str] | None = None
    if raw_headers is not None:
        try:
            decoded = _loads(raw_headers.decode())
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise MalformedEntryError(f"the 'headers' field is not JSON: {exc}") from None
        if not isinstance(decoded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in decoded.items()
        ):
            raise MalformedEntryError("the 'headers' field is not a JSON object of strings")
        headers = decoded
    raw_type = fields.get(CONTENT_TYPE)
    content_type: str | None = None
    if raw_type is not None:
        try:
            content_type = raw_type.decode()
        except UnicodeDecodeError:
            raise MalformedEntryError("the 'content_type' field is not UTF-8") from None
    raw_count = fields.get(DELIVERY_COUNT)
    earlier = 0
    if raw_count is not None:
        try:
            earlier = int(raw_count)
        except ValueError:
            raise MalformedEntryError("the 'delivery_count' field is not an integer") from None
    raw_reply_to = fields.get(REPLY_TO)
    reply_to: str | None = None
    if raw_reply_to is not None:
        try:
            reply_to = raw_reply_to.decode()
        except UnicodeDecodeError:
            raise MalformedEntryError("the 'reply_to' field is not UTF-8") from None
    return payload, headers, content_type, earlier, reply_to


def parse_packed(buf: bytes) -> list[tuple[bytes, bytes, dict[bytes, bytes]]]:
    """Parse the output of the FETCH script into (stream, entry id, fields) triples.

    Each token is `<length>:<bytes>`; an entry is stream, id, field count, then the fields.
    Raises ValueError on a truncated or garbled buffer.
    """
    out: list[tuple[bytes, bytes, dict[bytes, bytes]]] = []
    index = buf.index
    pos = 0
    end = len(buf)
    while pos < end:
        colon = index(b":", pos)
        stop = colon + 1 + int(buf[pos:colon])
        key = buf[colon + 1 : stop]
        colon = index(b":", stop)
        pos = colon + 1 + int(buf[stop:colon])
        entry_id = buf[colon + 1 : pos]
        colon = index(b":", pos)
        stop = colon + 1 + int(buf[pos:colon])
        count = int(buf[colon + 1 : stop])
        pos = stop
        fields: dict[bytes, bytes] = {}
        for _ in range(count >> 1):
            colon = index(b":", pos)
            stop = colon + 1 + int(buf[pos:colon])
            name = buf[colon + 1 : stop]
            colon = index(b":", stop)
            pos = colon + 1 + int(buf[stop:colon])
            fields[name] = buf[colon + 1 : pos]
        if pos > end:
            raise ValueError("truncated packed entries")
        out.append((key, entry_id, fields))
    return out


# Pre-encoded RESP tokens for `pack_add_batch` (field names never change).
_TOKEN_PAYLOAD = b"$7\r\npayload\r\n"
_TOKEN_HEADERS = b"$7\r\nheaders\r\n"
_TOKEN_CONTENT_TYPE = b"$12\r\ncontent_type\r\n"
_TOKEN_REPLY_TO = b"$8\r\nreply_to\r\n"
_TOKEN_FIELD_ARGS = {n: b"$1\r\n%d\r\n" % n for n in (2, 4, 6, 8)}


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def pack_command(*args: bytes) -> list[bytes]:
    """Any command as RESP byte pieces (the same shape as `pack_xadd`'s)."""
    return [b"*%d\r\n" % len(args), *(_bulk(arg) for arg in args)]


def pack_add_batch(
    sha: bytes, key: bytes, options: list[bytes], messages: Sequence[MessageData]
) -> list[bytes]:
    """One `EVALSHA <ADD_BATCH> 1 key ...` command for `messages`, as RESP byte pieces.

    Packing here instead of through redis-py's generic packer is what makes the batched publish
    fast: the field names are constant tokens and each message costs a few byte formats.
    """
    pieces: list[bytes] = [b"", _bulk(b"EVALSHA"), _bulk(sha), b"$1\r\n1\r\n", _bulk(key)]
    pieces.append(_bulk(b"%d" % len(options)))
    pieces.extend(_bulk(option) for option in options)
    count = 5 + len(options)
    # Batches usually repeat the same headers (a topic): encode each distinct dict once.
    last_headers: dict[str, str] | None = None
    last_encoded = b""
    for message in messages:
        headers = message.headers
        content_type = message.content_type
        nargs = 2
        tail: list[bytes] = []
        if headers is not None:
            nargs += 2
            if headers != last_headers:
                last_headers = headers
                last_encoded = _bulk(_dumps(headers).encode())
            tail += (_TOKEN_HEADERS, last_encoded)
        if content_type is not None:
            nargs += 2
            tail += (_TOKEN_CONTENT_TYPE, _bulk(content_type.encode()))
        reply_to = message.reply_to
        if reply_to is not None:
            nargs += 2
            tail += (_TOKEN_REPLY_TO, _bulk(reply_to.encode()))
        pieces += (_TOKEN_FIELD_ARGS[nargs], _TOKEN_PAYLOAD, _bulk(message.payload), *tail)
        count += 1 + nargs
    pieces[0] = b"*%d\r\n" % count
    return pieces


_TOKEN_XADD = b"$4\r\nXADD\r\n"
# `pack_xadd`'s caches: the last headers dict packed (a copy, with its encoding; one entry,
# replaced as a whole, so concurrent use only costs a miss) and encoded content types.
_last_headers: tuple[dict[str, str] | None, bytes] = (None, b"")
_CONTENT_TYPES: dict[str, bytes] = {}
_TOKEN_AUTO_ID = b"$1\r\n*\r\n"


def pack_xadd(
    key: bytes,
    options: list[bytes] | None,
    payload: bytes,
    headers: dict[str, str] | None,
    content_type: str | None,
    reply_to: str | None = None,
) -> list[bytes]:
    """One `XADD key [options] id fields...` command as RESP byte pieces.

    `options` are the arguments between the key and the fields, ending with the id; None means
    just the automatic id `*`.
    """
    pieces = [b"", _TOKEN_XADD, _bulk(key)]
    if options is None:
        pieces.append(_TOKEN_AUTO_ID)
        count = 5
    else:
        pieces.extend(_bulk(option) for option in options)
        count = 4 + len(options)
    pieces += (_TOKEN_PAYLOAD, _bulk(payload))
    if headers is not None:
        global _last_headers
        # Senders usually repeat the same headers (a topic): encode an equal dict once.
        last, encoded = _last_headers
        if headers != last:
            encoded = _bulk(_dumps(headers).encode())
            _last_headers = (dict(headers), encoded)
        pieces += (_TOKEN_HEADERS, encoded)
        count += 2
    if content_type is not None:
        token = _CONTENT_TYPES.get(content_type)
        if token is None:
            token = _bulk(content_type.encode())
            if len(_CONTENT_TYPES) < 64:  # bounded: content types may be generated
                _CONTENT_TYPES[content_type] = token
        pieces += (_TOKEN_CONTENT_TYPE, token)
        count += 2
    if reply_to is not None:
        pieces += (_TOKEN_REPLY_TO, _bulk(reply_to.encode()))
        count += 2
    pieces[0] = b"*%d\r\n" % count
    return pieces
