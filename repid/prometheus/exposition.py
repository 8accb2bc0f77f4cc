"""Rendering the metrics for a scrape, in one process or aggregated across worker processes.

Multiprocess mode (what `repid run --workers N` uses): when `PROMETHEUS_MULTIPROC_DIR` names a
directory, prometheus_client keeps every process's values in files there, and a scrape -
answered by any process, usually the supervisor - merges them with its `MultiProcessCollector`.
The variable must be set before the worker processes start (the supervisor does it).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry
from prometheus_client import exposition as _exposition
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["MULTIPROC_ENV", "exposition", "multiprocess_dir"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The multiprocess directory, when multiprocess mode is on."""
    return os.environ.get(MULTIPROC_ENV) or None


def exposition(
    registry: CollectorRegistry | None,
    accept: str | None = None,
    *,
    multiprocess_path: str | None = None,
) -> tuple[bytes, str]:
    """(body, content type) for a scrape of `registry`, or of every process's values in
    multiprocess mode (`multiprocess_path`, else `PROMETHEUS_MULTIPROC_DIR`). `accept` is the
    scraper's Accept header (OpenMetrics when it asks for it)."""
    path = multiprocess_path or multiprocess_dir()
    if path is not None or registry is None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    encoder, content_type = _exposition.choose_encoder(accept or "")
    return encoder(registry), content_type
