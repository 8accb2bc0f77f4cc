"""Run the benchmark workload for our `repid` and the published baseline, side by side.

    bash benchmarks/baseline.sh                      # once: .bench/baseline-venv (repid==2.1.4)
    .venv/bin/python benchmarks/run.py               # in-memory, N=20000, 3 repetitions each
    source .brokers/env && .venv/bin/python benchmarks/run.py --broker memory,redis --batch
    .venv/bin/python benchmarks/run.py --ours-ref main   # also "ours" as of another revision

`--ours-ref REF` adds a variant `ours@REF`: our code as of a git revision (checked out once into
`.bench/ref-<commit>`, a detached worktree) or of another checkout's directory, run with the same
virtualenv and workload, so a change is measured against the code before it in one run.

Every measurement is `benchmarks/workload.py` in a fresh subprocess: ours with the repository's
virtualenv and the checkout on PYTHONPATH, the baseline with `.bench/baseline-venv` and nothing
on PYTHONPATH.  The implementations alternate (ours, baseline, baseline, ours, ...) so that load
from other processes on the shared machine hits both alike; the table shows medians.

Network brokers: the URL comes from REPID_TEST_REDIS_URL / REPID_TEST_AMQP_URL (read from
`.brokers/env` when not in the environment, see `scripts/brokers.sh`).  Every run gets a fresh
channel name; afterwards its Redis keys are deleted (only keys containing that name, since other
processes may share the Redis), and for AMQP its queue is declared beforehand and deleted
afterwards through the RabbitMQ management API, because Repid expects topology to exist.

Results: a table and ratio lines on stdout, and `benchmarks/results/<date>-<broker>.json`.
Exit status 1 when any run failed (the failures are in the table, the JSON and on stderr).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # plots.py
ROOT = BENCH_DIR.parent
WORKLOAD = BENCH_DIR / "workload.py"
RESULTS_DIR = BENCH_DIR / "results"
OURS_PYTHON = ROOT / ".venv" / "bin" / "python"
BASELINE_PYTHON = ROOT / ".bench" / "baseline-venv" / "bin" / "python"
BROKERS_ENV = ROOT / ".brokers" / "env"

URL_ENV = {
    "redis": "REPID_TEST_REDIS_URL",
    "amqp": "REPID_TEST_AMQP_URL",
    "pubsub": "REPID_TEST_PUBSUB_HOST",
}
MANAGEMENT_ENV = "REPID_TEST_RABBITMQ_MANAGEMENT_URL"


@dataclass
class Variant:
    """One implementation x publish mode to measure."""

    label: str
    python: Path
    pythonpath: str | None
    extra_args: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--broker",
        default="memory",
        help="comma-separated: memory, redis, amqp, pubsub (default memory)",
    )
    parser.add_argument("--n", type=int, default=20_000, help="messages per run (default 20000)")
    parser.add_argument("--reps", type=int, default=5, help="runs per implementation (median)")
    parser.add_argument(
        "--batch", action="store_true", help="also run ours with its batched publish path"
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--only", choices=("ours", "baseline"), default=None)
    parser.add_argument(
        "--ours-ref",
        default=None,
        help="also run our code as of this git revision or checkout directory (ours@REF)",
    )
    parser.add_argument("--ours-python", type=Path, default=OURS_PYTHON)
    parser.add_argument("--baseline-python", type=Path, default=BASELINE_PYTHON)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per phase")
    parser.add_argument(
        "--redis-from-env",
        action="store_true",
        help="use REPID_TEST_REDIS_URL instead of a private redis-server (see README)",
    )
    parser.add_argument(
        "--private-rabbitmq",
        action="store_true",
        help="start a RabbitMQ of our own (scripts/brokers.sh, state in .bench/brokers)",
    )
    parser.add_argument(
        "--amqp-queue-type", default="classic", choices=("classic", "quorum"), help="AMQP queue"
    )
    parser.add_argument(
        "--instrument",
        default="",
        help=(
            "comma-separated observability modes to measure beside plain ours, in the same "
            "run: otel-api, otel-sdk, prometheus, otel-sdk+prometheus (see workload.py)"
        ),
    )
    parser.add_argument("--no-save", action="store_true", help="do not write results JSON")
    parser.add_argument(
        "--plot", action="store_true", help="also save a PNG beside the JSON (plots.py)"
    )
    args = parser.parse_args(argv)
    args.brokers = [b.strip() for b in args.broker.split(",") if b.strip()]
    for broker in args.brokers:
        if broker not in ("memory", "redis", "amqp", "pubsub"):
            parser.error(f"unknown broker {broker!r}")
    if args.reps < 1 or args.n < 1:
        parser.error("--n and --reps must be at least 1")
    return args


def load_brokers_env() -> None:
    """Fill missing REPID_TEST_* variables from `.brokers/env` (written by scripts/brokers.sh)."""
    if not BROKERS_ENV.is_file():
        return
    for raw in BROKERS_ENV.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if sep and key.startswith("REPID_") and key not in os.environ:
            os.environ[key] = value.strip().strip("'\"")


# --- per-broker set-up and clean-up ---------------------------------------------------------


def redis_cleanup(url: str, channel: str) -> None:
    """Delete the keys of one run (streams, dead-letter streams, ...) that contain `channel`."""
    try:
        import redis  # the repository's virtualenv has it; cleanup is skipped elsewhere
    except ImportError:
        print("warning: python package 'redis' missing, keys not cleaned up", file=sys.stderr)
        return
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"*{channel}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def private_redis(appendfsync: str | None = None) -> Iterator[str]:
    """A redis-server of our own on a free loopback port, without persistence by default.

    The test brokers of scripts/brokers.sh run Redis with `appendfsync always` (for the
    restart tests), which caps un-pipelined XADD at the disk's fsync rate and would measure the
    disk rather than the client library; tests may also restart it mid-run. `appendfsync`
    ("always", "everysec"): an append-only file with that policy, for measuring what a durable
    Redis costs (each round trip waits for its write to be synced under "always").
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found (apt-get install redis-server)")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="repid-bench-redis-") as workdir:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             *(("--appendonly", "yes", "--appendfsync", appendfsync) if appendfsync
               else ("--appendonly", "no")),
             "--dir", workdir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while not _redis_ping(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private redis-server did not start on port {port}")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def private_rabbitmq() -> Iterator[None]:
    """Start a RabbitMQ of our own with scripts/brokers.sh and point the AMQP variables at it.

    It has its own state directory (.bench/brokers), so its own ports and node, and nothing else
    restarts or stops it in the middle of a run, as the crash and restart tests do with the
    shared one.  It is stopped again on exit.
    """
    script = ROOT / "scripts" / "brokers.sh"
    state = ROOT / ".bench" / "brokers"
    env = {**os.environ, "REPID_BROKERS_DIR": str(state)}
    saved = {key: os.environ.get(key) for key in (URL_ENV["amqp"], MANAGEMENT_ENV)}
    try:
        subprocess.run(
            ["bash", str(script), "start", "rabbitmq"],
            env=env,
            stdout=sys.stderr,
            check=True,
            timeout=900,
        )
        for raw in (state / "env").read_text().splitlines():
            key, sep, value = raw.removeprefix("export ").partition("=")
            if sep and key in saved:
                os.environ[key] = value.strip().strip("'\"")
        yield
    except subprocess.SubprocessError as exc:
        raise RuntimeError(f"private RabbitMQ did not start: {exc}") from exc
    finally:
        subprocess.run(
            ["bash", str(script), "stop", "rabbitmq"],
            env=env,
            stdout=sys.stderr,
            check=False,
            timeout=300,
        )
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def redis_version(url: str) -> str | None:
    try:
        import redis
    except ImportError:
        return None
    client = redis.Redis.from_url(url)
    try:
        info = client.info("server")
        appendonly = client.config_get("appendonly").get("appendonly")
        fsync = client.config_get("appendfsync").get("appendfsync")
        return f"{info.get('redis_version')} appendonly={appendonly} appendfsync={fsync}"
    except Exception:
        return None
    finally:
        client.close()


def _management_request(method: str, path: str, amqp_url: str, body: Any = None) -> None:
    base = os.environ.get(MANAGEMENT_ENV)
    if not base:
        raise RuntimeError(f"{MANAGEMENT_ENV} is not set: cannot declare the benchmark queue")
    parsed = urllib.parse.urlsplit(amqp_url)
    user = urllib.parse.unquote(parsed.username or "guest")
    password = urllib.parse.unquote(parsed.password or "guest")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def _vhost(amqp_url: str) -> str:
    path = urllib.parse.urlsplit(amqp_url).path
    vhost = urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"
    return urllib.parse.quote(vhost, safe="")


def amqp_declare(url: str, channel: str, queue_type: str) -> None:
    _management_request(
        "PUT",
        f"/api/queues/{_vhost(url)}/{urllib.parse.quote(channel, safe='')}",
        url,
        {"durable": True, "auto_delete": False, "arguments": {"x-queue-type": queue_type}},
    )


def amqp_delete(url: str, channel: str) -> None:
    try:
        _management_request(
            "DELETE", f"/api/queues/{_vhost(url)}/{urllib.parse.quote(channel, safe='')}", url
        )
    except Exception as exc:
        print(f"warning: could not delete queue {channel}: {exc!r}", file=sys.stderr)


# --- running ---------------------------------------------------------------------------------


def _pubsub_request(host: str, method: str, path: str, body: Any = None) -> None:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://{host}/v1/{path}",
        data=data,
        method=method,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def pubsub_create(host: str, channel: str) -> None:
    """A topic and a subscription, both named `channel`, on the emulator (REST API)."""
    project = os.environ.get("PUBSUB_PROJECT_ID", "repid-bench")
    _pubsub_request(host, "PUT", f"projects/{project}/topics/{channel}")
    _pubsub_request(
        host,
        "PUT",
        f"projects/{project}/subscriptions/{channel}",
        {"topic": f"projects/{project}/topics/{channel}", "ackDeadlineSeconds": 60},
    )


def pubsub_delete(host: str, channel: str) -> None:
    project = os.environ.get("PUBSUB_PROJECT_ID", "repid-bench")
    for path in (f"subscriptions/{channel}", f"topics/{channel}"):
        try:
            _pubsub_request(host, "DELETE", f"projects/{project}/{path}")
        except Exception as exc:
            print(f"warning: could not delete {path}: {exc!r}", file=sys.stderr)


def run_once(
    variant: Variant, broker: str, url: str | None, args: argparse.Namespace
) -> dict[str, Any]:
    channel = f"bench-{broker}-{uuid.uuid4().hex[:10]}"
    cmd = [
        str(variant.python),
        str(WORKLOAD),
        "--broker", broker,
        "--n", str(args.n),
        "--channel", channel,
        "--impl", variant.label,
        "--timeout", str(args.timeout),
        "--batch-size", str(args.batch_size),
        *variant.extra_args,
    ]  # fmt: skip
    if url:
        cmd += ["--url", url]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if variant.pythonpath:
        env["PYTHONPATH"] = variant.pythonpath
    try:
        if broker == "amqp" and url:
            amqp_declare(url, channel, args.amqp_queue_type)
        elif broker == "pubsub" and url:
            pubsub_create(url, channel)
        proc = subprocess.run(
            cmd,
            env=env,
            cwd=str(ROOT),
            capture_output=True,
            text=True,
            timeout=2 * args.timeout + 60,
            check=False,
        )
    except Exception as exc:
        return {"error": repr(exc), "channel": channel}
    finally:
        if broker == "redis" and url:
            redis_cleanup(url, channel)
        elif broker == "amqp" and url:
            amqp_delete(url, channel)
        elif broker == "pubsub" and url:
            pubsub_delete(url, channel)
    result: dict[str, Any] = {}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            break
    if proc.returncode != 0 or not result or "error" in result:
        result.setdefault("error", f"exit status {proc.returncode}")
        result["stderr_tail"] = proc.stderr[-4000:]
    return result


def median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if "error" not in r and r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def summarize(variant: Variant) -> dict[str, Any]:
    ok = [r for r in variant.runs if "error" not in r]
    modes = sorted({r.get("publish_mode", "?") for r in ok})
    return {
        "label": variant.label,
        "publish_mode": ",".join(modes) if modes else None,
        "ok_runs": len(ok),
        "failed_runs": len(variant.runs) - len(ok),
        "publish_per_s": median(variant.runs, "publish_per_s"),
        "consume_per_s": median(variant.runs, "consume_per_s"),
        "peak_rss_mb": median(variant.runs, "peak_rss_mb"),
        "publish_per_cpu_s": median(variant.runs, "publish_per_cpu_s"),
        "consume_per_cpu_s": median(variant.runs, "consume_per_cpu_s"),
        "repid_version": ok[0].get("repid_version") if ok else None,
    }


def fmt(value: float | None) -> str:
    return "FAILED" if value is None else f"{value:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or not b else f"{a / b:.2f}x"


def report(broker: str, summaries: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    lines = [
        f"broker={broker} n={args.n} reps={args.reps} (medians)",
        f"{'impl':<26} {'version':<8} {'mode':<7} {'publish/s':>11} {'consume/s':>11} "
        f"{'peak RSS MB':>12} {'publish/cpu-s':>14} {'consume/cpu-s':>14} ok",
    ]
    for s in summaries:
        lines.append(
            f"{s['label']:<26} {s['repid_version'] or '?':<8} {s['publish_mode'] or '-':<7} "
            f"{fmt(s['publish_per_s']):>11} "
            f"{fmt(s['consume_per_s']):>11} {fmt(s['peak_rss_mb']):>12} "
            f"{fmt(s['publish_per_cpu_s']):>14} {fmt(s['consume_per_cpu_s']):>14} "
            f"{s['ok_runs']}/{s['ok_runs'] + s['failed_runs']}"
        )
    by_label = {s["label"]: s for s in summaries}
    ours, base = by_label.get("ours"), by_label.get("baseline")
    if ours and base:
        lines.append(
            f"ours/baseline consume: {ratio(ours['consume_per_s'], base['consume_per_s'])}"
        )
        lines.append(
            f"ours/baseline publish: {ratio(ours['publish_per_s'], base['publish_per_s'])}"
        )
        lines.append(
            "ours/baseline consume per CPU-second: "
            f"{ratio(ours['consume_per_cpu_s'], base['consume_per_cpu_s'])}"
        )
    plain = by_label.get("ours")
    for label, summary in by_label.items():
        if label.startswith("ours@") and plain:
            lines.append(
                f"ours/{label} consume: {ratio(plain['consume_per_s'], summary['consume_per_s'])}"
                f" (per CPU-second "
                f"{ratio(plain['consume_per_cpu_s'], summary['consume_per_cpu_s'])}), publish: "
                f"{ratio(plain['publish_per_s'], summary['publish_per_s'])}, peak RSS: "
                f"{ratio(plain['peak_rss_mb'], summary['peak_rss_mb'])}"
            )
        if label.startswith("ours+") and plain:
            lines.append(
                f"{label}/ours consume: {ratio(summary['consume_per_s'], plain['consume_per_s'])}"
                f" (per CPU-second "
                f"{ratio(summary['consume_per_cpu_s'], plain['consume_per_cpu_s'])}), publish: "
                f"{ratio(summary['publish_per_s'], plain['publish_per_s'])}"
            )
    batch = by_label.get("ours-batch")
    # Only when the batch path really ran (a server without publish_batch falls back).
    if batch and base and batch["publish_mode"] == "batch":
        lines.append(
            f"ours-batch/baseline publish: {ratio(batch['publish_per_s'], base['publish_per_s'])}"
        )
    return lines


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_at_start": list(os.getloadavg()),
        "git_commit": commit or None,
    }


def ref_checkout(ref: str) -> tuple[str, Path]:
    """(label, directory) of our code as of `ref`: a checkout directory, or a git revision
    checked out (once) into `.bench/ref-<commit>` as a detached worktree."""
    given = Path(ref)
    if given.is_dir():
        commit = subprocess.run(
            ["git", "-C", str(given), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return f"ours@{commit or given.name}", given.resolve()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    directory = ROOT / ".bench" / f"ref-{commit}"
    if not (directory / "repid" / "__init__.py").is_file():
        directory.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(directory), commit],
            check=True,
            stdout=sys.stderr,
        )
    return f"ours@{commit}", directory


def variants_for(args: argparse.Namespace) -> list[Variant]:
    variants: list[Variant] = []
    if args.only != "baseline":
        variants.append(Variant("ours", args.ours_python, str(ROOT)))
        if args.ours_ref:
            label, directory = args.ours_ref_checkout
            variants.append(Variant(label, args.ours_python, str(directory)))
    if args.only != "ours":
        variants.append(Variant("baseline", args.baseline_python, None))
    if args.batch and args.only != "baseline":
        variants.append(Variant("ours-batch", args.ours_python, str(ROOT), ["--batch"]))
    if args.only != "baseline":
        for mode in filter(None, (m.strip() for m in args.instrument.split(","))):
            variants.append(
                Variant(f"ours+{mode}", args.ours_python, str(ROOT), ["--instrument", mode])
            )
            if args.ours_ref:  # the same mode on the other revision: before/after in one run
                label, directory = args.ours_ref_checkout
                variants.append(
                    Variant(
                        f"{label}+{mode}", args.ours_python, str(directory), ["--instrument", mode]
                    )
                )
    return variants


def amqp_broker_version() -> str | None:
    base = os.environ.get(MANAGEMENT_ENV)
    url = os.environ.get(URL_ENV["amqp"])
    if not base or not url:
        return None
    parsed = urllib.parse.urlsplit(url)
    token = base64.b64encode(
        f"{parsed.username or 'guest'}:{parsed.password or 'guest'}".encode()
    ).decode()
    request = urllib.request.Request(
        base.rstrip("/") + "/api/overview", headers={"Authorization": f"Basic {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return f"RabbitMQ {json.load(response).get('rabbitmq_version')}"
    except Exception:
        return None


@contextmanager
def broker_url(broker: str, args: argparse.Namespace) -> Iterator[tuple[str | None, str]]:
    """Yield (url, description) for `broker`; the description goes into the results."""
    if broker == "memory":
        yield None, "InMemoryServer, publisher and worker in one process"
    elif broker == "redis" and not args.redis_from_env:
        with private_redis() as private_url:
            yield private_url, f"private redis-server {redis_version(private_url)}, no persistence"
    elif broker == "amqp" and args.private_rabbitmq:
        with private_rabbitmq():
            yield (
                os.environ[URL_ENV["amqp"]],
                (
                    f"private {amqp_broker_version()} (scripts/brokers.sh), "
                    f"{args.amqp_queue_type} queue per run"
                ),
            )
    else:
        url = os.environ.get(URL_ENV[broker])
        if not url:
            raise RuntimeError(f"{URL_ENV[broker]} is not set (scripts/brokers.sh start)")
        if broker == "redis":
            yield url, f"REPID_TEST_REDIS_URL: redis {redis_version(url)}"
        elif broker == "pubsub":
            yield url, "REPID_TEST_PUBSUB_HOST: Pub/Sub emulator, topic+subscription per run"
        else:
            yield (
                url,
                (
                    f"REPID_TEST_AMQP_URL: {amqp_broker_version()}, "
                    f"{args.amqp_queue_type} queue per run"
                ),
            )


def run_broker(
    broker: str, url: str | None, args: argparse.Namespace
) -> tuple[list[Variant], bool]:
    """All repetitions of all variants on one broker; returns the variants and 'any failed'."""
    variants = variants_for(args)
    failed = False
    for rep in range(args.reps):
        # Alternate the order each repetition so neither impl always runs first.
        order = variants if rep % 2 == 0 else list(reversed(variants))
        for variant in order:
            t0 = time.perf_counter()
            result = run_once(variant, broker, url, args)
            variant.runs.append(result)
            took = time.perf_counter() - t0
            prefix = f"[{broker} rep {rep + 1}] {variant.label}:"
            if "error" in result:
                failed = True
                print(f"{prefix} FAILED {result['error']}", file=sys.stderr)
                print(result.get("stderr_tail", ""), file=sys.stderr)
            else:
                print(
                    f"{prefix} publish {result['publish_per_s']:,.0f}/s "
                    f"consume {result['consume_per_s']:,.0f}/s "
                    f"rss {result['peak_rss_mb']} MB ({took:.1f}s)",
                    file=sys.stderr,
                )
    return variants, failed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.ours_ref_checkout = ref_checkout(args.ours_ref) if args.ours_ref else None
    load_brokers_env()
    for variant in variants_for(args):
        if not variant.python.exists():
            sys.exit(f"{variant.python} missing (baseline: run `bash benchmarks/baseline.sh`)")
    machine = machine_info()
    any_failed = False
    for broker in args.brokers:
        started = dt.datetime.now(dt.timezone.utc)
        try:
            with broker_url(broker, args) as (url, setup):
                print(f"{broker}: {setup}", file=sys.stderr)
                variants, failed = run_broker(broker, url, args)
        except RuntimeError as exc:
            print(f"{broker}: cannot run: {exc}", file=sys.stderr)
            any_failed = True
            continue
        any_failed = any_failed or failed
        summaries = [summarize(v) for v in variants]
        lines = report(broker, summaries, args)
        print("\n".join(lines))
        print()
        if not args.no_save:
            RESULTS_DIR.mkdir(exist_ok=True)
            out = RESULTS_DIR / f"{started:%Y-%m-%d}-{broker}.json"
            document = {
                "broker": broker,
                "broker_setup": setup,
                "n": args.n,
                "reps": args.reps,
                "started_utc": started.isoformat(timespec="seconds"),
                "machine": machine,
                "summary": summaries,
                "table": lines,
                "runs": {v.label: v.runs for v in variants},
            }
            out.write_text(json.dumps(document, indent=2) + "\n")
            print(f"wrote {out.relative_to(ROOT)}", file=sys.stderr)
            if args.plot:
                import plots

                png = plots.throughput(
                    f"{broker}: N={args.n}, medians of {args.reps} ({started:%Y-%m-%d}, {setup})",
                    ["publish/s", "consume/s"],
                    {s["label"]: [s["publish_per_s"], s["consume_per_s"]] for s in summaries},
                    out.with_suffix(".png"),
                )
                print(f"wrote {png.relative_to(ROOT)}", file=sys.stderr)
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
