"""The worker freezes its start-up heap for its run (repid.worker.heap) and undoes it after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from repid import Router


@pytest.fixture
def collector_state() -> Iterator[None]:
    """Whatever a test does to the collector is put back (other tests share the process)."""
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()


async def _freeze_count_seen_by_an_actor(memory_app, **options: bool) -> int:
    app, _ = memory_app
    router = Router()
    seen: list[int] = []

    @router.actor
    async def probe() -> None:
        seen.append(gc.get_freeze_count())

    app.include_router(router)
    await app.send_message(channel="default", payload=b"", headers={"topic": "probe"})
    info = await app.run_worker(messages_limit=1, register_signals=[], **options)
    assert info.processed == 1
    return seen[0]


async def test_the_start_up_heap_is_frozen_for_the_run_only(memory_app, collector_state) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    # The app, its router and every module imported so far are frozen while the actor runs.
    assert await _freeze_count_seen_by_an_actor(memory_app) > 1000
    assert gc.get_freeze_count() == 0  # and back under the collector once the worker stopped


async def test_freezing_can_be_turned_off(memory_app, collector_state) -> None:
    gc.unfreeze()
    assert await _freeze_count_seen_by_an_actor(memory_app, freeze_startup_heap=False) == 0


async def test_a_heap_the_program_froze_itself_is_left_frozen(memory_app, collector_state) -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    # (A few frozen objects are freed by reference counting meanwhile.)
    assert frozen * 0.9 < await _freeze_count_seen_by_an_actor(memory_app) <= frozen
    assert gc.get_freeze_count() > frozen * 0.9  # the worker did not unfreeze what it found


async def test_a_disabled_collector_is_left_alone(memory_app, collector_state) -> None:
    gc.unfreeze()
    gc.disable()
    assert await _freeze_count_seen_by_an_actor(memory_app) == 0
    assert not gc.isenabled()
