"""`repid run --reload`: watch the project's Python files and restart the workers on a change.

Uses watchfiles (the `reload` extra). Watches the current directory, recursively, for `.py`
and `.pyi` files (watchfiles' PythonFilter skips `.git`, virtual environments, caches).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from repid.errors import RepidError

__all__ = ["require_watchfiles", "watch_for_changes"]

logger = logging.getLogger("repid.supervisor")


def require_watchfiles() -> None:
    """Fail early, with the install command, when watchfiles is missing."""
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise RepidError("--reload needs watchfiles: pip install 'repid[reload]'") from None


async def watch_for_changes(on_change: Callable[[list[str]], Awaitable[None]]) -> None:
    """Call `on_change(changed paths)` after each batch of changes, until cancelled."""
    from watchfiles import PythonFilter, awatch

    root = Path(os.getcwd())
    logger.info(
        "supervisor.watching: reloading on changes to Python files under %s",
        root,
        extra={"path": str(root)},
    )
    async for changes in awatch(root, watch_filter=PythonFilter(), debounce=300, step=100):
        paths = sorted({_relative(Path(path), root) for _, path in changes})
        await on_change(paths)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
