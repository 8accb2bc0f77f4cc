"""The app that `python -m repid run tests.jobs._scheduler_app:app --scheduler` runs in the
multi-process scheduler test and benchmark: no message-layer servers (so the command runs the
schedulers alone), one Scheduler per job broker, each with a job every second and one every
minute.

Environment: REPID_SCHEDULER_QUEUE (the queue), REPID_SCHEDULER_KINDS (comma-separated:
`redis`, `rabbitmq`), REPID_SCHEDULER_OFFSET (seconds added to the clock, the same in every
process: the tests start just before a minute boundary instead of waiting for one).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from repid import Job, Repid, Scheduler
from tests.jobs._job_programs import connection_for

QUEUE = os.environ["REPID_SCHEDULER_QUEUE"]
KINDS = [k for k in os.environ.get("REPID_SCHEDULER_KINDS", "redis").split(",") if k]
OFFSET = float(os.environ.get("REPID_SCHEDULER_OFFSET", "0"))


def clock() -> float:
    return time.time() + OFFSET


app = Repid(title="scheduler test")
schedulers = [
    Scheduler(
        [
            Job("every_second", QUEUE, every=timedelta(seconds=1)),
            Job("every_minute", QUEUE, cron="* * * * *"),
        ],
        app=app,
        _connection=connection_for(kind),
        clock=clock,
    )
    for kind in KINDS
]
