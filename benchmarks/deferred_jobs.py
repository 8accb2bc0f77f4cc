"""10,000 jobs deferred by 2 s on Redis: how late they run, and how fast they go once due.

    .venv/bin/python benchmarks/deferred_jobs.py                 # N=10000, delay 2 s, 3 reps
    .venv/bin/python benchmarks/deferred_jobs.py --n 2000 --reps 1 --no-save

Every run is two fresh processes on a private redis-server (no persistence) and a fresh queue,
as in a deployment: a job Worker (tasks_limit 1000) subscribes first, then a producer process
enqueues N jobs concurrently (200 at a time) with `deferred_by=2 s`; the actor records when it
ran. Reported per run:

* lateness = when the job ran - when it was due (its `job-due` header, the producer's clock:
  due = enqueue time + delay): min (never negative: no job runs early), p50, p99, max;
* consume rate once due = N / (last run - first due time): the rate the worker got through the
  jobs as they came due (due times spread over the enqueueing, so this is also bounded by it);
* the baseline, in the same invocation and alternating with it: the same N jobs enqueued
  without a delay, whose lateness is run time - enqueue time and whose rate is N / (last run -
  first enqueue).

Medians of the runs go to benchmarks/results/DATE-deferred-jobs.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import machine_info, private_redis  # noqa: E402  (benchmarks/run.py)

from repid import Connection, Job, Message, Queue, RedisMessageBroker, Repid, Worker  # noqa: E402
from repid.jobs.headers import DUE  # noqa: E402

CHUNK = 200


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def produce(url: str, queue: str, n: int, delay: float, burst: bool) -> float:
    """Enqueue the N jobs (200 at a time); return how long it took. `burst`: all due at one
    instant, `delay` after the time the enqueueing is expected to end (800 jobs/s)."""
    app = Repid(Connection(RedisMessageBroker(url)))
    async with app.magic(auto_disconnect=True):
        started = time.time()
        until = datetime.datetime.fromtimestamp(started + n / 800 + delay, datetime.timezone.utc)

        def job() -> Job:
            if burst:
                return Job("record", queue, args={"at": time.time()}, deferred_until=until)
            return Job("record", queue, args={"at": time.time()}, deferred_by=delay or None)

        for first in range(0, n, CHUNK):
            await asyncio.gather(*(job().enqueue() for _ in range(first, min(n, first + CHUNK))))
        return time.time() - started


async def consume(url: str, queue: str, n: int, delay: float, burst: bool) -> dict[str, Any]:
    """Run a worker until N jobs ran (the producer is another process); report."""
    app = Repid(Connection(RedisMessageBroker(url)))
    worker = Worker(messages_limit=n, handle_signals=[], tasks_limit=1000)
    ran: list[tuple[float, float]] = []

    @worker.actor(queue=queue)
    async def record(at: float, message: Message) -> None:
        due = (message.headers or {}).get(DUE)
        ran.append((time.time(), float(due) if due else at))

    async with app.magic(auto_disconnect=True):
        await Queue(queue).declare()
        running = asyncio.get_running_loop().create_task(worker.run())
        await asyncio.sleep(0.5)  # subscribed: the delayed-job mover runs
        producer = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--produce", url, queue, "--n", str(n),
            "--delay", repr(delay), *(["--burst"] if burst else []),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await producer.communicate()
        await asyncio.wait_for(running, 300 + delay)
    lateness = [done - due for done, due in ran]
    first_due = min(due for _, due in ran)
    last_done = max(done for done, _ in ran)
    first_done = min(done for done, _ in ran)
    return {
        "n": len(ran),
        "delay_s": delay,
        "enqueue_s": round(float(out.decode().strip() or "nan"), 3),
        "lateness_min_ms": round(min(lateness) * 1000, 1),
        "lateness_p50_ms": round(percentile(lateness, 0.50) * 1000, 1),
        "lateness_p99_ms": round(percentile(lateness, 0.99) * 1000, 1),
        "lateness_max_ms": round(max(lateness) * 1000, 1),
        "rate_once_due_per_s": round(len(ran) / (last_done - first_due)),
        "rate_first_to_last_run_per_s": round(len(ran) / max(1e-9, last_done - first_done)),
    }


def run_child(url: str, n: int, delay: float, burst: bool) -> dict[str, Any]:
    queue = f"bench-deferred-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [sys.executable, __file__, "--consume", url, queue, "--n", str(n), "--delay", repr(delay)]
        + (["--burst"] if burst else []),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"run failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--burst", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--consume", nargs=2, metavar=("URL", "QUEUE"), help=argparse.SUPPRESS)
    parser.add_argument("--produce", nargs=2, metavar=("URL", "QUEUE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        print(json.dumps(asyncio.run(consume(*args.consume, args.n, args.delay, args.burst))))
        return 0
    if args.produce:
        print(asyncio.run(produce(*args.produce, args.n, args.delay, args.burst)))
        return 0
    machine = machine_info()
    kinds = ["deferred", "burst", "immediate"]
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    with private_redis() as url:
        for rep in range(args.reps):
            for kind in kinds if rep % 2 == 0 else kinds[::-1]:
                delay = 0.0 if kind == "immediate" else args.delay
                result = run_child(url, args.n, delay, kind == "burst")
                runs[kind].append(result)
                print(kind, json.dumps(result), flush=True)
    medians = {
        kind: {
            key: statistics.median(r[key] for r in results)
            for key in results[0]
            if isinstance(results[0][key], (int, float))
        }
        for kind, results in runs.items()
    }
    print(json.dumps({"medians": medians}, indent=2))
    if not args.no_save:
        out = ROOT / "benchmarks" / "results" / f"{datetime.date.today()}-deferred-jobs.json"
        document = {
            "machine": machine,
            "n": args.n,
            "delay_s": args.delay,
            "runs": runs,
            "medians": medians,
        }
        out.write_text(json.dumps(document, indent=2) + "\n")
        print(f"saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
