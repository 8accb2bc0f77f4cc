"""Redis Cluster beside one Redis node, same run: 20,000 messages over four channels.

    PYTHONPATH=. .venv/bin/python benchmarks/redis_cluster_bench.py [--n 20000] [--reps 3]

Starts a Redis Cluster of three masters and three replicas with scripts/brokers.sh (the test
fixture's shape; state in .bench/brokers, apart from the test suite's) and one redis-server of
its own with the cluster nodes' settings (no persistence), then alternates the two targets
(single, cluster, cluster, single, ...) and reports the median of `--reps` runs of each. One
run, through the public API (plus the server's client, to delete the streams afterwards):

* publish/s: N `app.send_message_json(...)` calls spread over four channels by four concurrent
  producers (N/4 each, each awaiting its publish before the next);
* consume/s: N / wall time of `app.run_worker(messages_limit=N)` on the four channels
  (start-up, all N messages, shutdown), `tasks_limit=1000`;
* the same per CPU-second of this process (`time.process_time`), steadier on a shared machine.

On the cluster the four channels' streams land on different masters (checked: the run prints
how many masters they use). Every node runs on this machine, so the cluster shows the client's
cost of talking to three masters (one read per slot, one writer per master), not the scale-out
of three machines. The single node has no replica and the cluster's masters replicate
asynchronously to theirs; both have persistence off.

Writes benchmarks/results/DATE-redis-cluster.json unless --no-save.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".bench" / "brokers"


def single_node() -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server with the cluster nodes' settings, on a free loopback port."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.1)
    return process, f"redis://127.0.0.1:{port}/0"


def brokers(*args: str) -> dict[str, str]:
    env = {**os.environ, "REPID_BROKERS_DIR": str(STATE)}
    subprocess.run(["bash", str(REPO / "scripts" / "brokers.sh"), *args], check=True, env=env)
    values = {}
    for line in (STATE / "env").read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            values[name] = value
    return values


async def one_run(url: str, n: int, wait_replicas: int = 0) -> dict[str, Any]:
    from repid import Repid, Router
    from repid.connections.redis import RedisServer

    tag = uuid.uuid4().hex[:6]
    channels = [f"bench-{tag}-{i}" for i in range(4)]
    server = RedisServer(url, wait_replicas=wait_replicas)
    app = Repid(title="cluster bench")
    app.servers.register_server("redis", server, is_default=True)
    router = Router()
    seen = 0

    async def noop(n: int) -> None:
        nonlocal seen
        seen += 1

    for channel in channels:
        router.actor(channel=channel, name=f"noop-{channel}")(noop)
    app.include_router(router)
    per_channel = n // 4

    async def producer(channel: str) -> None:
        headers = {"topic": f"noop-{channel}"}
        for i in range(per_channel):
            await app.send_message_json(channel=channel, payload={"n": i}, headers=headers)

    async with server.connection():
        masters = None
        if server.is_cluster:
            from redis.crc import key_slot

            client: Any = server._client
            masters = len(
                {
                    client.nodes_manager.get_node_from_slot(key_slot(server.stream_key(c))).name
                    for c in channels
                }
            )
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(producer(channel) for channel in channels))
        publish_wall, publish_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall, cpu = time.perf_counter(), time.process_time()
        info = await app.run_worker(messages_limit=per_channel * 4, register_signals=[])
        consume_wall, consume_cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert info.processed == per_channel * 4 == seen, (info.processed, seen)
    async with server.connection():  # run_worker closed it
        client = server._client
        assert client is not None
        for channel in channels:
            await client.delete(server.stream_key(channel))
    total = per_channel * 4
    return {
        "mode": ("cluster" if masters is not None else "single")
        + (f"+wait_replicas={wait_replicas}" if wait_replicas else ""),
        "masters_used": masters,
        "publish_per_s": total / publish_wall,
        "publish_per_cpu_s": total / publish_cpu,
        "consume_per_s": total / consume_wall,
        "consume_per_cpu_s": total / consume_cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the brokers running")
    parser.add_argument(
        "--wait", action="store_true", help="add the cluster with wait_replicas=1 to the rotation"
    )
    args = parser.parse_args()
    env = brokers("start", "redis-cluster")
    single, single_url = single_node()
    targets = {"single": single_url, "cluster": env["REPID_TEST_REDIS_CLUSTER_URL"]}
    modes = ["single", "cluster", *(["cluster+wait_replicas=1"] if args.wait else [])]
    targets["cluster+wait_replicas=1"] = targets["cluster"]
    order = (modes + modes[::-1]) * args.reps
    order = order[: len(modes) * args.reps]
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    try:
        for mode in order:
            wait = 1 if mode.endswith("wait_replicas=1") else 0
            result = asyncio.run(one_run(targets[mode], args.n, wait))
            runs[mode].append(result)
            print(json.dumps(result), flush=True)
    finally:
        single.terminate()
        single.wait(30)
        if not args.keep:
            brokers("stop", "redis-cluster")
    summary: dict[str, Any] = {"n": args.n, "channels": 4, "reps": args.reps}
    for mode, items in runs.items():
        summary[mode] = {
            key: round(statistics.median(item[key] for item in items))
            for key in ("publish_per_s", "publish_per_cpu_s", "consume_per_s", "consume_per_cpu_s")
        }
        summary[mode]["masters_used"] = items[0]["masters_used"]
    print("median:", json.dumps(summary))
    if not args.no_save:
        out = REPO / "benchmarks" / "results" / f"{datetime.date.today()}-redis-cluster.json"
        out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2) + "\n")
        print(f"saved {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
