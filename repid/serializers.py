"""Serializers turn Python objects into payload bytes for `send_message_json`."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["SerializerT", "default_serializer"]

SerializerT = Callable[[Any], bytes]
"""A serializer takes the payload object and returns the bytes to publish."""


def _to_jsonable(obj: Any) -> Any:
    # Called by `json.dumps` only for objects it cannot encode itself, so plain dicts and lists
    # pay nothing. Pydantic models are duck-typed to keep pydantic an optional dependency.
    model_dump = getattr(obj, "model_dump", None)
    if model_dump is not None and callable(model_dump):
        return model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, datetime.datetime | datetime.date | datetime.time):
        return obj.isoformat()
    if isinstance(obj, datetime.timedelta):
        return obj.total_seconds()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encoder = json.JSONEncoder(
    default=_to_jsonable, ensure_ascii=False, separators=(",", ":"), check_circular=True
)


def default_serializer(data: Any) -> bytes:
    """Encode `data` as compact UTF-8 JSON.

    Handles dicts, lists and scalars natively, and Pydantic models (also nested), dataclasses,
    datetimes, UUIDs, decimals, enums and sets through `model_dump(mode="json")` and friends.
    """
    return _encoder.encode(data).encode()
