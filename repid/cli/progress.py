"""The worker's periodic progress line (INFO) while the command runs it.

    worker.progress: processed 51234 (+4980, 498.0/s), in flight 12, failed +3 (17 in total)

A line is written every `interval` seconds (`REPID_PROGRESS_INTERVAL`, default 10) when
something happened since the last one, and at least once a minute while idle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from repid.worker.runner import Runner

__all__ = ["progress_interval", "report_progress"]

logger = logging.getLogger("repid.worker")

_IDLE_EVERY = 60.0


def progress_interval() -> float:
    """Seconds between progress lines (`REPID_PROGRESS_INTERVAL`, default 10)."""
    try:
        value = float(os.environ.get("REPID_PROGRESS_INTERVAL", "10"))
    except ValueError:
        return 10.0
    return value if value > 0 else 10.0


async def report_progress(runner: Runner, interval: float) -> None:
    """Log progress until cancelled."""
    info = runner.info
    last_processed = last_failed = 0
    last_time = last_line = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        processed, failed, in_flight = info.processed, info.failed, len(runner.in_flight)
        delta = processed - last_processed
        new_failures = failed - last_failed
        if delta or new_failures or in_flight or now - last_line >= _IDLE_EVERY:
            rate = delta / (now - last_time) if now > last_time else 0.0
            logger.info(
                "worker.progress: processed %d (+%d, %.1f/s), in flight %d, failed +%d "
                "(%d in total)",
                processed,
                delta,
                rate,
                in_flight,
                new_failures,
                failed,
                extra={
                    "processed": processed,
                    "processed_delta": delta,
                    "rate": round(rate, 1),
                    "in_flight": in_flight,
                    "failed": failed,
                    "failed_delta": new_failures,
                },
            )
            last_line = now
        last_processed, last_failed, last_time = processed, failed, now
