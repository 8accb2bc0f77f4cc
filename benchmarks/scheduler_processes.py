"""Three schedulers at once for two minutes: is each tick enqueued exactly once?

    bash scripts/brokers.sh start redis rabbitmq && source .brokers/env
    .venv/bin/python benchmarks/scheduler_processes.py              # 120 s
    .venv/bin/python benchmarks/scheduler_processes.py --seconds 30 --no-save

Three `python -m repid run tests.jobs._scheduler_app:app --scheduler` processes run at once
(the app of the test suite's short version, tests/jobs/test_scheduler_processes.py), each with
a scheduler on Redis and one on RabbitMQ (job state in Redis), each scheduler with a job
every second and a cron job every minute, on the real clock. Afterwards the ticks are read back
from the queues (`job-tick` header): per broker, how many, duplicates (must be none), gaps in
the every-second sequence (must be none), and the every-minute ticks. The processes log at
DEBUG, so `scheduler.enqueued` lines also tell which process won each tick. Results go to
benchmarks/results/DATE-scheduler-processes.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import load_brokers_env, machine_info  # noqa: E402  (benchmarks/run.py)

KINDS = ["redis", "rabbitmq"]


async def measure(seconds: float) -> dict[str, Any]:
    from repid import Queue
    from tests import brokers
    from tests.jobs import scheduler_runs
    from tests.jobs._job_programs import connection_for
    from tests.jobs.conftest import redis_jobs_url, reset_redis

    queue = f"bench-sched-{uuid.uuid4().hex[:8]}"
    connections = [connection_for(kind) for kind in KINDS]
    for connection in connections:
        await connection.connect()
        await Queue(queue, connection).declare()
    try:
        processes = [
            scheduler_runs.SchedulerProcess(queue, KINDS, 0.0, log_level="debug") for _ in range(3)
        ]
        ready_at = await scheduler_runs.wait_ready(processes)
        await asyncio.sleep(seconds)
        codes = [p.stop() for p in processes]
        stopped_at = time.time()
        result: dict[str, Any] = {
            "queue": queue,
            "seconds_all_three_ran": round(stopped_at - ready_at, 1),
            "exit_codes": codes,
        }
        # Ticks each process won (both brokers together), from its scheduler.enqueued lines.
        wins = []
        for process in processes:
            won = {"pid": process.process.pid, "every_second": 0, "every_minute": 0}
            for line in process.lines:
                found = re.search(r"scheduler\.enqueued: (\w+) for", line)
                if found:
                    won[found.group(1)] += 1
            wins.append(won)
        result["ticks_won_by_process"] = wins
        for kind in KINDS:
            found_ticks = await scheduler_runs.enqueued_ticks(kind, queue)
            seconds_ticks = sorted(found_ticks.get("every_second", []))
            summary = scheduler_runs.summary(found_ticks)
            if seconds_ticks:
                span = (seconds_ticks[-1] - seconds_ticks[0]) // 1000 + 1
                summary["every_second_expected_in_span"] = span
            summary["every_minute_ticks"] = [
                datetime.datetime.fromtimestamp(t / 1000, datetime.timezone.utc).isoformat()
                for t in sorted(found_ticks.get("every_minute", []))
            ]
            result[kind] = summary
        return result
    finally:
        for connection in connections:
            await connection.disconnect()
        await reset_redis(redis_jobs_url(), queue)
        for name in (queue, f"{queue}.dead"):
            await asyncio.to_thread(brokers.rabbitmq_delete_queue, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    load_brokers_env()
    machine = machine_info()
    result = asyncio.run(measure(args.seconds))
    print(json.dumps(result, indent=2))
    ok = all(
        result[kind]["every_second_duplicates"] == []
        and result[kind]["every_second_gaps"] == []
        and result[kind]["every_minute_duplicates"] == []
        for kind in KINDS
    )
    if not args.no_save:
        out = ROOT / "benchmarks" / "results" / f"{datetime.date.today()}-scheduler-processes.json"
        out.write_text(
            json.dumps({"machine": machine, "result": result, "ok": ok}, indent=2) + "\n"
        )
        print(f"saved {out.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
