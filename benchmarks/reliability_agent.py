"""The processes the reliability harness starts: workers, producers, and in-memory runs.

It uses only the public API of Repid's message layer (seed 002), like `workload.py`, so the
same file runs against this repository's package and against the published `repid==2.1.4`
(whichever `repid` the interpreter imports). `benchmarks/reliability.py` drives it.

    python benchmarks/reliability_agent.py worker   --broker redis --url URL --channel C --record F
    python benchmarks/reliability_agent.py producer --broker redis --url URL --channel C \
        --record F --count 10000 --rate 500
    python benchmarks/reliability_agent.py memory   --mode soak --count 1000000 --record F

Records (one line each, appended with one `os.write`, so a SIGKILL loses none that returned;
times are `time.monotonic()`, one clock for every process on the machine):

    S seq attempt t        the actor started message `seq` (worker)
    F seq attempt t        the actor finished it; the worker acks right after (worker)
    P seq attempt t        the producer's publish of `seq` returned (confirmed by the broker)
    E seq attempt t what   the producer's publish raised; it tries again after a backoff
    T t rss_kb tasks done  a sample: resident memory, asyncio tasks, messages finished

A worker prints `ready` when it starts consuming; a producer prints `done` when it is through
(all `--count` messages, or as soon as `--stop-file` exists: those under way still finish).
Payloads are `{"seq": n, "attempt": k, "ms": d}` sent to the actor `work` (topic "work").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

# workload.py lives beside this file and builds each package's servers (adapters included).
from workload import _make_server

import repid

TOPIC = "work"


class Recorder:
    """Appends record lines to a file with one unbuffered write each."""

    def __init__(self, path: str | None) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if path else None

    def write(self, kind: bytes, seq: int, attempt: int, extra: bytes = b"") -> None:
        if self._fd is not None:
            line = b"%s %d %d %.6f%s\n" % (kind, seq, attempt, time.monotonic(), extra)
            os.write(self._fd, line)

    def sample(self, done: int, running: int = 0) -> None:
        """A `T` line; the `running` actors are not counted as tasks, so what is left is the
        framework's own tasks (a leak shows there, whatever the load)."""
        if self._fd is not None:
            tasks = len(asyncio.all_tasks()) - running
            line = b"T %.6f %d %d %d\n" % (time.monotonic(), rss_kb(), tasks, done)
            os.write(self._fd, line)


def rss_kb() -> int:
    """Current resident set size of this process in KiB."""
    with open("/proc/self/statm", "rb") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_rss_kb() -> int:
    """The highest resident set size of this process in KiB (`VmHWM`). Not `ru_maxrss`: Linux
    keeps that across execve, so it would report the harness's size at the fork."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1])
    return 0


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class _ExtraFormatter(logging.Formatter):
    """The usual line, then the record's structured fields (`extra=`) as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if extra:
            fields = " ".join(f"{k}={v!r}" for k, v in extra.items())
            head, sep, rest = text.partition("\n")
            text = f"{head} [{fields}]{sep}{rest}"
        return text


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _ExtraFormatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])


SERVER_OPTIONS = json.loads(os.environ.get("REPID_RELIABILITY_SERVER_OPTIONS") or "{}")
"""Keyword arguments for the server (experiments with non-default settings; ours only)."""


def _app(broker: str, url: str | None) -> Any:
    app = repid.Repid(title="repid reliability harness")
    if SERVER_OPTIONS:
        server = {
            "redis": lambda: repid.RedisServer(url, **SERVER_OPTIONS),
            "amqp": lambda: repid.AmqpServer(url, **SERVER_OPTIONS),
            "pubsub": lambda: repid.PubsubServer(
                os.environ.get("PUBSUB_PROJECT_ID"), emulator_host=url, **SERVER_OPTIONS
            ),
        }[broker]()
    else:
        server = _make_server(broker, url)
    app.servers.register_server("main", server, is_default=True)
    return app


def _actor(channel: str, recorder: Recorder, counter: list[int], records: str = "all") -> Any:
    """The actor `work`; `records`: "all" (S and F lines), "finish" (F only), "samples" (none:
    long soaks count in memory)."""
    router = repid.Router()
    starts = records == "all"
    finishes = records in ("all", "finish")

    @router.actor(channel=channel, name=TOPIC)
    async def work(seq: int, attempt: int = 0, ms: float = 5.0) -> None:
        if starts:
            recorder.write(b"S", seq, attempt)
        counter[1] += 1
        try:
            await asyncio.sleep(ms / 1000)
        finally:
            counter[1] -= 1
        if finishes:
            recorder.write(b"F", seq, attempt)
        counter[0] += 1

    return router


