"""`repid run --workers 2` against `--workers 1` on Redis: does a second process pay off?

    .venv/bin/python benchmarks/cli_workers.py            # 50,000 messages, 3 runs of each
    .venv/bin/python benchmarks/cli_workers.py --n 20000 --reps 1 --no-save

Each run publishes N messages to a fresh channel of a private redis-server (no persistence),
starts `python -m repid run bench_app:app --workers W` as a real command, waits until the
channel is empty and nothing is pending, then stops it with SIGTERM. Every worker process
records the wall-clock time of its first and its last processed message (and how many it
processed, written at exit); the rate is N / (last message of any process - first message of
any process), so process start-up and shutdown are not counted. Runs alternate (1, 2, 2, 1,
...) and the median of each is reported; the two configurations share the machine, the broker
and the run. Results go to benchmarks/results/DATE-cli-workers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import private_redis  # noqa: E402  (benchmarks/run.py)

APP = textwrap.dedent(
    """
    import atexit
    import json
    import os
    import time

    from repid import RedisServer, Repid, Router

    app = Repid(title="bench")
    app.servers.register_server(
        "default", RedisServer(os.environ["BENCH_REDIS_URL"]), is_default=True
    )
    router = Router()
    seen = {"first": None, "last": None, "count": 0}


    @router.actor(channel=os.environ["BENCH_CHANNEL"])
    async def noop(n: int) -> None:
        now = time.time()
        if seen["first"] is None:
            seen["first"] = now
        seen["last"] = now
        seen["count"] += 1


    @atexit.register
    def _write() -> None:
        seen["cpu"] = time.process_time()
        with open(os.path.join(os.environ["BENCH_OUT"], f"{os.getpid()}.json"), "w") as out:
            json.dump(seen, out)


    app.include_router(router)
    """
)


async def publish(url: str, channel: str, n: int) -> None:
    from repid import MessageData, RedisServer

    server = RedisServer(url)
    async with server.connection():
        batch = 5000
        for start in range(0, n, batch):
            await server.publish_batch(
                channel=channel,
                messages=[
                    MessageData(b'{"n":%d}' % i, {"topic": "noop"}, "application/json")
                    for i in range(start, min(n, start + batch))
                ],
            )


async def drained(url: str, channel: str) -> bool:
    from repid import RedisServer

    server = RedisServer(url)
    async with server.connection():
        stats = await server.channel_stats(channel)
    return stats.depth == 0 and stats.in_flight == 0


def one_run(url: str, workers: int, n: int, timeout: float) -> dict[str, Any]:
    channel = f"bench-{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="repid-cli-bench-") as tmp:
        directory = Path(tmp)
        (directory / "bench_app.py").write_text(APP)
        out = directory / "out"
        out.mkdir()
        asyncio.run(publish(url, channel, n))
        env = {
            **os.environ,
            "PYTHONPATH": f"{directory}{os.pathsep}{ROOT}",
            "BENCH_REDIS_URL": url,
            "BENCH_CHANNEL": channel,
            "BENCH_OUT": str(out),
        }
        command = subprocess.Popen(
            [sys.executable, "-m", "repid", "run", "bench_app:app", "--workers", str(workers),
             "--log-level", "warning"],
            cwd=directory, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while not asyncio.run(drained(url, channel)):
                if command.poll() is not None:
                    raise RuntimeError(f"repid run exited with {command.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not drained within {timeout} s")
                time.sleep(0.2)
        finally:
            command.send_signal(signal.SIGTERM)
            command.wait(60)
        reports = [json.loads(path.read_text()) for path in out.glob("*.json")]
    reports = [r for r in reports if r["count"]]
    processed = sum(r["count"] for r in reports)
    if processed != n:
        raise RuntimeError(f"processed {processed} messages, expected {n}")
    first = min(r["first"] for r in reports)
    last = max(r["last"] for r in reports)
    return {
        "workers": workers,
        "seconds": last - first,
        "rate": n / (last - first),
        "per_process": sorted(r["count"] for r in reports),
        "worker_cpu_seconds": round(sum(r.get("cpu", 0.0) for r in reports), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--plot", action="store_true", help="also save a PNG (plots.py)")
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    loadavg_at_start = list(os.getloadavg())
    with private_redis() as url:
        order: list[int] = []
        for rep in range(args.reps):
            order += [1, 2] if rep % 2 == 0 else [2, 1]
        for workers in order:
            run = one_run(url, workers, args.n, args.timeout)
            runs.append(run)
            print(
                f"--workers {workers}: {run['rate']:,.0f} msg/s "
                f"({run['seconds']:.2f} s, per process {run['per_process']}, worker CPU "
                f"{run['worker_cpu_seconds']:.1f} s)",
                flush=True,
            )
    medians = {w: statistics.median(r["rate"] for r in runs if r["workers"] == w) for w in (1, 2)}
    speedup = medians[2] / medians[1]
    load = os.getloadavg()
    print(
        f"median: --workers 1 {medians[1]:,.0f} msg/s, --workers 2 {medians[2]:,.0f} msg/s, "
        f"speed-up {speedup:.2f}x (N={args.n}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} at the end: the second process only helps when a core is free)"
    )
    if not args.no_save:
        results = ROOT / "benchmarks" / "results"
        results.mkdir(exist_ok=True)
        target = results / f"{datetime.date.today().isoformat()}-cli-workers.json"
        target.write_text(
            json.dumps(
                {
                    "benchmark": "repid run --workers 1 vs 2, Redis, first to last message",
                    "n": args.n,
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "loadavg_at_start": loadavg_at_start,
                    "loadavg_at_end": list(load),
                    "runs": runs,
                    "median_rate": {str(w): rate for w, rate in medians.items()},
                    "speedup": speedup,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"saved {target.relative_to(ROOT)}")
        if args.plot:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            import plots

            png = plots.throughput(
                f"repid run --workers 1 vs 2, Redis, N={args.n}, medians "
                f"({datetime.date.today().isoformat()}, load average {load[0]:.1f})",
                ["first to last message"],
                {f"--workers {w}": [rate] for w, rate in medians.items()},
                target.with_suffix(".png"),
                highlight="--workers 2",
            )
            print(f"saved {png.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
