"""Three `repid run ... --scheduler` processes at once, each with a scheduler on Redis and one
on RabbitMQ (job state in Redis), a job every second and one every minute: every tick is
enqueued exactly once (counted from the queues). Then all stop, and one starts again a few
seconds later: the missed ticks are not replayed one by one (only the latest, once), and
ticking goes on. The two-minute version of this run is benchmarks/scheduler_processes.py."""

from __future__ import annotations

import asyncio
import time

import pytest

from repid import Queue
from tests import brokers as rabbit
from tests.jobs import scheduler_runs
from tests.jobs._job_programs import connection_for
from tests.jobs.conftest import redis_jobs_url, reset_redis

KINDS = ["redis", "rabbitmq"]
LEAD = 16.0  # the processes' clock starts this long before a minute boundary
AFTER = 4.0  # and they run this long past it


@pytest.mark.slow
async def test_three_scheduler_processes_enqueue_each_tick_once(queue_name: str) -> None:
    connections = [connection_for(kind) for kind in KINDS]
    for connection in connections:
        await connection.connect()
        await Queue(queue_name, connection).declare()
    offset = scheduler_runs.offset_to_minute(LEAD)
    boundary = time.time() + LEAD  # in real time
    processes: list[scheduler_runs.SchedulerProcess] = []
    try:
        processes = [scheduler_runs.SchedulerProcess(queue_name, KINDS, offset) for _ in range(3)]
        ready_at = await scheduler_runs.wait_ready(processes)
        await asyncio.sleep(max(boundary + AFTER - time.time(), 6.0))
        codes = [p.stop() for p in processes]
        assert codes == [0, 0, 0], [p.log for p in processes]
        await asyncio.sleep(3.5)  # nobody schedules for three ticks
        restarted = scheduler_runs.SchedulerProcess(queue_name, KINDS, offset)
        processes.append(restarted)
        await scheduler_runs.wait_ready([restarted])
        await asyncio.sleep(3.0)
        assert restarted.stop() == 0, restarted.log
        assert "scheduler.missed" in restarted.log
        for kind in KINDS:
            found = await scheduler_runs.enqueued_ticks(kind, queue_name)
            seconds = found["every_second"]
            report = (kind, scheduler_runs.summary(found))
            # Every tick once while the three ran, and again after the restart; between the
            # two, one jump over the downtime (its missed ticks are not replayed one by one).
            assert scheduler_runs.duplicates(seconds) == [], report
            ((last_before, first_after),) = scheduler_runs.gaps(seconds, 1000)
            assert first_after - last_before >= 3000, report
            assert len([t for t in seconds if t <= last_before]) >= 5, report
            assert len([t for t in seconds if t >= first_after]) >= 2, report
            # The minute boundary the clock crossed: enqueued once (if the schedulers were up
            # before it; a tick that passed before a schedule existed is not run).
            minutes = found.get("every_minute", [])
            assert scheduler_runs.duplicates(minutes) == [], report
            if ready_at < boundary - 1:
                assert len(minutes) == 1 and minutes[0] % 60000 == 0, report
    finally:
        for process in processes:
            process.stop()
        for connection in connections:
            await connection.disconnect()
        await reset_redis(redis_jobs_url(), queue_name)
        for name in (queue_name, f"{queue_name}.dead"):
            await asyncio.to_thread(rabbit.rabbitmq_delete_queue, name)
