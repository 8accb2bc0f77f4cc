"""Argument and result buckets, their storage format and the bucket broker interface.

A bucket is stored as one JSON document:

    {"data": <the arguments or the result>, "id": "...", "timestamp": 1700000000.0,
     "ttl": 86400.0 | null,
     # result buckets only:
     "success": true, "exception": null | "ValueError: ...",
     "started_when": 1700000000.0, "finished_when": 1700000001.0,
     "cancelled": true}  # only when the job was cancelled

A result bucket is a superset of an arguments bucket: reading a result by its id from an
arguments bucket broker gives its `data` - this is how jobs chain (`Job(..., args_id=<id of a
previous job's result>)`). Times are Unix timestamps in seconds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "AnyBucketT",
    "ArgsBucket",
    "BucketBrokerT",
    "ResultBucket",
    "decode_bucket",
    "encode_args_bucket",
    "encode_result_bucket",
    "ttl_seconds",
]


@dataclass(frozen=True, slots=True)
class ArgsBucket:
    """A job's arguments stored outside the message."""

    id_: str
    data: Any
    timestamp: float
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class ResultBucket:
    """What a job's run produced.

    `data` is the actor's return value (JSON-decoded), `success` whether it returned without
    raising, `exception` the error text (`"ValueError: boom"`) when it did not, and
    `started_when` / `finished_when` the Unix times of the run. `cancelled` is true when the
    job was cancelled (`job.cancel()`): dropped before it ran, or stopped while it ran
    (`success` false, `exception` starting with `JobCancelledError`).
    """

    id_: str
    data: Any
    success: bool
    exception: str | None
    started_when: float
    finished_when: float
    timestamp: float
    ttl: float | None = None
    cancelled: bool = False


AnyBucketT = ArgsBucket | ResultBucket


def ttl_seconds(ttl: timedelta | float | None) -> float | None:
    """A TTL as seconds (None: no expiry)."""
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds <= 0:
        raise ValueError(f"a TTL must be positive or None, got {ttl!r}")
    return seconds


def _join(data_json: bytes, meta: dict[str, Any]) -> bytes:
    # The data is already JSON: splice it in rather than decoding and encoding it again.
    return b'{"data":' + data_json + b"," + json.dumps(meta, separators=(",", ":"))[1:].encode()


def encode_args_bucket(id_: str, data_json: bytes, ttl: float | None) -> bytes:
    """The stored form of an arguments bucket whose data is already JSON-encoded."""
    return _join(data_json or b"null", {"id": id_, "timestamp": time.time(), "ttl": ttl})


def encode_result_bucket(
    id_: str,
    data_json: bytes,
    *,
    success: bool,
    exception: str | None,
    started_when: float,
    finished_when: float,
    ttl: float | None,
    cancelled: bool = False,
) -> bytes:
    """The stored form of a result bucket whose data is already JSON-encoded."""
    meta: dict[str, Any] = {
        "id": id_,
        "timestamp": finished_when,
        "ttl": ttl,
        "success": success,
        "exception": exception,
        "started_when": started_when,
        "finished_when": finished_when,
    }
    if cancelled:
        meta["cancelled"] = True
    return _join(data_json or b"null", meta)


def decode_bucket(raw: bytes | str) -> AnyBucketT:
    """Parse a stored bucket: a `ResultBucket` if it has result fields, else an `ArgsBucket`."""
    doc = json.loads(raw)
    if not isinstance(doc, dict) or "id" not in doc:
        raise ValueError("not a Repid bucket (expected a JSON object with 'id' and 'data')")
    if "success" in doc:
        return ResultBucket(
            id_=doc["id"],
            data=doc.get("data"),
            success=bool(doc["success"]),
            exception=doc.get("exception"),
            started_when=float(doc.get("started_when") or 0.0),
            finished_when=float(doc.get("finished_when") or 0.0),
            timestamp=float(doc.get("timestamp") or 0.0),
            ttl=doc.get("ttl"),
            cancelled=bool(doc.get("cancelled", False)),
        )
    return ArgsBucket(
        id_=doc["id"],
        data=doc.get("data"),
        timestamp=float(doc.get("timestamp") or 0.0),
        ttl=doc.get("ttl"),
    )


@runtime_checkable
class BucketBrokerT(Protocol):
    """Stores buckets by id. `use_result_bucket` marks a broker meant for results.

    `store_raw` keeps an encoded bucket for `ttl` seconds (None: forever); `get` returns the
    decoded bucket or None when it is missing or expired; `get_raw` the stored bytes.
    """

    use_result_bucket: bool

    @property
    def is_connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def store_raw(self, id_: str, raw: bytes, ttl: float | None) -> None: ...

    async def get_raw(self, id_: str) -> bytes | None: ...

    async def get(self, id_: str) -> AnyBucketT | None: ...

    async def delete(self, id_: str) -> None: ...
