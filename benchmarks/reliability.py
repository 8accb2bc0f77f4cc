"""The reliability harness: faults production brings, counted on every broker.

    .venv/bin/python benchmarks/reliability.py --scenario kill9 --broker redis
    .venv/bin/python benchmarks/reliability.py --scenario all --broker all \
        --impl ours,baseline --save

Scenarios (see benchmarks/README.md for what each measures and its target):

    kill9      kill -9 of one of two workers under load
    rolling    three workers stopped with SIGTERM and restarted one at a time, producer running
    restart    the broker restarted mid-run (Redis AOF, RabbitMQ quorum queue, the emulator)
    partition  a TCP proxy in front of each worker drops its traffic for 30 s, then heals
    longtask   a 3-minute actor: runs once while its worker lives, once more if it is killed
    badinput   malformed messages injected with the broker's own tools among good ones
    soak       1,000,000 messages in-memory, 200,000 on Redis: memory and tasks stay flat

Every broker is a private instance started by the harness (faults never hit anything else):
redis-server with AOF, RabbitMQ 4 through scripts/brokers.sh with its own state dir
(.bench/reliability-brokers), the Pub/Sub emulator on a free port. Workers and producers are
`reliability_agent.py` subprocesses using only the public API, run by our virtualenv (`ours`)
or by the one holding the published `repid==2.1.4` (`baseline`, see baseline.sh).

Per run it prints sent, processed, lost, duplicated, time to recover and peak RSS; `--save`
merges the runs into benchmarks/results/reliability-<date>.json and writes the markdown table
beside it. Run files (records, logs) stay in .bench/reliability/<time>/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.faults import (  # noqa: E402
    PartitionProxy,
    PubsubBroker,
    RabbitBroker,
    RedisBroker,
    bad_input,
)

AGENT = BENCH_DIR / "reliability_agent.py"
RESULTS_DIR = BENCH_DIR / "results"
RUNS_DIR = ROOT / ".bench" / "reliability"
OURS_PYTHON = ROOT / ".venv" / "bin" / "python"
BASELINE_CANDIDATES = [ROOT / ".bench" / "baseline-venv" / "bin" / "python",
                       Path("/work/venvs/repid214/bin/python")]  # fmt: skip
PROJECT = "repid-reliability"

SCENARIOS = ("kill9", "rolling", "restart", "partition", "longtask", "badinput", "soak")
BROKERS = ("memory", "redis", "amqp", "pubsub")
# Where a scenario means something: the in-memory broker lives and dies with its process.
APPLIES: dict[str, tuple[str, ...]] = {
    "kill9": ("redis", "amqp", "pubsub"),
    "rolling": ("redis", "amqp", "pubsub"),
    "restart": ("redis", "amqp", "pubsub"),
    "partition": ("redis", "amqp", "pubsub"),
    "longtask": ("memory", "redis", "amqp", "pubsub"),
    "badinput": ("memory", "redis", "amqp", "pubsub"),
    "soak": ("memory", "redis"),
}
# Targets from issue 13: seconds until a killed worker's messages are all back, and until a
# consumer processes new messages after its broker or network returned.
KILL9_TARGET = {"redis": 15.0, "amqp": 15.0, "pubsub": 30.0}
RETURN_TARGET = 10.0


@dataclass(frozen=True)
class Params:
    """Sizes and durations of the scenarios (`full()` is the issue's, `quick()` for tests)."""

    kill9_count: int = 10_000
    kill9_rate: float = 500.0
    kill9_ms: float | None = None  # the actor's duration (None: actor_ms)
    kill9_trigger: str = "finished"  # kill after a third finished, or "started" (see kill9)
    kill9_tail: int = 0  # "started": messages published after the kill (100/s)
    rolling_count: int = 9_000
    rolling_rate: float = 300.0
    restart_seconds: float = 40.0
    restart_rate: float = 200.0
    restart_down: float = 3.0
    restart_mode: str = "node"  # RabbitMQ: "app" restarts the application, not the node
    partition_seconds: float = 30.0
    partition_rate: float = 200.0
    partition_mode: str = "blackhole"
    partition_tail: float = 30.0  # seconds the producer goes on after the heal
    longtask_seconds: float = 180.0
    longtask_kill_after: float = 20.0
    badinput_good: int = 20_000
    badinput_each: int = 3
    soak_memory: int = 1_000_000
    soak_redis: int = 200_000
    soak_rate: float = 2_500.0
    actor_ms: float = 5.0
    drain_timeout: float = 120.0

    @classmethod
    def full(cls) -> Params:
        return cls()

    @classmethod
    def quick(cls) -> Params:
        return cls(
            kill9_count=1_500, kill9_rate=300.0, rolling_count=1_500, rolling_rate=150.0,
            restart_seconds=14.0, restart_down=1.0, partition_seconds=8.0,
            longtask_seconds=20.0, longtask_kill_after=4.0, badinput_good=300,
            badinput_each=1, soak_memory=20_000, soak_redis=5_000, drain_timeout=60.0,
        )  # fmt: skip


@dataclass
class Impl:
    """One implementation: `ours` (the checkout) or `baseline` (repid==2.1.4)."""

    label: str
    python: Path
    pythonpath: str | None

    @classmethod
    def ours(cls, checkout: Path = ROOT) -> Impl:
        """Our package from `checkout` (default: this one), run by this checkout's virtualenv."""
        python = OURS_PYTHON if OURS_PYTHON.exists() else Path(sys.executable)
        return cls("ours", python, str(checkout))

    @classmethod
    def baseline(cls) -> Impl:
        for candidate in BASELINE_CANDIDATES:
            if candidate.exists():
                return cls("repid==2.1.4", candidate, None)
        raise RuntimeError("no baseline venv: run `bash benchmarks/baseline.sh`")


# -- brokers --------------------------------------------------------------------------------------


class BrokerEnv:
    """The private broker of one kind for this harness invocation, started on first use."""

    def __init__(self, name: str, state_dir: Path | None = None) -> None:
        self.name = name
        self.controller: Any = None
        self.state_dir = state_dir

    def start(self) -> None:
        if self.name == "memory" or self.controller is not None:
            return
        if self.name == "redis":
            self.controller = RedisBroker()
        elif self.name == "amqp":
            self.controller = RabbitBroker(self.state_dir)
        elif self.name == "pubsub":
            self.controller = PubsubBroker(project=PROJECT)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.cleanup()
            self.controller = None

    @property
    def url(self) -> str | None:
        return None if self.controller is None else str(self.controller.url)

    def prepare(self, channel: str, *, dead_letters: bool = False) -> None:
        """Create what the channel needs (Repid creates no topology on RabbitMQ and Pub/Sub)."""
        if self.name == "amqp":
            arguments: dict[str, Any] = {}
            if dead_letters:
                self.controller.declare_queue(f"{channel}.dead")
                arguments = {
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": f"{channel}.dead",
                }
            self.controller.declare_queue(channel, **arguments)
        elif self.name == "pubsub":
            extra: dict[str, Any] = {}
            if dead_letters:
                self.controller.create(f"{channel}-dead")
                extra = {
                    "deadLetterPolicy": {
                        "deadLetterTopic": self.controller.topic_path(f"{channel}-dead"),
                        "maxDeliveryAttempts": 5,
                    }
                }
            self.controller.create(channel, **extra)

    def left_over(self, channel: str) -> int | None:
        """Messages the broker still holds for `channel` (queued or delivered and unsettled):
        0 after a clean run. None where it cannot be told cheaply."""
        try:
            if self.name == "redis":
                keys = [
                    k for k in self.controller.stream_keys(channel) if not is_dead_letter_key(k)
                ]
                return sum(self.controller.backlog(k) for k in keys)
            if self.name == "amqp":
                return int(self.controller.queue(channel).get("messages") or 0)
        except Exception:
            return None
        return None

    def cleanup(self, channel: str) -> None:
        with contextlib.suppress(Exception):
            if self.name == "amqp":
                self.controller.delete_queue(channel)
                self.controller.delete_queue(f"{channel}.dead")
            elif self.name == "pubsub":
                self.controller.delete(channel)
                self.controller.delete(f"{channel}-dead")
            elif self.name == "redis":
                for key in self.controller.stream_keys(channel):
                    self.controller.cli("DEL", key)


# -- agents ---------------------------------------------------------------------------------------


class Agent:
    """One `reliability_agent.py` subprocess (a worker, a producer or an in-memory run)."""

    def __init__(self, run: Run, role: str, name: str, extra: list[str], url: str | None) -> None:
        self.run = run
        self.role = role
        self.name = name
        self.record = run.dir / f"{name}.rec"
        self.log = run.dir / f"{name}.log"
        command = [str(run.impl.python), str(AGENT), role, "--broker", run.broker.name,
                   "--channel", run.channel, "--record", str(self.record), *extra]  # fmt: skip
        if url:
            command += ["--url", url]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PUBSUB_PROJECT_ID"] = PROJECT
        if run.impl.label == "repid==2.1.4":
            env.pop("REPID_RELIABILITY_SERVER_OPTIONS", None)
        if run.impl.pythonpath:
            env["PYTHONPATH"] = run.impl.pythonpath
        self._log_file = self.log.open("ab")
        self.proc = subprocess.Popen(
            command,
            cwd=str(ROOT),
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.peak_rss_kb = 0
        self.started_at = time.monotonic()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            match = re.match(r"exit peak_rss_kb=(\d+)", line)
            if match:
                self.peak_rss_kb = max(self.peak_rss_kb, int(match.group(1)))

    def sample_rss(self) -> None:
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return
        match = re.search(r"VmHWM:\s+(\d+) kB", text)
        if match:
            self.peak_rss_kb = max(self.peak_rss_kb, int(match.group(1)))

    def wait_line(self, text: str, timeout: float) -> bool:
        return wait_until(lambda: text in self.lines or self.proc.poll() is not None, timeout) and (
            text in self.lines
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.sample_rss()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (the graceful shutdown); returns the exit status, None if it hung."""
        self.sample_rss()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.alive:
            self.kill()
        self._log_file.close()


def is_dead_letter_key(key: str) -> bool:
    """A channel's dead-letter stream, by either package's naming (`:dlq`, `:dead`)."""
    return key.endswith((":dlq", ":dead"))


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


# -- records --------------------------------------------------------------------------------------


@dataclass
class Records:
    """Everything the agents of one run wrote (see reliability_agent.py for the format)."""

    starts: dict[int, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    finishes: dict[int, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    published: dict[int, float] = field(default_factory=dict)
    errors: list[tuple[int, float, str]] = field(default_factory=list)
    samples: dict[str, list[tuple[float, int, int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @classmethod
    def read(cls, directory: Path) -> Records:
        records = cls()
        for path in sorted(directory.glob("*.rec")):
            name = path.stem
            for line in path.read_bytes().splitlines():
                parts = line.split(b" ", 4)
                kind = parts[0]
                try:
                    if kind == b"T":
                        t, rss, tasks, done = parts[1:5]
                        records.samples[name].append((float(t), int(rss), int(tasks), int(done)))
                        continue
                    seq, t = int(parts[1]), float(parts[3])
                except (IndexError, ValueError):
                    continue  # a line cut short by a SIGKILL
                if kind == b"S":
                    records.starts[seq].append((t, name))
                elif kind == b"F":
                    records.finishes[seq].append((t, name))
                elif kind == b"P":
                    records.published.setdefault(seq, t)
                elif kind == b"E":
                    text = parts[4].decode(errors="replace") if len(parts) > 4 else ""
                    records.errors.append((seq, t, text))
        return records

    def finished_count(self) -> int:
        return sum(1 for seq in self.published if seq in self.finishes)

    def all_finished(self) -> bool:
        return all(seq in self.finishes for seq in self.published)

    def first_finish(self, seq: int) -> float | None:
        times = self.finishes.get(seq)
        return min(t for t, _ in times) if times else None

    def lost(self, seqs: Any = None) -> list[int]:
        chosen = self.published if seqs is None else seqs
        return sorted(seq for seq in chosen if seq not in self.finishes)

    def duplicated(self) -> list[int]:
        return sorted(seq for seq, times in self.finishes.items() if len(times) > 1 and seq >= 0)

    def worker_back(
        self, worker: str, since: float, published_after: float | None = None
    ) -> float | None:
        """Seconds after `since` until `worker` finished a message published after
        `published_after` (default `since`).

        After a fault that began at `published_after`, a message published since then can only
        have reached the worker through the broker once it was back: its first one is when the
        consumer was back. (Counting only messages published after the recovery would add the
        time to work off the backlog that piled up meanwhile: thousands of messages after a 30 s
        partition, queued ahead of them.)"""
        after = since if published_after is None else published_after
        best: float | None = None
        for seq, times in self.finishes.items():
            published = self.published.get(seq)
            if published is None or published < after:
                continue
            for t, name in times:
                if name == worker and t >= since and (best is None or t < best):
                    best = t
        return None if best is None else best - since


# -- one run --------------------------------------------------------------------------------------


class Run:
    """One scenario on one broker with one implementation."""

    def __init__(self, scenario: str, broker: BrokerEnv, impl: Impl, params: Params, root: Path):
        self.scenario = scenario
        self.broker = broker
        self.impl = impl
        self.params = params
        self.channel = f"rel-{scenario}-{uuid.uuid4().hex[:8]}"
        slug = re.sub(r"[^a-z0-9.]+", "-", impl.label.lower())
        self.dir = root / f"{scenario}-{broker.name}-{slug}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.agents: list[Agent] = []
        self.proxies: list[PartitionProxy] = []
        self.result: dict[str, Any] = {
            "scenario": scenario, "broker": broker.name, "impl": impl.label,
            "channel": self.channel,
        }  # fmt: skip
        self._stop_sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop_sampling.wait(0.5):
            for agent in list(self.agents):
                if agent.alive:
                    agent.sample_rss()

    def worker(
        self, name: str, *, via_proxy: bool = False, extra: list[str] | None = None
    ) -> Agent:
        url = self.broker.url
        if via_proxy:
            host, port = self.broker.controller.address
            proxy = PartitionProxy(host, port)
            proxy.start()
            self.proxies.append(proxy)
            url = self.broker.controller.url_via(proxy.port)
        agent = Agent(self, "worker", name, ["--log-level", "INFO", *(extra or [])], url)
        self.agents.append(agent)
        return agent

    def producer(
        self, name: str, count: int, rate: float, *, start: int = 0, ms: float | None = None
    ) -> Agent:
        """A producer publishing `count` messages at `rate`/s; `stop_producer` ends it early."""
        stop_file = self.dir / f"{name}.stop"
        extra = ["--count", str(count), "--rate", str(rate), "--start", str(start),
                 "--ms", str(self.params.actor_ms if ms is None else ms),
                 "--stop-file", str(stop_file)]  # fmt: skip
        agent = Agent(self, "producer", name, extra, self.broker.url)
        self.agents.append(agent)
        return agent

    def stop_producer(self, producer: Agent, timeout: float = 180.0) -> None:
        """Ask `producer` to publish no more and wait until the ones under way are done."""
        (self.dir / f"{producer.name}.stop").touch()
        producer.wait_line("done", timeout)

    def memory(self, name: str, extra: list[str]) -> Agent:
        agent = Agent(self, "memory", name, extra, None)
        self.agents.append(agent)
        return agent

    def records(self) -> Records:
        return Records.read(self.dir)

    def wait_ready(self, *agents: Agent, timeout: float = 60.0) -> None:
        for agent in agents:
            if not agent.wait_line("ready", timeout):
                raise RuntimeError(f"{agent.name} did not start; see {agent.log}")

    def drain(self, seqs: list[int] | None = None, timeout: float | None = None) -> Records:
        """Wait until every published message (or every one of `seqs`) was processed, or
        `timeout`; return the records."""

        def done() -> bool:
            records = self.records()
            return records.all_finished() if seqs is None else not records.lost(seqs)

        wait_until(done, timeout or self.params.drain_timeout, 1.0)
        return self.records()

    def finish(self, records: Records, **figures: Any) -> dict[str, Any]:
        lost = records.lost()
        waits = [
            done - published
            for seq, published in records.published.items()
            if (done := records.first_finish(seq)) is not None
        ]
        if waits:
            self.result["max_wait_s"] = round(max(waits), 1)
        self.result.update(
            sent=len(records.published),
            processed=records.finished_count(),
            lost=len(lost),
            duplicated=len(records.duplicated()),
            peak_rss_mb=round(
                max((a.peak_rss_kb for a in self.agents if a.role != "producer"), default=0) / 1024,
                1,
            ),
        )
        if lost:
            self.result["lost_sample"] = lost[:20]
        left = self.broker.left_over(self.channel)
        if left:
            self.result["left_in_broker"] = left
        self.result.update(figures)
        if lost and self.result.get("recover_s") is not None and self.scenario == "kill9":
            self.result["recover_s"] = None  # some never came back: no time to report
        return self.result

    def close(self) -> None:
        self._stop_sampling.set()
        for agent in self.agents:
            agent.close()
        for proxy in self.proxies:
            proxy.close()
        if self.broker.controller is not None:
            self.broker.cleanup(self.channel)


# -- scenarios ------------------------------------------------------------------------------------


def scenario_kill9(run: Run) -> dict[str, Any]:
    """kill -9 of one of two workers after a third of the messages; the other takes over.

    recover_s: the longest any message waited after the kill (counted from its publish if
    later), i.e. until the last message the dead worker held was processed by the other one.
    """
    p = run.params
    a, b = run.worker("w1"), run.worker("w2")
    run.wait_ready(a, b)
    producer = run.producer("producer", p.kill9_count, p.kill9_rate, ms=p.kill9_ms)
    run.wait_ready(producer)
    if p.kill9_trigger == "started":
        # Kill once everything is published and a worker holds part of it unfinished: the
        # one holding more (with a burst, one worker may well have taken everything).

        def holding(records: Records, name: str) -> int:
            return sum(
                1
                for seq, starts in records.starts.items()
                if any(n == name for _, n in starts)
                and not any(n == name for _, n in records.finishes.get(seq, []))
            )

        producer.wait_line("done", 120)
        wait_until(lambda: max(holding(run.records(), w.name) for w in (a, b)) >= 10, 120, 0.05)
        records = run.records()
        if holding(records, b.name) > holding(records, a.name):
            a, b = b, a
    else:
        wait_until(lambda: run.records().finished_count() >= p.kill9_count // 3, 120, 0.1)
    killed_at = time.monotonic()
    a.kill()
    producer.wait_line("done", p.kill9_count / max(p.kill9_rate, 1) + 120)
    if p.kill9_tail:
        # Messages published after the kill: the emulator routes some to the dead worker's
        # streams (it never drops them), and each such delivery costs an ack deadline.
        tail = run.producer("tail", p.kill9_tail, 100.0, start=p.kill9_count, ms=p.kill9_ms)
        run.wait_ready(tail)
        tail.wait_line("done", p.kill9_tail / 100.0 + 120)
    records = run.drain()
    waits = []
    for seq, published in records.published.items():
        done = records.first_finish(seq)
        if done is not None and done >= killed_at:
            waits.append(done - max(published, killed_at))
    recover = max(waits, default=0.0)
    # The messages the killed worker had started and not finished: back once the broker
    # redelivers them (the rest of `waits` also counts what the broker routed to the dead
    # worker after the kill, which only the emulator does).
    held = [
        done - killed_at
        for seq, starts in records.starts.items()
        if any(name == a.name for _, name in starts)
        and not any(name == a.name for _, name in records.finishes.get(seq, []))
        and (done := records.first_finish(seq)) is not None
    ]
    target = KILL9_TARGET[run.broker.name]
    result = run.finish(
        records,
        recover_s=round(recover, 2),
        held_back_s=round(max(held, default=0.0), 2),
        held=len(held),
        target_s=target,
    )
    result["ok"] = result["lost"] == 0 and recover <= target
    return result


def scenario_rolling(run: Run) -> dict[str, Any]:
    """Three workers, each stopped with SIGTERM and started again in turn, messages arriving.

    recover_s: the longest time any message waited from its publish until processed.
    """
    p = run.params
    workers = [run.worker(f"w{i}") for i in (1, 2, 3)]
    run.wait_ready(*workers)
    # Messages keep coming until every worker was restarted, and `rolling_count / rate`
    # seconds at least.
    producer = run.producer("producer", 100 * p.rolling_count, p.rolling_rate)
    run.wait_ready(producer)
    duration = p.rolling_count / p.rolling_rate
    started = time.monotonic()
    time.sleep(min(5.0, duration / 6))
    hung = 0
    for i in (1, 2, 3):
        status = workers[i - 1].terminate(60)
        if status is None:
            hung += 1
            workers[i - 1].kill()
        restarted = run.worker(f"w{i}b")
        run.wait_ready(restarted)
        since = time.monotonic()
        wait_until(lambda n=restarted.name, t=since: bool(run.records().worker_back(n, t)), 30, 0.2)
    time.sleep(max(3.0, started + duration - time.monotonic()))
    run.stop_producer(producer)
    records = run.drain()
    result = run.finish(records, hung_on_sigterm=hung)
    recover = result.get("max_wait_s", 0.0)
    result["recover_s"] = recover
    result["ok"] = (
        result["lost"] == 0 and result["duplicated"] == 0 and hung == 0 and recover <= RETURN_TARGET
    )
    return result


def scenario_restart(run: Run) -> dict[str, Any]:
    """The broker restarts mid-run; producers retry (the app retries on error, with a pause),
    consumers must resume on their own.

    recover_s: the longest any worker took, after the broker answered again, to process a
    message published since the restart began (the producer goes on for eight seconds at
    least once the broker is back). The emulator keeps no data: there, topics are recreated
    after the restart and only messages published afterwards are counted.
    """
    p = run.params
    a, b = run.worker("w1"), run.worker("w2")
    run.wait_ready(a, b)
    producer = run.producer("producer", int(600 * p.restart_rate), p.restart_rate)
    run.wait_ready(producer)
    time.sleep(p.restart_seconds / 4)
    restart_at = time.monotonic()
    back_at = run.broker.controller.restart(down_for=p.restart_down, mode=p.restart_mode)
    if run.broker.name == "pubsub":
        run.broker.prepare(run.channel)
        back_at = time.monotonic()
    # However long the broker was down, messages keep coming for a while after it is back.
    time.sleep(max(8.0, p.restart_seconds * 3 / 4 - (back_at - restart_at)))
    run.stop_producer(producer)
    counted = None
    if run.broker.name == "pubsub":  # the emulator lost what it held: count what came after
        counted = [s for s, t in run.records().published.items() if t > back_at]
    records = run.drain(counted)
    backs = {w.name: records.worker_back(w.name, back_at, restart_at) for w in (a, b)}
    stuck = [name for name, back in backs.items() if back is None]
    recover = max((v for v in backs.values() if v is not None), default=None)
    lost = records.lost(counted)
    error_kinds = Counter(text.split(":", 1)[0] for _, _, text in records.errors)
    result = run.finish(
        records,
        recover_s=None if recover is None else round(recover, 2),
        stuck_workers=stuck,
        broker_down_s=round(back_at - restart_at, 1),
        publish_errors=len(records.errors),
        publish_error_kinds=dict(error_kinds),
        publish_gave_up=len(
            [s for s in {e[0] for e in records.errors} if s not in records.published]
        ),
    )
    result["lost"] = len(lost)
    if run.broker.name == "pubsub":
        result["lost_by_broker"] = len(records.lost()) - len(lost)
    result["ok"] = not stuck and not lost and recover is not None and recover <= RETURN_TARGET
    return result


def scenario_partition(run: Run) -> dict[str, Any]:
    """A proxy in front of each worker drops all its traffic for 30 s (sockets stay open),
    then heals; the producer is not behind it, so messages keep arriving.

    recover_s: the longest any worker took after the heal to process a message published
    since the cut (one that could only reach it through a connection made after the heal);
    `new_after_heal_s` the same for messages published after the heal, which wait behind the
    partition's backlog (the definition of results before 2026-12-02).
    """
    p = run.params
    a, b = run.worker("w1", via_proxy=True), run.worker("w2", via_proxy=True)
    run.wait_ready(a, b)
    producer = run.producer("producer", int(600 * p.partition_rate), p.partition_rate)
    run.wait_ready(producer)
    warm = max(20, int(2 * p.partition_rate))  # two seconds' worth
    wait_until(lambda: run.records().finished_count() >= warm, 60, 0.2)
    cut_at = time.monotonic()
    for proxy in run.proxies:
        proxy.partition(p.partition_mode)  # type: ignore[arg-type]
    time.sleep(p.partition_seconds)
    healed_at = time.monotonic()
    for proxy in run.proxies:
        proxy.heal()
    wait_until(
        lambda: all(run.records().worker_back(w.name, healed_at, cut_at) for w in (a, b)),
        60,
        0.5,
    )
    time.sleep(max(0.0, healed_at + p.partition_tail - time.monotonic()))
    run.stop_producer(producer)
    records = run.drain()
    backs = {w.name: records.worker_back(w.name, healed_at, cut_at) for w in (a, b)}
    # What the previous definition reported: until a message published after the heal was
    # done, i.e. behind the partition's backlog (kept for comparison with older results).
    behind_backlog = [records.worker_back(w.name, healed_at) for w in (a, b)]
    stuck = [name for name, back in backs.items() if back is None]
    recover = max((v for v in backs.values() if v is not None), default=None)
    detected = {
        w.name: proxy.accepted_since(cut_at) > 0
        for w, proxy in zip((a, b), run.proxies, strict=True)
    }
    result = run.finish(
        records,
        recover_s=None if recover is None else round(recover, 2),
        stuck_workers=stuck,
        reconnected=dict(detected),
        mode=p.partition_mode,
        new_after_heal_s=None
        if None in behind_backlog
        else round(max(b for b in behind_backlog if b is not None), 2),
    )
    result["ok"] = (
        not stuck and result["lost"] == 0 and recover is not None and recover <= RETURN_TARGET
    )
    return result


def scenario_longtask(run: Run) -> dict[str, Any]:
    """A 3-minute actor, twice at once: on channel A nobody fails (it must run exactly once,
    though it outlives Redis' claim idle time and Pub/Sub's ack deadline); on channel B its
    worker is killed after a while (it must run exactly once more, on the other worker).

    recover_s: seconds from the kill until the other worker started the message again.
    """
    p = run.params
    ms = p.longtask_seconds * 1000
    if run.broker.name == "memory":
        agent = run.memory("memory", ["--mode", "longtask", "--ms", str(ms)])
        agent.wait_line("exit", p.longtask_seconds + 60)
        records = run.records()
        result = run.finish(records, runs=len(records.starts.get(0, [])), recover_s=None)
        result["sent"] = 1
        result["processed"] = len(records.finishes.get(0, []))
        result["lost"] = 1 - min(1, result["processed"])
        result["ok"] = result["runs"] == 1 and result["processed"] == 1
        return result
    # Channel B is a second Run sharing this one's directory and agents list.
    other = Run("longtask", run.broker, run.impl, run.params, run.dir.parent)
    other.dir = run.dir / "killed"
    other.dir.mkdir(exist_ok=True)
    run.broker.prepare(other.channel)
    try:
        workers_a = [run.worker("a1"), run.worker("a2")]
        workers_b = [other.worker("b1"), other.worker("b2")]
        run.wait_ready(*workers_a, *workers_b)
        pa = run.producer("producer", 1, 0, ms=ms)
        pb = other.producer("producer", 1, 0, ms=ms)
        run.wait_ready(pa, pb)
        wait_until(lambda: bool(other.records().starts.get(0)), 120, 0.2)
        time.sleep(p.longtask_kill_after)
        holder_name = other.records().starts[0][0][1]
        holder = next(w for w in workers_b if w.name == holder_name)
        killed_at = time.monotonic()
        holder.kill()
        wait_until(lambda: len(other.records().starts.get(0, [])) >= 2, 300, 0.5)
        wait_until(
            lambda: bool(run.records().finishes.get(0)) and bool(other.records().finishes.get(0)),
            p.longtask_seconds + 300,
            1.0,
        )
        time.sleep(5)  # a late duplicate would show up now
        ra, rb = run.records(), other.records()
        runs_a = len(ra.starts.get(0, []))
        runs_b = len(rb.starts.get(0, []))
        restarted = [t for t, name in rb.starts.get(0, []) if name != holder_name]
        recover = min(restarted) - killed_at if restarted else None
        result = run.finish(
            ra,
            runs_alive=runs_a,
            runs_killed=runs_b,
            recover_s=None if recover is None else round(recover, 1),
            task_s=p.longtask_seconds,
        )
        result["sent"] = 2
        result["processed"] = int(bool(ra.finishes.get(0))) + int(bool(rb.finishes.get(0)))
        result["lost"] = 2 - result["processed"]
        result["duplicated"] = (runs_a - 1) + max(0, runs_b - 2)
        result["peak_rss_mb"] = round(
            max(
                (x.peak_rss_kb for x in run.agents + other.agents if x.role != "producer"),
                default=0,
            )
            / 1024,
            1,
        )
        result["ok"] = runs_a == 1 and runs_b == 2 and result["lost"] == 0
        return result
    finally:
        other.close()


def _log_summary(paths: list[Path]) -> dict[str, Any]:
    """Count the log records (WARNING and up) of the workers, by event name, and tracebacks."""
    events: Counter[str] = Counter()
    tracebacks = 0
    record = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (WARNING|ERROR|CRITICAL) (\S+): (\S+)")
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("Traceback"):
                tracebacks += 1
            match = record.match(line)
            if match:
                events[match.group(3).rstrip(":")] += 1
    return {"log_records": sum(events.values()), "tracebacks": tracebacks, "events": dict(events)}


def scenario_badinput(run: Run) -> dict[str, Any]:
    """Bad messages among good ones; each must end in its documented outcome with one log
    line, and the worker must keep its pace: the good messages are consumed once without bad
    input (channel A) and once with it (channel B), and the two rates compared.

    recover_s is not meaningful here (None); `rate_ratio` is the dirty rate over the clean one.
    """
    p = run.params
    name = run.broker.name
    if name == "memory":
        agent = run.memory(
            "memory",
            ["--mode", "badinput", "--count", str(p.badinput_good), "--bad-each",
             str(p.badinput_each), "--ms", "0"],
        )  # fmt: skip
        agent.wait_line("exit", 300)
        records = run.records()
        logs = _log_summary([agent.log])
        bad = len(bad_input.MEMORY_KINDS) * p.badinput_each
        result = run.finish(records, recover_s=None, bad_sent=bad, alive=True, **logs)
        result["sent"] = p.badinput_good
        result["processed"] = sum(1 for s in range(p.badinput_good) if s in records.finishes)
        result["lost"] = p.badinput_good - result["processed"]
        result["ok"] = result["lost"] == 0 and "exit" in " ".join(agent.lines)
        return result
    kinds = {
        "redis": bad_input.REDIS_KINDS,
        "amqp": bad_input.AMQP_KINDS,
        "pubsub": bad_input.PUBSUB_KINDS,
    }[name]
    clean = Run("badinput", run.broker, run.impl, run.params, run.dir.parent)
    clean.dir = run.dir / "clean"
    clean.dir.mkdir(exist_ok=True)
    run.broker.prepare(clean.channel)
    run.broker.prepare(run.channel, dead_letters=True)
    try:
        rates = {}
        refused: dict[str, str] = {}
        for label, target in (("clean", clean), ("dirty", run)):
            # The good messages in two halves; on the dirty channel the bad ones in between.
            half = p.badinput_good // 2
            first = target.producer("producer", half, 0, ms=0)
            first.wait_line("done", 300)
            if label == "dirty":
                refused = _inject(run, kinds * p.badinput_each)
            second = target.producer("producer2", p.badinput_good - half, 0, ms=0, start=half)
            second.wait_line("done", 300)
            worker = target.worker("w1")
            wait_until(lambda t=target: t.records().all_finished(), 300, 0.2)
            # From the first good message done to the last: the worker's start-up (a second or
            # two on a loaded machine, against a few seconds of work) is no part of its pace.
            done = sorted(
                t for seq, times in target.records().finishes.items() if seq >= 0 for t, _ in times
            )
            rates[label] = (len(done) - 1) / max(done[-1] - done[0], 1e-3) if done else 0.0
            if label == "dirty":
                # Dead-lettered: every kind expected to be, less the ones the broker refused.
                expected_dead = (
                    sum(1 for k in kinds if k.expect == "dead" and k.kind not in refused)
                    * p.badinput_each
                )
                # The unroutable ones go round a few times before they are dead-lettered.
                outcome = _await_bad_outcome(run, expected_dead, 90.0)
                alive = worker.alive
                worker.terminate(60)
        records = run.records()
        logs = _log_summary([a.log for a in run.agents if a.name.startswith("w")])
        bad = len(kinds) * p.badinput_each
        # Valid after all (seq < -1): processed once each; seq -1 is the JSON the unroutable
        # and malformed kinds carry, which no actor may ever run.
        processed_bad = len([s for s in records.finishes if s < -1])
        expected_processed = sum(1 for k in kinds if k.expect == "processed")
        wrongly_processed = len(records.finishes.get(-1, []))
        result = run.finish(
            records,
            recover_s=None,
            bad_sent=bad,
            expected_dead=expected_dead,
            processed_bad=processed_bad,
            expected_processed=expected_processed,
            wrongly_processed=wrongly_processed,
            refused_by_broker=refused,
            alive=alive,
            rate_clean=round(rates["clean"], 1),
            rate_dirty=round(rates["dirty"], 1),
            rate_ratio=round(rates["dirty"] / rates["clean"], 2),
            **outcome,
            **logs,
        )
        result["ok"] = (
            result["lost"] == 0
            and alive
            and outcome.get("left_in_queue", 0) == 0
            and wrongly_processed == 0
            and result["rate_ratio"] >= 0.5
        )
        return result
    finally:
        clean.close()


def _inject(run: Run, kinds: list[bad_input.BadMessage]) -> dict[str, str]:
    broker = run.broker.controller
    name = run.broker.name
    if name == "redis":
        keys = [k for k in broker.stream_keys(run.channel) if not is_dead_letter_key(k)]
        bad_input.inject_redis(broker, keys[0], kinds)
        return {}
    if name == "amqp":
        return bad_input.inject_amqp(broker.url, run.channel, kinds)
    return bad_input.inject_pubsub(broker, run.channel, kinds)


def _await_bad_outcome(run: Run, expected_dead: int, timeout: float) -> dict[str, Any]:
    """Poll where the bad messages went until the expected number is dead-lettered and the
    queue is empty (or `timeout`), then once more a moment later (a late extra would show)."""
    total: dict[str, Any] = {"dead_lettered": 0}
    deadline = time.monotonic() + timeout
    settled_at: float | None = None
    while time.monotonic() < deadline:
        outcome = _bad_outcome(run)
        if run.broker.name == "pubsub":  # pulled and acked: the counts add up
            outcome["dead_lettered"] += total["dead_lettered"]
        total = outcome
        done = total["dead_lettered"] >= expected_dead and not total.get("left_in_queue")
        if done and settled_at is None:
            settled_at = time.monotonic()
        elif not done:
            settled_at = None
        if settled_at is not None and time.monotonic() - settled_at >= 3.0:
            break
        time.sleep(1.0)
    return total


def _bad_outcome(run: Run) -> dict[str, Any]:
    """Where the bad messages went: the dead-letter store, and what is still queued."""
    broker = run.broker.controller
    name = run.broker.name
    if name == "redis":
        keys = broker.stream_keys(run.channel)
        dead = sum(broker.xlen(k) for k in keys if is_dead_letter_key(k))
        main = sum(broker.xlen(k) for k in keys if not is_dead_letter_key(k))
        return {"dead_lettered": dead, "left_in_queue": main}
    if name == "amqp":
        return {
            "dead_lettered": int(broker.queue(f"{run.channel}.dead").get("messages") or 0),
            "left_in_queue": int(broker.queue(run.channel).get("messages") or 0),
        }
    dead = 0
    while True:
        pulled = broker.pull(f"{run.channel}-dead", 100)
        if not pulled:
            break
        dead += len(pulled)
        broker._rest(
            "POST",
            f"projects/{PROJECT}/subscriptions/{run.channel}-dead:acknowledge",
            {"ackIds": [m["ackId"] for m in pulled]},
        )
    return {"dead_lettered": dead}


def scenario_soak(run: Run) -> dict[str, Any]:
    """Many messages through one worker at a steady pace: resident memory and the number of
    asyncio tasks must stay flat after warm-up (within 10%), the Redis stream bounded (at most
    a tenth of the messages in any sample).

    recover_s is not meaningful here (None).
    """
    p = run.params
    stream_lengths: list[int] = []
    memory: list[int] = []
    if run.broker.name == "memory":
        agent = run.memory(
            "memory", ["--mode", "soak", "--count", str(p.soak_memory), "--ms", "0",
                       "--records", "samples", "--sample-interval", "0.5"],
        )  # fmt: skip
        agent.wait_line("exit", 1800)
        records = run.records()
        total = p.soak_memory
        samples = records.samples["memory"]
        processed = samples[-1][3] if samples else 0
    else:
        total = p.soak_redis
        worker = run.worker("w1", extra=["--sample-interval", "0.5", "--records", "finish"])
        run.wait_ready(worker)
        producer = run.producer("producer", total, p.soak_rate, ms=0)
        run.wait_ready(producer)
        controller = run.broker.controller
        key: str | None = None
        deadline = time.monotonic() + total / p.soak_rate + 600
        while producer.alive and time.monotonic() < deadline:
            if key is None:
                keys = [k for k in controller.stream_keys(run.channel) if not is_dead_letter_key(k)]
                key = keys[0] if keys else None
            if key is not None:
                stream_lengths.append(controller.xlen(key))
                memory.append(controller.used_memory())
            time.sleep(1.0)
        records = run.drain()
        time.sleep(2)
        worker.terminate(60)
        records = run.records()
        samples = records.samples["w1"]
        processed = records.finished_count()
    flat = _flatness([s for s in samples if s[3] > 0], total)
    result = run.finish(records, recover_s=None, **flat)
    if run.broker.name == "memory":
        result["sent"] = total
        result["processed"] = processed
        result["lost"] = total - processed
        result["duplicated"] = 0
    if stream_lengths:
        result["stream_len_max"] = max(stream_lengths)
        result["stream_len_last"] = stream_lengths[-1]
    if len(memory) >= 10:  # Redis' own memory: the fifth sample against the last tenth
        result["redis_mem_warm_mb"] = round(memory[len(memory) // 5] / 2**20, 1)
        result["redis_mem_end_mb"] = round(
            statistics.median(memory[-len(memory) // 10 :]) / 2**20, 1
        )
    # Bounded: the stream keeps at most a tenth of what went through it (a stream that keeps
    # every consumed entry ends near the total).
    bounded = result.get("stream_len_max", 0) <= total // 10
    result["ok"] = (
        result["lost"] == 0
        and flat.get("rss_growth_pct", 100) <= 10
        and flat.get("tasks_growth_pct", 100) <= 10
        and bounded
    )
    return result


def _flatness(samples: list[tuple[float, int, int, int]], total: int) -> dict[str, Any]:
    """Compare RSS and the framework's task count (all tasks but the running actors), each the
    median of its window, just after warm-up (20-30% of the messages done) with late in the run
    (80-90%). The last 10% (the worker draining the backlog) is left out."""
    if len(samples) < 6:
        return {"samples": len(samples)}
    warm = [s for s in samples if 0.2 * total <= s[3] <= 0.3 * total] or samples[1:3]
    late = [s for s in samples if 0.8 * total <= s[3] <= 0.9 * total] or samples[-3:-1]
    rss_warm = statistics.median(s[1] for s in warm)
    rss_late = statistics.median(s[1] for s in late)
    # Tasks: the median count of each window. The count swings with short-lived tasks (an
    # acknowledgement being flushed, a keep-alive round): on Redis the worker has about 16, so
    # the highest sample of a window moves by 10% with two such tasks caught in flight. A leak
    # raises the whole window, median included; the ceilings are reported beside it.
    tasks_warm = statistics.median(s[2] for s in warm)
    tasks_late = statistics.median(s[2] for s in late)
    return {
        "samples": len(samples),
        "rss_warm_mb": round(rss_warm / 1024, 1),
        "rss_end_mb": round(rss_late / 1024, 1),
        "rss_growth_pct": round(100 * (rss_late - rss_warm) / rss_warm, 1),
        "tasks_warm": tasks_warm,
        "tasks_end": tasks_late,
        "tasks_warm_max": max(s[2] for s in warm),
        "tasks_end_max": max(s[2] for s in late),
        "tasks_growth_pct": round(100 * (tasks_late - tasks_warm) / max(tasks_warm, 1), 1),
        "tasks_max": max(s[2] for s in samples),
    }


RUNNERS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "kill9": scenario_kill9,
    "rolling": scenario_rolling,
    "restart": scenario_restart,
    "partition": scenario_partition,
    "longtask": scenario_longtask,
    "badinput": scenario_badinput,
    "soak": scenario_soak,
}


def run_scenario(
    scenario: str, broker: BrokerEnv, impl: Impl, params: Params, root: Path
) -> dict[str, Any]:
    """Run one scenario; never raises (a failure is a result with `error`)."""
    broker.start()
    run = Run(scenario, broker, impl, params, root)
    started = time.monotonic()
    try:
        if scenario != "badinput":  # it declares its own, with dead-lettering
            run.broker.prepare(run.channel)
        result = RUNNERS[scenario](run)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        result = {**run.result, "error": repr(exc), "ok": False}
    finally:
        run.close()
    result["wall_s"] = round(time.monotonic() - started, 1)
    # The machine may be shared: the 1-minute load at the end of the run goes with its figures.
    result["load_1m"] = round(os.getloadavg()[0], 2)
    result["run_dir"] = (
        str(run.dir.relative_to(ROOT)) if run.dir.is_relative_to(ROOT) else str(run.dir)
    )
    return result


# -- reporting ------------------------------------------------------------------------------------

COLUMNS = ("scenario", "broker", "impl", "sent", "processed", "lost", "duplicated",
           "recover_s", "peak_rss_mb", "ok")  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def notes_of(result: dict[str, Any]) -> str:
    keys = (
        "error", "stuck_workers", "reconnected", "publish_errors", "publish_error_kinds",
        "lost_by_broker", "hung_on_sigterm", "runs_alive", "runs_killed", "dead_lettered",
        "expected_dead", "processed_bad", "expected_processed", "wrongly_processed",
        "left_in_queue", "refused_by_broker", "rate_ratio", "log_records", "tracebacks",
        "events", "rss_warm_mb", "rss_end_mb", "rss_growth_pct", "tasks_warm", "tasks_end",
        "tasks_growth_pct", "tasks_max", "stream_len_max", "redis_mem_warm_mb",
        "redis_mem_end_mb", "held", "held_back_s", "new_after_heal_s", "max_wait_s", "wall_s",
        "load_1m", "commit", "run_of",
    )  # fmt: skip
    parts = []
    for key in keys:
        value = result.get(key)
        if value in (None, [], {}, ""):
            continue
        parts.append(f"{key}={json.dumps(value) if isinstance(value, dict | list) else value}")
    return "; ".join(parts)


def table(results: list[dict[str, Any]]) -> str:
    header = "| " + " | ".join(COLUMNS) + " | notes |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for result in results:
        cells = [_cell(result.get(c)) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + f" | {notes_of(result)} |")
    return "\n".join(lines)


def comparison(runs: list[dict[str, Any]]) -> str:
    """One row per scenario and broker, one group of columns per impl (in the order they first
    appear): lost, duplicated, recover_s, peak RSS and whether the target was met."""
    impls: list[str] = []
    rows: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for run in runs:
        if run["impl"] not in impls:
            impls.append(run["impl"])
        rows.setdefault((run["scenario"], run["broker"]), {})[run["impl"]] = run
    header = ["scenario", "broker"]
    for impl in impls:
        header += [f"{impl}: lost", "dup", "recover_s", "RSS MB", "ok"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (scenario, broker), by_impl in rows.items():
        cells = [scenario, broker]
        for impl in impls:
            run = by_impl.get(impl)
            if run is None:
                cells += ["", "", "", "", ""]
                continue
            cells += [_cell(run.get(k)) for k in ("lost", "duplicated", "recover_s")]
            cells += [_cell(run.get("peak_rss_mb")), _cell(run.get("ok"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(path: Path) -> None:
    """results/NAME.md from results/NAME.json: the comparison, then every run in full."""
    document = json.loads(path.read_text())
    runs = document.get("runs", [])
    path.with_suffix(".md").write_text(
        f"# Reliability harness ({path.stem})\n\n"
        "Written by `benchmarks/reliability.py --save` (or `--report`); see benchmarks/README.md."
        "\n\n" + comparison(runs) + "\n\nEvery run:\n\n" + table(runs) + "\n"
    )


def save(results: list[dict[str, Any]], started: dt.datetime, name: str | None = None) -> Path:
    """Merge `results` into results/<name>.json (default `reliability-<date>`; a run of the
    same scenario, broker and impl is replaced) and rewrite the markdown table beside it."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name or f'reliability-{started:%Y-%m-%d}'}.json"
    document: dict[str, Any] = {"runs": []}
    if path.exists():
        document = json.loads(path.read_text())
    key: Callable[[dict[str, Any]], tuple[str, str, str]] = lambda r: (  # noqa: E731
        r["scenario"],
        r["broker"],
        r["impl"],
    )
    merged = {key(r): r for r in document.get("runs", [])}
    for result in results:
        merged[key(result)] = {
            **result,
            "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
    order = {name: i for i, name in enumerate(SCENARIOS)}
    border = {name: i for i, name in enumerate(BROKERS)}
    runs = sorted(
        merged.values(),
        key=lambda r: (order[r["scenario"]], border[r["broker"]], r["impl"] != "ours"),
    )
    document = {"machine": machine_info(), "runs": runs}
    path.write_text(json.dumps(document, indent=2) + "\n")
    write_report(path)
    return path


def machine_info() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg": list(os.getloadavg()),
        "git_commit": commit or None,
    }


# -- command line ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario", default="all", help=f"comma-separated: {', '.join(SCENARIOS)}, all"
    )
    parser.add_argument(
        "--broker", default="all", help=f"comma-separated: {', '.join(BROKERS)}, all"
    )
    parser.add_argument("--impl", default="ours", help="comma-separated: ours, baseline")
    parser.add_argument("--quick", action="store_true", help="the short sizes the tests use")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one Params field, e.g. --set partition_seconds=10",
    )
    parser.add_argument("--save", action="store_true", help="merge into benchmarks/results/")
    parser.add_argument(
        "--results", default=None, help="results file name (default reliability-<date>)"
    )
    parser.add_argument(
        "--ours-path",
        type=Path,
        default=ROOT,
        help="the checkout whose `repid` is 'ours' (e.g. a snapshot of main)",
    )
    parser.add_argument("--label", default=None, help="the impl label for ours in the results")
    parser.add_argument(
        "--report",
        default=None,
        metavar="NAME",
        help="run nothing: rewrite results/NAME.md from results/NAME.json",
    )
    parser.add_argument(
        "--server-options",
        default=None,
        metavar="JSON",
        help="keyword arguments for the servers of ours, e.g. '{\"claim_idle\": 5}'",
    )
    args = parser.parse_args(argv)
    args.scenarios = list(SCENARIOS) if args.scenario == "all" else args.scenario.split(",")
    args.brokers = list(BROKERS) if args.broker == "all" else args.broker.split(",")
    args.impls = args.impl.split(",")
    for name in args.scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}")
    for name in args.brokers:
        if name not in BROKERS:
            parser.error(f"unknown broker {name!r}")
    return args


