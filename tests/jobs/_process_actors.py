"""A sync actor for `run_in_process=True` (process pools need an importable function)."""

from __future__ import annotations

import os


def pid_and_square(x: int) -> list[int]:
    return [os.getpid(), x * x]
