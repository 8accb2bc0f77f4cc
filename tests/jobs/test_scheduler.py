"""Periodic jobs and the Scheduler on the in-memory broker, with a controlled clock: each tick
enqueued once by several schedulers, missed ticks after downtime run once, a new schedule
starts with its next tick, busy schedulers catch up tick by tick, a failed enqueue is tried
again, a unique periodic job skips ticks while its run is pending, and the Job API's checks."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from repid import (
    Connection,
    DuplicateJobError,
    InMemoryBucketBroker,
    InMemoryMessageBroker,
    Job,
    JobStateNotConfiguredError,
    Queue,
    Repid,
    Scheduler,
    Worker,
)
from repid.jobs.headers import TICK
from repid.jobs.schedule import Cron, Every

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ticks(broker: InMemoryMessageBroker, queue: str = "default") -> list[int]:
    return [int((m.headers or {})[TICK]) for m in broker.queued(queue)]


async def memory() -> tuple[Connection, InMemoryMessageBroker]:
    broker = InMemoryMessageBroker()
    connection = Connection(broker)
    await connection.connect()
    await Queue("default", connection).declare()
    return connection, broker


async def test_three_schedulers_enqueue_each_tick_once() -> None:
    connection, broker = await memory()
    clock = Clock(START + 0.2)
    schedulers = [
        Scheduler(
            [
                Job("every_second", every=timedelta(seconds=1)),
                Job("every_minute", cron="* * * * *"),
            ],
            _connection=connection,
            clock=clock,
        )
        for _ in range(3)
    ]
    for step in range(130):  # 65 seconds in half-second steps, schedulers in turn
        clock.now = START + 0.2 + step * 0.5
        for scheduler in schedulers[step % 3 :] + schedulers[: step % 3]:
            await scheduler.run_pending()
    per_job: dict[str, list[int]] = {}
    for message in broker.queued("default"):
        per_job.setdefault((message.headers or {})["topic"], []).append(
            int((message.headers or {})[TICK])
        )
    seconds = per_job["every_second"]
    assert seconds == sorted(set(seconds))  # no tick twice
    # None missing; the 12:00:00 tick was 0.2 s old when first seen: on time.
    assert seconds == [round((START + s) * 1000) for s in range(65)]
    assert per_job["every_minute"] == [round(START * 1000), round((START + 60) * 1000)]
    await connection.disconnect()


async def test_missed_ticks_after_downtime_run_once() -> None:
    connection, broker = await memory()
    clock = Clock(START + 0.5)
    job = Job("report", every=timedelta(seconds=10))
    first = Scheduler([job], _connection=connection, clock=clock)
    for second in range(31):
        clock.now = START + 0.5 + second
        await first.run_pending()
    assert ticks(broker) == [round((START + s) * 1000) for s in (0, 10, 20, 30)]
    # Down for 95 s (9 ticks missed), then a new scheduler process starts.
    clock.now = START + 125.5
    second = Scheduler(
        [Job("report", every=timedelta(seconds=10))], _connection=connection, clock=clock
    )
    assert len(await second.run_pending()) == 1  # the latest missed tick, once
    assert ticks(broker)[-1] == round((START + 120) * 1000)
    assert await second.run_pending() == []
    clock.now = START + 130.1
    assert len(await second.run_pending()) == 1  # then on schedule again
    assert ticks(broker)[-1] == round((START + 130) * 1000)
    await connection.disconnect()


async def test_a_new_schedule_starts_with_its_next_tick() -> None:
    connection, broker = await memory()
    clock = Clock(START + 30)  # the 12:00 tick is 30 s old: it passed before the schedule
    scheduler = Scheduler([Job("m", cron="* * * * *")], _connection=connection, clock=clock)
    assert await scheduler.run_pending() == []
    clock.now = START + 60.01
    assert len(await scheduler.run_pending()) == 1
    assert ticks(broker) == [round((START + 60) * 1000)]
    await connection.disconnect()


async def test_a_busy_scheduler_catches_up_tick_by_tick() -> None:
    connection, broker = await memory()
    clock = Clock(START + 0.1)
    scheduler = Scheduler(
        [Job("beat", every=timedelta(seconds=1))], _connection=connection, clock=clock
    )
    await scheduler.run_pending()
    clock.now = START + 3.3  # a 3 s pause: within the 5 s grace, each tick on its own
    assert len(await scheduler.run_pending()) == 3
    clock.now = START + 12.3  # a 9 s pause: the ticks older than 5 s count as missed
    assert len(await scheduler.run_pending()) == 5  # 8 .. 12
    assert ticks(broker) == [round((START + s) * 1000) for s in (0, 1, 2, 3, 8, 9, 10, 11, 12)]
    await connection.disconnect()


async def test_a_failed_enqueue_gives_the_tick_back() -> None:
    broker = InMemoryMessageBroker()
    connection = Connection(broker)
    await connection.connect()
    clock = Clock(START + 0.1)
    await Queue("default", connection).declare()
    scheduler = Scheduler(
        [
            Job("beat", queue="later", every=timedelta(seconds=1)),
            Job("other", every=timedelta(seconds=1)),
        ],
        _connection=connection,
        clock=clock,
    )
    with pytest.raises(KeyError):  # QueueNotDeclaredError: the tick is not lost
        await scheduler.run_pending()
    assert len(ticks(broker)) == 1  # the other job is not held up
    await Queue("later", connection).declare()
    clock.now = START + 0.3
    assert await scheduler.run_pending() == []  # the failed job backs off (0.5 s)
    clock.now = START + 0.6
    assert len(await scheduler.run_pending()) == 1
    assert ticks(broker, "later") == [round(START * 1000)]
    await connection.disconnect()


async def test_unique_periodic_job_skips_ticks_while_its_run_is_pending() -> None:
    connection, broker = await memory()
    clock = Clock(START + 0.1)
    scheduler = Scheduler(
        [Job("sync", id_="nightly-sync", every=timedelta(seconds=1))],
        _connection=connection,
        clock=clock,
    )
    assert await scheduler.run_pending() == ["nightly-sync"]
    clock.now = START + 1.1
    assert await scheduler.run_pending() == []  # the first run is still queued
    assert len(broker.queued("default")) == 1
    worker = Worker(messages_limit=1, handle_signals=[], _connection=connection)

    @worker.actor
    async def sync() -> None:
        return None

    await asyncio.wait_for(worker.run(), 5)
    clock.now = START + 2.1
    assert await scheduler.run_pending() == ["nightly-sync"]  # free again after its run
    await connection.disconnect()


async def test_periodic_runs_share_one_result_bucket() -> None:
    buckets = InMemoryBucketBroker(use_result_bucket=True)
    broker = InMemoryMessageBroker()
    app = Repid(Connection(broker, results_bucket_broker=buckets))
    clock = Clock(START + 0.1)
    # Two processes declare the job: the same identity, the same result bucket.
    declared = [Job("count", every=timedelta(seconds=1)) for _ in range(2)]
    assert declared[0].result_id == declared[1].result_id
    assert declared[0].schedule_key == declared[1].schedule_key
    assert Job("count", every=timedelta(seconds=2)).result_id != declared[0].result_id
    scheduler = Scheduler([declared[0]], app=app, clock=clock)
    runs: list[int] = []
    worker = Worker(messages_limit=2, handle_signals=[])

    @worker.actor
    async def count() -> int:
        runs.append(len(runs) + 1)
        return len(runs)

    async with app.magic(auto_disconnect=True):
        await Queue().declare()
        await scheduler.run_pending()
        clock.now += 1
        await scheduler.run_pending()
        await asyncio.wait_for(worker.run(), 5)
        result = await declared[1].result
    assert result is not None and result.success and result.data == 2  # the last run's


async def test_scheduler_run_loop_and_context_manager() -> None:
    connection, broker = await memory()
    scheduler = Scheduler([Job("beat", every=timedelta(seconds=1))], _connection=connection)
    async with scheduler:
        deadline = asyncio.get_running_loop().time() + 10
        while len(broker.queued("default")) < 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    found = ticks(broker)
    assert len(found) >= 2 and all(b - a == 1000 for a, b in zip(found, found[1:]))
    await connection.disconnect()


def test_job_schedule_options_are_checked() -> None:
    naive = datetime(2030, 1, 1)
    with pytest.raises(ValueError, match="aware"):
        Job("x", deferred_until=naive)
    with pytest.raises(ValueError, match="not both"):
        Job("x", deferred_by=1, deferred_until=datetime.now(timezone.utc))
    with pytest.raises(ValueError, match="negative"):
        Job("x", deferred_by=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="not both"):
        Job("x", cron="* * * * *", every=timedelta(minutes=1))
    with pytest.raises(ValueError, match="only applies to cron"):
        Job("x", every=timedelta(minutes=1), timezone="Europe/Berlin")
    with pytest.raises(ValueError, match="cannot also be deferred"):
        Job("x", every=timedelta(minutes=1), deferred_by=5)
    with pytest.raises(ValueError, match="at least one second"):
        Job("x", every=timedelta(milliseconds=500))
    with pytest.raises(ValueError, match="day of week"):
        Job("x", cron="* * * * 9")
    with pytest.raises(ValueError, match="not periodic"):
        Scheduler([Job("x")])
    job = Job("x", cron="*/5 * * * *", timezone="Europe/Berlin")
    assert job.is_periodic and isinstance(job.schedule, Cron)
    assert isinstance(Job("x", every=timedelta(hours=1)).schedule, Every)
    aware = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert Job("x", deferred_until=aware).due_time() == aware.timestamp()
    assert Job("x", deferred_by=timedelta(minutes=1)).due_time(now=100.0) == 160.0
    assert Job("x").due_time() is None


async def test_scheduler_without_job_state_refuses_to_start() -> None:
    class NoStateBroker(InMemoryMessageBroker):
        @property
        def job_state(self) -> object:  # type: ignore[override]
            raise AttributeError("no state here")

    connection = Connection(NoStateBroker())
    scheduler = Scheduler([Job("x", every=timedelta(seconds=1))], _connection=connection)
    with pytest.raises(JobStateNotConfiguredError, match="RedisBucketBroker"):
        await scheduler.run()
    assert not connection.is_open  # it opened the connection, and closed it again


async def test_unique_ids_refused_while_pending_on_memory() -> None:
    connection, broker = await memory()
    job = Job("u", id_="only-one", deferred_by=60, _connection=connection)
    await job.enqueue()
    results = await asyncio.gather(
        *(Job("u", id_="only-one", _connection=connection).enqueue() for _ in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(r, DuplicateJobError) for r in results)
    assert broker.is_delayed("default", "only-one") and broker.queued("default") == []
    await connection.disconnect()
