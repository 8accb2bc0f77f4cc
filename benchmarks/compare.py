"""Repid beside repid 2.1.4 and the task queues users would pick instead, on one broker.

    bash benchmarks/baseline.sh && bash benchmarks/peers/install.sh   # once (.bench/, ignored)
    .venv/bin/pip install --group bench                               # matplotlib, for --plot
    .venv/bin/python benchmarks/compare.py --broker redis             # every workload
    .venv/bin/python benchmarks/compare.py --broker amqp --workloads consume,send

Every subject runs through a small adapter in `benchmarks/peers/` (its peer's public API only)
in that peer's own virtual environment, each step a fresh process, on a broker of this run's
own: a private redis-server without persistence, or a private RabbitMQ 4 (scripts/brokers.sh
with state in .bench/brokers), emptied between runs. Workloads:

- `send`: 100 coroutines sharing N (20,000) awaited sends (synchronous clients send one
  after the other: their `mode` says so); the send rate is N / wall time;
- `consume`: the N messages of `send` are then consumed by one worker process (the peer's own
  worker command or API, defaults otherwise); rated N / (last - first actor call), so start-up
  and shutdown are not counted;
- `batch`: N messages through the subject's batch API in batches of 1,000, where it has one;
  ours also through the server's own `publish_batch` (the reference for the app's API);
- `latency`: a worker in its own process; another process sends at a steady rate for
  `--seconds` (30) at each of `--rates` (1000,10000); each actor call records now minus the
  send call's `time.monotonic()` stamp; p50/p90/p99/max per subject and rate;
- `max-rate` (ours only): the highest of `--search-rates` whose p99 stays at most 5 ms with
  the rate achieved (10 s each).

Results: `benchmarks/results/<date>-compare-<broker>.json` (every run, medians, versions,
machine, broker set-up), a markdown table beside it (`.md`) and, with `--plot`, PNG plots
(`-throughput.png`, `-latency.png`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run as harness  # noqa: E402  (broker set-up shared with run.py)

ROOT = BENCH_DIR.parent
PEERS = BENCH_DIR / "peers"
PEER_VENVS = ROOT / ".bench" / "peers"
RESULTS_DIR = BENCH_DIR / "results"


@dataclass(frozen=True)
class Subject:
    name: str
    python: Path
    adapter: str
    brokers: tuple[str, ...]
    pythonpath: str | None = None
    extra: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


def subjects() -> list[Subject]:
    both = ("redis", "amqp")
    return [
        Subject("ours", ROOT / ".venv/bin/python", "repid_adapter.py", both, str(ROOT)),
        Subject("repid 2.1.4", ROOT / ".bench/baseline-venv/bin/python", "repid_adapter.py", both),
        Subject("taskiq", PEER_VENVS / "taskiq/bin/python", "taskiq_adapter.py", both),
        Subject("faststream", PEER_VENVS / "faststream/bin/python", "faststream_adapter.py", both),
        Subject("dramatiq", PEER_VENVS / "dramatiq/bin/python", "dramatiq_adapter.py", both),
        Subject("arq", PEER_VENVS / "arq/bin/python", "arq_adapter.py", ("redis",)),
        Subject("celery", PEER_VENVS / "celery/bin/python", "celery_adapter.py", both),
        Subject("saq", PEER_VENVS / "saq/bin/python", "saq_adapter.py", ("redis",)),
    ]


SERVER_BATCH = "ours, server.publish_batch"


def ref_subject(revision: str) -> Subject:
    """Ours at `revision`: `git archive` of its repid/ into .bench/ref-<sha>, our venv."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    target = ROOT / ".bench" / f"ref-{sha}"
    if not (target / "repid").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", sha, "repid"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    # The revision's own dependencies: without hiredis in its redis extra, redis-py's pure
    # Python parser (the shared venv has hiredis for ours).
    declared = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{sha}:pyproject.toml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    env = () if "hiredis" in declared else (("BENCH_NO_HIREDIS", "1"),)
    return Subject(
        f"ours@{sha}",
        ROOT / ".venv/bin/python",
        "repid_adapter.py",
        ("redis", "amqp"),
        str(target),
        env=env,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--broker",
        choices=("redis", "amqp", "all"),
        required=True,
        help="all: Redis, then RabbitMQ (each its own broker, its own result files)",
    )
    parser.add_argument(
        "--workloads", default="send,consume,batch,latency,max-rate", help="comma-separated"
    )
    parser.add_argument("--subjects", default=None, help="comma-separated names (default all)")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3, help="send/consume/batch runs (median)")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rates", default="1000,10000")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--search-rates", default="2000,5000,10000,15000,20000,25000,30000")
    parser.add_argument("--search-seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per step")
    parser.add_argument(
        "--redis-fsync",
        choices=("always", "everysec"),
        default=None,
        help="run the private Redis with an append-only file and this fsync policy "
        "(default: no persistence)",
    )
    parser.add_argument("--plot", action="store_true", help="save PNG plots (matplotlib)")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--tag", default="", help="suffix of the result files' names")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also update docs/benchmarks.md (tables) and its plots in docs/assets/benchmarks "
        "(implies --plot); ours at --ref revisions is left out of the docs",
    )
    parser.add_argument(
        "--ref",
        action="append",
        default=[],
        help="also run ours as of this git revision (e.g. a commit before a change), from a "
        "snapshot in .bench/ref-<sha>; may be repeated",
    )
    args = parser.parse_args(argv)
    if args.docs:
        args.plot = True
    args.workload_set = {w.strip() for w in args.workloads.split(",") if w.strip()}
    unknown = args.workload_set - {"send", "consume", "batch", "latency", "max-rate"}
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}")
    return args


