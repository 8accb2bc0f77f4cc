"""Run a seed's whole program verbatim, as `python program.py` would."""

from __future__ import annotations

import textwrap
from typing import Any


def run_program(source: str) -> dict[str, Any]:
    """Exec `source` as `__main__` (so its `asyncio.run(main())` runs); return its globals."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(source), "<seed program>", "exec"), namespace)
    return namespace


def load_program(source: str) -> dict[str, Any]:
    """Exec `source` as an imported module (its `if __name__ == "__main__"` part is skipped)."""
    namespace: dict[str, Any] = {"__name__": "seed_program"}
    exec(compile(textwrap.dedent(source), "<seed program>", "exec"), namespace)
    return namespace
