"""How a message is laid out in a stream entry.

Every entry has the field `payload` (raw bytes) and optionally:

* `headers` - one field holding a JSON object of string to string (one field instead of one per
  header keeps header names out of the field namespace, so a header can never collide with
  `payload`);
* `content_type` - UTF-8 text;
* `delivery_count` - deliveries that happened to earlier copies of this message (a rejected
  message is re-added as a new entry, see `_scripts`), as decimal text.

Dead-letter entries (`{channel}:dead`) carry the same fields plus `dead_reason` and `dead_from`
(the entry id it had in its channel).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "CONTENT_TYPE",
    "DEAD_FROM",
    "DEAD_REASON",
    "DELIVERY_COUNT",
    "HEADERS",
    "PAYLOAD",
    "MalformedEntryError",
    "decode_entry",
    "encode_fields",
]

PAYLOAD = b"payload"
HEADERS = b"headers"
CONTENT_TYPE = b"content_type"
DELIVERY_COUNT = b"delivery_count"
DEAD_REASON = b"dead_reason"
DEAD_FROM = b"dead_from"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads


class MalformedEntryError(ValueError):
    """A stream entry that is not a Repid message (missing or undecodable fields)."""


def encode_fields(
    payload: bytes, headers: dict[str, str] | None, content_type: str | None
) -> dict[bytes, Any]:
    """The XADD field map for one message."""
    fields: dict[bytes, Any] = {PAYLOAD: payload}
    if headers is not None:
        fields[HEADERS] = _dumps(headers)
    if content_type is not None:
        fields[CONTENT_TYPE] = content_type
    return fields


def decode_entry(
    fields: dict[bytes, bytes],
) -> tuple[bytes, dict[str, str] | None, str | None, int]:
    """Return (payload, headers, content_type, earlier deliveries) or raise MalformedEntryError."""
    payload = fields.get(PAYLOAD)
    if payload is None:
        raise MalformedEntryError("the entry has no 'payload' field")
    raw_headers = fields.get(HEADERS)
    headers: dict[str, str] | None = None
    if raw_headers is not None:
        try:
            decoded = _loads(raw_headers)
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
    return payload, headers, content_type, earlier
