"""Shared fixtures: an app on a connected in-memory server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from repid import InMemoryServer, Repid


@pytest.fixture
async def memory_app() -> AsyncIterator[tuple[Repid, InMemoryServer]]:
    app = Repid(title="Test app")
    server = InMemoryServer()
    app.servers.register_server("default", server, is_default=True)
    async with server.connection():
        yield app, server
