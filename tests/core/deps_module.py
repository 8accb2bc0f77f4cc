"""Module-level functions for process-pool tests (they must pickle by reference)."""

from __future__ import annotations

import os


def cpu_dependency() -> int:
    return os.getpid()


def process_actor(number: int) -> tuple[int, int]:
    return number * 2, os.getpid()
