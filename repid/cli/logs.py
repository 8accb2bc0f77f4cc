"""Logging for the command: readable text lines, or one JSON object per line.

Repid's log records start with a dotted event name (`worker.started: ...`) and carry
structured fields in `extra`. The command configures the root logger (so the app's own
records show too); used as a library, Repid configures nothing and stays silent.

Text: `2026-01-31 12:00:00.123 INFO  [1234] repid.worker: worker.started: consuming ...`

JSON (`--log-format json`), stable keys: `ts` (UTC, ISO 8601 with milliseconds), `level`
(lower case), `logger`, `event` (the dotted name, or null for records without one),
`message` (the full text), `pid`, then the record's `extra` fields (`message_id`, `actor`,
`channel`, `outcome`, `duration_ms`, ...), and `exc_info` (the formatted traceback) when there
is one. Values that are not JSON types are written with `str()`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, Literal

__all__ = ["JsonFormatter", "TextFormatter", "event_name", "setup_logging"]

LogFormat = Literal["text", "json"]

_EVENT = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?::|$)")
_RESERVED = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime", "taskName"}
)
_CHATTY = ("asyncio", "redis", "grpc", "google", "watchfiles", "urllib3")


def event_name(message: str) -> str | None:
    """The dotted event name a Repid message starts with, if any."""
    match = _EVENT.match(message)
    return match.group(1) if match else None


def _timestamp(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; see the module docstring for the keys."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        data: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event_name(message),
            "message": message,
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in data and not key.startswith("_"):
                data[key] = _jsonable(value)
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc_info"] = record.exc_text
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`date time.ms LEVEL [pid] logger: message`, tracebacks below."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03d %(levelname)-7s [%(process)d] %(name)s: %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )


def setup_logging(level: str = "info", log_format: LogFormat = "text") -> None:
    """Send every record at `level` or above to stderr in `log_format`.

    Replaces handlers already on the root logger (the command owns the process's logging).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Client libraries' own debug output would drown Repid's per-message lines.
    quiet = max(logging.INFO, root.level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(quiet)
    logging.captureWarnings(True)
