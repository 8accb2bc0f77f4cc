"""Small shared helpers for the review tests: an app on a connected in-memory server."""

from __future__ import annotations

import asyncio
from typing import Any

from repid import InMemoryServer, Repid, Router, RunnerInfo


def make_app(router: Router, **app_kwargs: Any) -> tuple[Repid, InMemoryServer]:
    """An app with `router` included and one (not yet connected) in-memory server."""
    app = Repid(**app_kwargs)
    server = InMemoryServer()
    app.servers.register_server("default", server, is_default=True)
    app.include_router(router)
    return app, server


async def run_worker_bounded(app: Repid, *, within: float = 15.0, **kwargs: Any) -> RunnerInfo:
    """`run_worker` without signals; raises `TimeoutError` if it has not returned `within` s."""
    kwargs.setdefault("register_signals", [])
    return await asyncio.wait_for(app.run_worker(**kwargs), within)
