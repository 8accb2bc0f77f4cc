"""`BasicConverter`: JSON decoding and name matching, no validation or coercion."""

from __future__ import annotations

import json
from typing import Any

from repid.connections.abc import BaseMessageT
from repid.dependencies.resolver import FULL_PAYLOAD_KEY, REQUIRED, InputSpec
from repid.errors import PayloadValidationError

__all__ = ["BasicConverter"]

_JSON_TYPES: dict[Any, str] = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


class BasicConverter:
    """Decode the payload as JSON and pass the values whose keys match parameter names.

    Types are not checked: `{"user_id": "123"}` gives the actor the string `"123"` even when the
    parameter says `int`. A missing required field or header, a payload that is not JSON, or a
    JSON payload that is not an object (when fields are wanted) is a `PayloadValidationError`.
    """

    __slots__ = (
        "_annotations",
        "_fields",
        "_full",
        "_headers",
        "_owner",
        "_required",
        "_required_headers",
    )

    def __init__(self, spec: InputSpec) -> None:
        self._owner = spec.owner
        self._fields = tuple(spec.payload_fields)
        self._annotations = {n: f.annotation for n, f in spec.payload_fields.items()}
        self._required = tuple(n for n, f in spec.payload_fields.items() if f.default is REQUIRED)
        self._headers = tuple(spec.header_fields)
        self._required_headers = tuple(
            k for k, f in spec.header_fields.items() if f.default is REQUIRED
        )
        self._full = spec.wants_full_payload

    def convert_inputs(self, message: BaseMessageT) -> tuple[dict[str, Any], dict[str, Any]]:
        payload_values: dict[str, Any] = {}
        if self._fields or self._full:
            raw = message.payload
            try:
                data = json.loads(raw) if raw else {}
            except (ValueError, UnicodeDecodeError) as exc:
                raise PayloadValidationError(
                    f"actor {self._owner!r}: payload is not valid JSON ({exc})"
                ) from exc
            if self._full:
                payload_values[FULL_PAYLOAD_KEY] = data
            if self._fields:
                if not isinstance(data, dict):
                    raise PayloadValidationError(
                        f"actor {self._owner!r}: payload must be a JSON object, "
                        f"got {type(data).__name__}"
                    )
                for name in self._fields:
                    if name in data:
                        payload_values[name] = data[name]
                missing = [n for n in self._required if n not in data]
                if missing:
                    raise PayloadValidationError(
                        f"actor {self._owner!r}: payload is missing required field(s) "
                        + ", ".join(repr(m) for m in missing)
                    )
        header_values: dict[str, Any] = {}
        if self._headers:
            headers = message.headers or {}
            for key in self._headers:
                if key in headers:
                    header_values[key] = headers[key]
            missing = [k for k in self._required_headers if k not in headers]
            if missing:
                raise PayloadValidationError(
                    f"actor {self._owner!r}: message is missing required header(s) "
                    + ", ".join(repr(m) for m in missing)
                )
        return payload_values, header_values

    def payload_schema(self) -> dict[str, Any] | None:
        if not self._fields:
            return {"type": "object"} if self._full else None
        return {
            "type": "object",
            "properties": {name: _schema_for(self._annotations[name]) for name in self._fields},
            "required": list(self._required),
        }

    def headers_schema(self) -> dict[str, Any] | None:
        if not self._headers:
            return None
        return {
            "type": "object",
            "properties": {key: {"type": "string"} for key in self._headers},
            "required": list(self._required_headers),
        }


def _schema_for(annotation: Any) -> dict[str, Any]:
    json_type = _JSON_TYPES.get(annotation)
    if json_type is None:
        json_type = _JSON_TYPES.get(getattr(annotation, "__origin__", None))
    return {"type": json_type} if json_type is not None else {}
