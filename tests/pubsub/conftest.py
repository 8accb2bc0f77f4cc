"""Fixtures for the PubsubServer tests: the emulator named by REPID_TEST_PUBSUB_HOST."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pubsub_helpers import PROJECT, OwnEmulator, create_pair, pubsub_host_or_skip

from repid.connections.pubsub import PubsubServer


@pytest.fixture
def host() -> str:
    return pubsub_host_or_skip()


@pytest.fixture
def channel(host: str) -> str:
    """A fresh topic and subscription, both named by the returned channel."""
    return create_pair(host)


@pytest.fixture
async def server(host: str) -> AsyncIterator[PubsubServer]:
    srv = PubsubServer(PROJECT, emulator_host=host, ack_deadline=10, max_backoff=1.0)
    await srv.connect()
    try:
        yield srv
    finally:
        await srv.disconnect()


@pytest.fixture
def own_emulator(tmp_path: Path) -> Iterator[OwnEmulator]:
    emulator = OwnEmulator(tmp_path)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