# --- broker -------------------------------------------------------------------------------


class Broker:
    """A private broker for this invocation, emptied between runs."""

    def __init__(self, kind: str, redis_fsync: str | None = None) -> None:
        # redis_fsync: the private Redis' appendfsync policy (None: no persistence)
        self.kind = kind
        self.redis_fsync = redis_fsync
        self.url = ""
        self.setup = ""

    def start(self, stack: ExitStack) -> None:
        if self.kind == "redis":
            self.url = stack.enter_context(harness.private_redis(self.redis_fsync))
            # redis_version names appendonly and appendfsync
            durability = "" if self.redis_fsync else ", no persistence"
            self.setup = f"private redis-server {harness.redis_version(self.url)}{durability}"
        else:
            stack.enter_context(harness.private_rabbitmq())
            self.url = os.environ[harness.URL_ENV["amqp"]]
            self.setup = f"private {harness.amqp_broker_version()} (scripts/brokers.sh)"

    def prepare(self, subject: Subject, queue: str) -> None:
        """Topology Repid expects to exist (the peers declare their own)."""
        if self.kind == "amqp" and subject.adapter == "repid_adapter.py":
            harness.amqp_declare(self.url, queue, "classic")

    def empty(self) -> None:
        if self.kind == "redis":
            import redis

            client = redis.Redis.from_url(self.url)
            try:
                client.flushall()
            finally:
                client.close()
            return
        # Every queue of the private RabbitMQ (nothing else uses it).
        for queue in self._amqp_queues():
            harness.amqp_delete(self.url, queue)

    def _amqp_queues(self) -> list[str]:
        import base64
        import urllib.parse
        import urllib.request

        base = os.environ[harness.MANAGEMENT_ENV].rstrip("/")
        parsed = urllib.parse.urlsplit(self.url)
        token = base64.b64encode(
            f"{parsed.username or 'guest'}:{parsed.password or 'guest'}".encode()
        ).decode()
        request = urllib.request.Request(
            f"{base}/api/queues", headers={"Authorization": f"Basic {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return [q["name"] for q in json.load(response)]


# --- running adapters ---------------------------------------------------------------------


def _command(subject: Subject, broker: Broker, command: str, queue: str, *extra: str) -> list[str]:
    return [
        str(subject.python),
        str(PEERS / subject.adapter),
        command,
        "--broker",
        broker.kind,
        "--url",
        broker.url,
        "--queue",
        queue,
        *subject.extra,
        *extra,
    ]


def _env(subject: Subject) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if subject.pythonpath:
        env["PYTHONPATH"] = subject.pythonpath
    env["PYTHONUNBUFFERED"] = "1"
    env.update(subject.env)
    return env


def _step(cmd: list[str], subject: Subject, timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        cmd, env=_env(subject), cwd=str(ROOT), capture_output=True, text=True, timeout=timeout
    )
    result: dict[str, Any] = {}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            break
    if proc.returncode == 3 and result.get("not_supported"):
        return result
    if proc.returncode != 0 or not result:
        raise RuntimeError(f"exit status {proc.returncode}: {proc.stderr[-3000:]}")
    return result


class WorkerBehind(RuntimeError):
    """The worker did not see every message in time."""


class Worker:
    """The subject's worker in its own process (own session, so its children stop with it)."""

    def __init__(
        self, subject: Subject, broker: Broker, queue: str, n: int, tmp: Path, latency: bool
    ) -> None:
        self.out = tmp / f"{uuid.uuid4().hex}.json"
        self.ready = tmp / f"{uuid.uuid4().hex}.ready"
        self.log = tmp / f"{uuid.uuid4().hex}.log"
        extra = ["--n", str(n), "--out", str(self.out), "--ready", str(self.ready)]
        if latency:
            extra.append("--latency")
        self._log = open(self.log, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            _command(subject, broker, "worker", queue, *extra),
            env=_env(subject),
            cwd=str(ROOT),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_result(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.out.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}): {self.tail()}")
            if time.monotonic() > deadline:
                raise WorkerBehind(
                    f"worker did not see every message in {timeout:.0f}s: {self.tail()}"
                )
            time.sleep(0.05)
        return dict(json.loads(self.out.read_text()))

    def tail(self) -> str:
        self._log.flush()
        return self.log.read_text()[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def run_send_consume(
    subject: Subject, broker: Broker, args: argparse.Namespace, tmp: Path, consume: bool
) -> dict[str, Any]:
    queue = f"bench-{uuid.uuid4().hex[:10]}"
    broker.prepare(subject, queue)
    try:
        sent = _step(
            _command(
                subject,
                broker,
                "send",
                queue,
                "--n",
                str(args.n),
                "--concurrency",
                str(args.concurrency),
            ),
            subject,
            args.timeout,
        )
        result = {
            "send_per_s": args.n / sent["seconds"],
            "send_mode": sent.get("mode"),
            "versions": {k: v for k, v in sent.items() if k not in ("seconds", "mode")},
        }
        if consume:
            worker = Worker(subject, broker, queue, args.n, tmp, latency=False)
            try:
                done = worker.wait_result(args.timeout)
            finally:
                worker.stop()
            result["consume_per_s"] = args.n / done["seconds"] if done["seconds"] else None
            result["consume_seconds"] = done["seconds"]
        return result
    finally:
        broker.empty()


def run_batch(
    subject: Subject, broker: Broker, args: argparse.Namespace, server_batch: bool = False
) -> dict[str, Any]:
    queue = f"bench-{uuid.uuid4().hex[:10]}"
    broker.prepare(subject, queue)
    extra = ["--n", str(args.n), "--batch-size", "1000"]
    if server_batch:
        extra.append("--server-batch")
    try:
        result = _step(_command(subject, broker, "batch", queue, *extra), subject, args.timeout)
    finally:
        broker.empty()
    if result.get("not_supported"):
        return {"batch_per_s": None, "batch_mode": "no batch API"}
    return {"batch_per_s": args.n / result["seconds"], "batch_mode": result.get("mode")}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": ordered[-1],
        "mean_ms": statistics.fmean(ordered),
    }


def run_latency(
    subject: Subject, broker: Broker, rate: float, seconds: float, tmp: Path, timeout: float
) -> dict[str, Any]:
    queue = f"bench-{uuid.uuid4().hex[:10]}"
    broker.prepare(subject, queue)
    total = int(rate * seconds)
    worker = Worker(subject, broker, queue, total, tmp, latency=True)
    try:
        sent = _step(
            _command(
                subject,
                broker,
                "rate",
                queue,
                "--rate",
                str(rate),
                "--seconds",
                str(seconds),
                "--ready",
                str(worker.ready),
            ),
            subject,
            timeout + seconds,
        )
        if sent["sent"] < total:
            expect = worker.out.with_name(worker.out.name + ".expect")
            expect.write_text(str(sent["sent"]))
        try:
            done = worker.wait_result(timeout)
        except WorkerBehind:
            # Its backlog grows faster than it drains: no percentile would mean anything.
            return {
                "rate": rate,
                "seconds": seconds,
                "achieved_rate": sent["achieved_rate"],
                "kept_up": False,
                "note": f"the worker had not processed the {sent['sent']:,} messages "
                f"{timeout:.0f} s after the last send",
            }
    finally:
        worker.stop()
        broker.empty()
    latencies = done["latencies_ms"]
    return {
        "rate": rate,
        "seconds": seconds,
        "achieved_rate": sent["achieved_rate"],
        "send_p50_ms": sent.get("send_p50_ms"),
        "send_p99_ms": sent.get("send_p99_ms"),
        "count": len(latencies),
        **percentiles(latencies),
        "histogram_ms": histogram(latencies),
    }


def histogram(values: list[float]) -> list[tuple[float, int]]:
    """Counts per logarithmic bin (upper edges in ms), small enough to keep in the JSON."""
    edges = [0.1 * (1.25**k) for k in range(60)]
    counts = [0] * len(edges)
    for value in values:
        for k, edge in enumerate(edges):
            if value <= edge:
                counts[k] += 1
                break
        else:
            counts[-1] += 1
    return [(round(edge, 4), count) for edge, count in zip(edges, counts, strict=True) if count]


# --- the whole run --------------------------------------------------------------------------


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if "error" not in r and r.get(key) is not None]
    return statistics.median(values) if values else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A SIGTERM still stops the private broker and the worker in flight (ExitStack, finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    harness.load_brokers_env()
    kinds = ("redis", "amqp") if args.broker == "all" else (args.broker,)
    failed = False
    documents = []
    for kind in kinds:
        document, ok = run_broker(args, kind)
        failed = failed or not ok
        documents.append(document)
    if args.docs and not args.no_save:
        import docs_page

        for path in docs_page.update(documents, RESULTS_DIR):
            print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 1 if failed else 0


def run_broker(args: argparse.Namespace, kind: str) -> tuple[dict[str, Any], bool]:
    """Every chosen subject and workload on a private broker of `kind`; (document, all ran)."""
    chosen = subjects()
    if args.subjects:
        names = {s.strip() for s in args.subjects.split(",")}
        chosen = [s for s in chosen if s.name in names]
    chosen[1:1] = [ref_subject(revision) for revision in args.ref]
    chosen = [s for s in chosen if kind in s.brokers]
    missing = [s.name for s in chosen if not s.python.exists()]
    if missing:
        sys.exit(
            f"missing venvs for {missing}: bash benchmarks/baseline.sh; "
            "bash benchmarks/peers/install.sh"
        )
    started = dt.datetime.now(dt.timezone.utc)
    document: dict[str, Any] = {
        "broker": kind,
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": harness.machine_info(),
        "n": args.n,
        "concurrency": args.concurrency,
        "reps": args.reps,
        "subjects": {},
    }
    failed = False
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="repid-compare-") as tmpdir:
        tmp = Path(tmpdir)
        broker = Broker(kind, args.redis_fsync)
        broker.start(stack)
        document["broker_setup"] = broker.setup
        print(f"{kind}: {broker.setup}", file=sys.stderr)
        runs: dict[str, dict[str, Any]] = {s.name: {"runs": [], "latency": []} for s in chosen}
        if "batch" in args.workload_set:
            runs[SERVER_BATCH] = {"runs": [], "latency": []}

        def attempt(label: str, what: str, fn: Any) -> dict[str, Any] | None:
            nonlocal failed
            t0 = time.perf_counter()
            try:
                result: dict[str, Any] = fn()
            except Exception as exc:
                failed = True
                print(f"[{label}] {what}: FAILED {exc}", file=sys.stderr)
                runs[label].setdefault("errors", []).append(f"{what}: {exc}")
                return None
            shown = {
                k: (round(v, 2) if isinstance(v, float) else v)
                for k, v in result.items()
                if k not in ("histogram_ms", "versions")
            }
            print(f"[{label}] {what} ({time.perf_counter() - t0:.1f}s): {shown}", file=sys.stderr)
            return result

        consume = "consume" in args.workload_set
        if consume or "send" in args.workload_set or "batch" in args.workload_set:
            for rep in range(args.reps):
                order = chosen if rep % 2 == 0 else list(reversed(chosen))
                for subject in order:
                    row: dict[str, Any] = {}
                    if consume or "send" in args.workload_set:
                        got = attempt(
                            subject.name,
                            f"rep {rep + 1} send/consume",
                            lambda s=subject: run_send_consume(s, broker, args, tmp, consume),
                        )
                        row.update(got or {"error": True})
                    if "batch" in args.workload_set:
                        got = attempt(
                            subject.name,
                            f"rep {rep + 1} batch",
                            lambda s=subject: run_batch(s, broker, args),
                        )
                        if got:
                            row.update(got)
                        if subject.name == "ours":
                            ref = attempt(
                                SERVER_BATCH,
                                f"rep {rep + 1} batch",
                                lambda s=subject: run_batch(s, broker, args, True),
                            )
                            runs[SERVER_BATCH]["runs"].append(ref or {"error": True})
                    runs[subject.name]["runs"].append(row)
        if "latency" in args.workload_set:
            for rate in [float(r) for r in args.rates.split(",")]:
                for subject in chosen:
                    got = attempt(
                        subject.name,
                        f"latency {rate:.0f}/s",
                        lambda s=subject, r=rate: run_latency(
                            s, broker, r, args.seconds, tmp, args.timeout
                        ),
                    )
                    if got:
                        runs[subject.name]["latency"].append(got)
        if "max-rate" in args.workload_set:
            ours = next((s for s in chosen if s.name == "ours"), None)
            if ours is not None:
                search: list[dict[str, Any]] = []
                best = None
                for rate in [float(r) for r in args.search_rates.split(",")]:
                    got = attempt(
                        "ours",
                        f"max-rate {rate:.0f}/s",
                        lambda r=rate: run_latency(
                            ours, broker, r, args.search_seconds, tmp, args.timeout
                        ),
                    )
                    if got is None:
                        break
                    search.append(got)
                    if (
                        got.get("kept_up") is False
                        or got["p99_ms"] > 5.0
                        or got["achieved_rate"] < 0.97 * rate
                    ):
                        break
                    best = rate
                runs["ours"]["max_rate_search"] = search
                runs["ours"]["max_rate_p99_5ms"] = best
    document["finished_utc"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    document["loadavg_at_end"] = list(os.getloadavg())
    for label, data in runs.items():
        summary = {
            key: median_of(data["runs"], key)
            for key in ("send_per_s", "consume_per_s", "batch_per_s")
        }
        ok = [r for r in data["runs"] if "error" not in r]
        modes = {k: ok[0].get(k) for k in ("send_mode", "batch_mode")} if ok else {}
        versions = next((r["versions"] for r in ok if r.get("versions")), None)
        document["subjects"][label] = {
            **data,
            "summary": summary,
            "modes": modes,
            "versions": versions,
        }
    lines = markdown(document)
    print("\n".join(lines))
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        stem = RESULTS_DIR / f"{started:%Y-%m-%d}-compare-{kind}{args.tag}"
        document["stem"] = stem.name
        stem.with_suffix(".json").write_text(json.dumps(document, indent=1) + "\n")
        stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
        print(f"wrote {stem.relative_to(ROOT)}.json/.md", file=sys.stderr)
        if args.plot:
            import plots

            for path in plots.compare_plots(document, stem):
                print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return document, not failed


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}" if value >= 100 else f"{value:.2f}{unit}"


def without_refs(document: dict[str, Any]) -> dict[str, Any]:
    """The run without ours at --ref revisions (a before/after check, not for the docs)."""
    subjects = {k: v for k, v in document["subjects"].items() if "@" not in k}
    return {**document, "subjects": subjects}


def _short_error(detail: str) -> str:
    """One line for a failed step: the exception's last line, or the step's time-out."""
    if "timed out after" in detail:
        return "the step timed out after " + detail.rsplit("timed out after", 1)[1].strip()
    last = [line.strip() for line in detail.splitlines() if line.strip()][-1:]
    return (last[0] if last else detail)[:160].replace("|", "/")


def markdown(document: dict[str, Any]) -> list[str]:
    """The tables of one run: throughput medians, then latency per rate."""
    broker = document["broker"]
    lines = [
        f"{broker}, {document['started_utc']}, {document['broker_setup']}; "
        f"N={document['n']}, {document['reps']} runs each (medians), "
        f"load average (1 min) at start {document['machine']['loadavg_at_start'][0]:.1f}"
        + (
            f", at end {document['loadavg_at_end'][0]:.1f}"
            if document.get("loadavg_at_end")
            else ""
        )
        + f"; {document['machine']['cores']} cores ({document['machine']['cpu']})",
        "",
        "| subject | version | send/s (100 coroutines) | consume/s | batch/s |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for label, data in document["subjects"].items():
        summary = data["summary"]
        if not any(v is not None for v in summary.values()):
            continue
        versions = data.get("versions") or {}
        version = versions.get("subject", "")
        mode = (data.get("modes") or {}).get("send_mode") or ""
        note = " (sequential, sync client)" if "sequential" in mode else ""
        lines.append(
            f"| {label} | {version} | {fmt(summary['send_per_s'])}{note} | "
            f"{fmt(summary['consume_per_s'])} | {fmt(summary['batch_per_s'])} |"
        )
    latency_rows = [
        (label, run)
        for label, data in document["subjects"].items()
        for run in data.get("latency", [])
    ]
    if latency_rows:
        lines += [
            "",
            "| subject | rate/s | achieved/s | p50 ms | p90 ms | p99 ms | max ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for label, run in sorted(latency_rows, key=lambda item: item[1]["rate"]):
            if run.get("kept_up") is False:
                lines.append(
                    f"| {label} | {run['rate']:,.0f} | {run['achieved_rate']:,.0f} | "
                    f"did not keep up: {run['note']} | | | |"
                )
                continue
            lines.append(
                f"| {label} | {run['rate']:,.0f} | {run['achieved_rate']:,.0f} | "
                f"{run['p50_ms']:.2f} | {run['p90_ms']:.2f} | {run['p99_ms']:.2f} | "
                f"{run['max_ms']:.1f} |"
            )
        # A latency step that failed has no figures; say so rather than leave the row out.
        for label, data in document["subjects"].items():
            for error in data.get("errors", []):
                what, _, detail = error.partition(": ")
                if what.startswith("latency "):
                    rate = what.removeprefix("latency ").removesuffix("/s")
                    lines.append(
                        f"| {label} | {float(rate):,.0f} | - | failed: {_short_error(detail)} "
                        "| | | |"
                    )
    ours = document["subjects"].get("ours", {})
    if "max_rate_p99_5ms" in ours:
        tried = ", ".join(
            f"{r['rate']:,.0f}/s: "
            + ("did not keep up" if r.get("kept_up") is False else f"p99 {r['p99_ms']:.2f} ms")
            + f" (achieved {r['achieved_rate']:,.0f})"
            for r in ours["max_rate_search"]
        )
        best = ours["max_rate_p99_5ms"]
        lines += [
            "",
            f"ours, highest steady rate with p99 <= 5 ms: "
            f"{'none of those tried' if best is None else f'{best:,.0f}/s'} ({tried})",
        ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