async def _sampler(recorder: Recorder, counter: list[int], interval: float) -> None:
    while True:
        recorder.sample(counter[0], counter[1])
        await asyncio.sleep(interval)


# -- worker ---------------------------------------------------------------------------------------


async def run_worker(args: argparse.Namespace) -> None:
    recorder = Recorder(args.record)
    counter = [0, 0]  # actors finished, actors running
    app = _app(args.broker, args.url)
    app.include_router(_actor(args.channel, recorder, counter, args.records))
    sampler = asyncio.get_running_loop().create_task(
        _sampler(recorder, counter, args.sample_interval)
    )

    async def announce() -> None:
        # run_worker subscribes within a moment of being called; the harness only needs to
        # know the process got this far (it watches the records for real progress).
        await asyncio.sleep(0.5)
        print("ready", flush=True)

    announcer = asyncio.get_running_loop().create_task(announce())
    kwargs: dict[str, Any] = {"tasks_limit": args.tasks_limit}
    if args.graceful is not None:
        kwargs["graceful_shutdown_time"] = args.graceful
    try:
        async with app.servers.default.connection():
            await app.run_worker(**kwargs)
    finally:
        sampler.cancel()
        announcer.cancel()
        recorder.sample(counter[0], counter[1])
        print(f"exit peak_rss_kb={peak_rss_kb()}", flush=True)


# -- producer -------------------------------------------------------------------------------------