def params_from(args: argparse.Namespace) -> Params:
    params = Params.quick() if args.quick else Params.full()
    for item in args.set:
        name, _, value = item.partition("=")
        current = getattr(params, name)
        params = replace(params, **{name: type(current)(value)})
    return params


@contextlib.contextmanager
def brokers_for(names: list[str], root: Path) -> Iterator[dict[str, BrokerEnv]]:
    envs = {name: BrokerEnv(name, root / "brokers") for name in names}
    try:
        yield envs
    finally:
        for env in envs.values():
            env.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        write_report(RESULTS_DIR / f"{args.report}.json")
        return 0
    # SIGTERM ends the run like Ctrl-C: every worker, proxy and private broker is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    params = params_from(args)
    if args.server_options:
        os.environ["REPID_RELIABILITY_SERVER_OPTIONS"] = args.server_options
    impls = [
        Impl.ours(args.ours_path) if label == "ours" else Impl.baseline() for label in args.impls
    ]
    for impl in impls:
        if impl.label == "ours" and args.label:
            impl.label = args.label
    started = dt.datetime.now(dt.timezone.utc)
    root = RUNS_DIR / f"{started:%Y%m%d-%H%M%S}"
    results = []
    with brokers_for(args.brokers, root) as envs:
        for scenario in args.scenarios:
            for broker in args.brokers:
                if broker not in APPLIES[scenario]:
                    continue
                for impl in impls:
                    print(f"== {scenario} on {broker} ({impl.label})", file=sys.stderr, flush=True)
                    result = run_scenario(scenario, envs[broker], impl, params, root)
                    results.append(result)
                    print(table([result]).splitlines()[-1], flush=True)
                    if args.save:  # after every run: a long invocation cut short keeps its runs
                        save([result], started, args.results)
    print()
    print(table(results))
    if args.save:
        path = RESULTS_DIR / f"{args.results or f'reliability-{started:%Y-%m-%d}'}.json"
        print(f"saved {path.relative_to(ROOT)}", file=sys.stderr)
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