async def run_producer(args: argparse.Namespace) -> None:
    recorder = Recorder(args.record)
    app = _app(args.broker, args.url)
    headers = {"topic": TOPIC}
    send = app.send_message_json
    limit = asyncio.Semaphore(args.concurrency)
    deadline_per_message = args.give_up

    async def publish(seq: int) -> None:
        attempt = 0
        started = time.monotonic()
        while True:
            try:
                await send(
                    channel=args.channel,
                    payload={"seq": seq, "attempt": attempt, "ms": args.ms},
                    headers=headers,
                )
            except Exception as exc:
                what = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
                recorder.write(b"E", seq, attempt, b" " + what.encode())
                if time.monotonic() - started > deadline_per_message:
                    return
                attempt += 1
                await asyncio.sleep(args.retry_delay)
                continue
            recorder.write(b"P", seq, attempt)
            return

    async def guarded(seq: int) -> None:
        try:
            await publish(seq)
        finally:
            limit.release()

    tasks: set[asyncio.Task[None]] = set()
    async with app.servers.default.connection():
        print("ready", flush=True)
        start = time.monotonic()
        for i in range(args.count):
            if args.stop_file and i % 20 == 0 and os.path.exists(args.stop_file):
                break  # asked to stop: publish no more, finish the ones under way
            if args.rate > 0:
                due = start + i / args.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await limit.acquire()
            task = asyncio.get_running_loop().create_task(guarded(args.start + i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.wait(set(tasks))
    print("done", flush=True)


# -- everything in one process (the in-memory broker) ---------------------------------------------


async def run_memory(args: argparse.Namespace) -> None:
    """In-memory scenarios: publisher and worker share the process (and the broker)."""
    recorder = Recorder(args.record)
    counter = [0, 0]  # actors finished, actors running
    app = _app("memory", None)
    app.include_router(_actor(args.channel, recorder, counter, args.records))
    server = app.servers.default
    async with server.connection():
        if args.mode == "soak":
            await _memory_soak(args, app, recorder, counter)
        elif args.mode == "longtask":
            await app.send_message_json(
                channel=args.channel,
                payload={"seq": 0, "attempt": 0, "ms": args.ms},
                headers={"topic": TOPIC},
            )
            await asyncio.wait_for(app.run_worker(messages_limit=1, register_signals=[]), None)
        elif args.mode == "badinput":
            await _memory_bad_input(args, app, recorder, counter)
    print(f"exit peak_rss_kb={peak_rss_kb()}", flush=True)


async def _memory_soak(
    args: argparse.Namespace, app: Any, recorder: Recorder, counter: list[int]
) -> None:
    """Publish `count` messages in rounds while one worker consumes them; sample as it goes.

    The publisher stays at most `backlog` messages ahead of the worker, so the broker's queue
    stays short and what grows (if anything) is the worker's own state.
    """
    worker = asyncio.get_running_loop().create_task(
        app.run_worker(messages_limit=args.count, register_signals=[], tasks_limit=args.tasks_limit)
    )
    sampler = asyncio.get_running_loop().create_task(
        _sampler(recorder, counter, args.sample_interval)
    )
    send = app.send_message_json
    headers = {"topic": TOPIC}
    sent = 0
    backlog = args.backlog
    # Samples by progress as well as by time: a fast machine finishes a short soak within a
    # few time samples, and the flatness windows (20-30%, 80-90% done) need samples in them.
    every = max(1, args.count // 50)
    next_sample = every
    while sent < args.count:
        if counter[0] >= next_sample:
            recorder.sample(counter[0], counter[1])
            next_sample = counter[0] + every
        if sent - counter[0] >= backlog:
            await asyncio.sleep(0.001)
            continue
        for seq in range(sent, min(args.count, sent + 100)):
            await send(
                channel=args.channel,
                payload={"seq": seq, "attempt": 0, "ms": args.ms},
                headers=headers,
            )
        sent = min(args.count, sent + 100)
        await asyncio.sleep(0)  # the worker's turn
    await worker
    sampler.cancel()
    recorder.sample(counter[0], counter[1])


async def _memory_bad_input(
    args: argparse.Namespace, app: Any, recorder: Recorder, counter: list[int]
) -> None:
    """Good messages with bad ones in between, through the public `send_message`."""
    kinds: dict[str, tuple[bytes, dict[str, str] | None]] = {
        "not-json": (b"\xff{not json", {"topic": TOPIC}),
        "wrong-types": (b'{"seq": "abc", "attempt": []}', {"topic": TOPIC}),
        "no-topic": (b'{"seq": 1}', None),
        "unknown-topic": (b'{"seq": 1}', {"topic": "nobody-listens"}),
        "empty": (b"", {"topic": TOPIC}),
    }
    good = args.count
    every = max(1, good // (len(kinds) * args.bad_each))
    names = list(kinds)
    for i in range(good):
        await app.send_message_json(
            channel=args.channel,
            payload={"seq": i, "attempt": 0, "ms": args.ms},
            headers={"topic": TOPIC},
        )
        if i % every == 0 and i // every < len(names) * args.bad_each:
            payload, headers = kinds[names[(i // every) % len(names)]]
            await app.send_message(channel=args.channel, payload=payload, headers=headers)

    async def stop_when_done() -> None:
        while counter[0] < good:
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # let unrouted messages run out their redeliveries
        signal.raise_signal(signal.SIGTERM)  # the worker's own graceful shutdown

    stopper = asyncio.get_running_loop().create_task(stop_when_done())
    await app.run_worker()
    stopper.cancel()


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("worker", "producer", "memory"))
    parser.add_argument("--broker", choices=("memory", "redis", "amqp", "pubsub"), default="memory")
    parser.add_argument("--url", default=None)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--record", default=None)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--tasks-limit", type=int, default=1000)
    parser.add_argument("--graceful", type=float, default=None)
    parser.add_argument("--sample-interval", type=float, default=1.0)
    parser.add_argument("--records", choices=("all", "finish", "samples"), default="all")
    # producer
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="messages/s (0: as fast as possible)"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ms", type=float, default=5.0, help="actor duration per message")
    parser.add_argument("--retry-delay", type=float, default=0.5)
    parser.add_argument("--give-up", type=float, default=300.0)
    parser.add_argument("--stop-file", default=None, help="stop publishing once this file exists")
    # memory
    parser.add_argument("--mode", choices=("soak", "longtask", "badinput"), default="soak")
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--bad-each", type=int, default=20)
    return parser.parse_args(argv)


def _exit_with_the_harness() -> None:
    """End this process when the harness that started it is gone (killed without cleanup):
    no orphaned worker goes on consuming after the run."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(70)

    threading.Thread(target=watch, name="harness-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    _configure_logging(args.log_level)
    _exit_with_the_harness()
    role: dict[str, Callable[[argparse.Namespace], Any]] = {
        "worker": run_worker,
        "producer": run_producer,
        "memory": run_memory,
    }
    # SIGTERM reaches the worker's own handler (graceful shutdown); elsewhere it just exits.
    if args.role != "worker":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(role[args.role](args))


if __name__ == "__main__":
    main()
