"""One benchmark run: publish N messages to a no-op actor, then consume them with a worker.

The script uses only the public, documented API of Repid's message layer (seed 002), so the
same file runs unchanged against this repository's package and against the published
`repid==2.1.4` baseline (see `benchmarks/baseline.sh`); whichever `repid` the interpreter
imports is the one measured.  `benchmarks/run.py` drives it; it can also be run by hand:

    PYTHONPATH=. .venv/bin/python benchmarks/workload.py --broker memory --n 20000
    .bench/baseline-venv/bin/python benchmarks/workload.py --broker memory --n 20000

Phases (each timed with `time.perf_counter`):

1. publish: N x `app.send_message_json(channel=..., payload={"n": i}, headers={"topic":
   "noop"})`, awaited one after the other, as an application would.  With `--batch`, a
   server that offers `publish_batch` gets the same messages in batches instead
   (`publish_mode` in the output says which path ran).
2. consume: `app.run_worker(messages_limit=N, register_signals=[])` until it returns.  The
   actor counts its calls so that a run which skipped messages cannot report a rate.

Output: one JSON line on stdout,
    {"impl", "broker", "n", "publish_per_s", "consume_per_s", "peak_rss_mb", ...}.
On failure the line carries "error" instead of rates, the traceback goes to stderr and the
exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import inspect
import json
import os
import platform
import resource
import sys
import time
import traceback
import uuid
from typing import Any

import repid

# Counted by the actor; checked against N after the consume phase.
_calls = 0

INSTRUMENT_MODES = ("none", "otel-api", "otel-sdk", "prometheus", "otel-sdk+prometheus")


def _instrument(app: Any, mode: str) -> None:
    """Switch observability on (ours only; the baseline has none of it).

    - `otel-api`: `repid.opentelemetry.instrument(app)` with the OpenTelemetry API alone: the
      SDK is made unimportable first, as if it were not installed;
    - `otel-sdk`: the SDK's TracerProvider with a BatchSpanProcessor (its exporter drops the
      batches, so exporting costs nothing) and a MeterProvider with an in-memory reader;
    - `prometheus`: `repid.prometheus.instrument(app)` on the default registry.
    """
    if mode == "none":
        return
    if "otel-api" in mode:
        sys.modules["opentelemetry.sdk"] = None  # type: ignore[assignment]
        import repid.opentelemetry

        repid.opentelemetry.instrument(app)
    if "otel-sdk" in mode:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Drop(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        import repid.opentelemetry

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        repid.opentelemetry.instrument(
            app, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
    if "prometheus" in mode:
        import repid.prometheus

        repid.prometheus.instrument(app)


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=("memory", "redis", "amqp", "pubsub"), default="memory")
    parser.add_argument("--n", type=int, default=20_000, help="messages to publish and consume")
    parser.add_argument("--url", default=None, help="broker URL (redis/amqp); else from env")
    parser.add_argument(
        "--channel", default=None, help="channel name (default: a fresh random one per run)"
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help="publish through server.publish_batch when the server has one",
    )
    parser.add_argument("--batch-size", type=int, default=1000, help="messages per batch")
    parser.add_argument("--impl", default=None, help="label for the output (default: detected)")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed for each phase"
    )
    parser.add_argument(
        "--instrument",
        default="none",
        choices=INSTRUMENT_MODES,
        help="ours only: observability switched on (see _instrument)",
    )
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def _detect_impl() -> tuple[str, str]:
    """Return (label, version) of the imported `repid`: the repository checkout or a release."""
    path = os.path.dirname(os.path.abspath(repid.__file__ or ""))
    in_site_packages = "site-packages" in path.split(os.sep)
    version = getattr(repid, "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version("repid")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
    if in_site_packages:
        return f"repid=={version}", str(version)
    return "ours", str(version)


def _make_server(broker: str, url: str | None) -> Any:
    """Build the server for `broker`; imported lazily so a missing backend only fails its run."""
    if broker == "memory":
        return repid.InMemoryServer()
    if broker == "redis":
        url = url or os.environ.get("REPID_TEST_REDIS_URL")
        if not url:
            raise SystemExit("--broker redis needs --url or REPID_TEST_REDIS_URL")
        return repid.RedisServer(url)
    if broker == "pubsub":
        return _make_pubsub_server(url or os.environ.get("REPID_TEST_PUBSUB_HOST"))
    url = url or os.environ.get("REPID_TEST_AMQP_URL")
    if not url:
        raise SystemExit("--broker amqp needs --url or REPID_TEST_AMQP_URL")
    return repid.AmqpServer(url)


def _make_pubsub_server(host: str | None) -> Any:
    """`PubsubServer` on the emulator at `host` (HOST:PORT).

    Adapter: the two packages construct it differently. Ours takes `project=` and
    `emulator_host=`; the published one takes an endpoint `dsn` and `default_project=` (names
    read from its public signature).
    """
    if not host:
        raise SystemExit("--broker pubsub needs --url HOST:PORT or REPID_TEST_PUBSUB_HOST")
    project = os.environ.get("PUBSUB_PROJECT_ID", "repid-bench")
    parameters = inspect.signature(repid.PubsubServer.__init__).parameters
    if "default_project" in parameters:
        return repid.PubsubServer(
            f"http://{host}/v1", default_project=project, use_google_auth=False
        )
    return repid.PubsubServer(project=project, emulator_host=host)


def _message_data_type() -> Any:
    """`MessageData`, the record `publish_batch` takes.

    Adapter: the name is exported from `repid` by the published package and lives in
    `repid.data` in ours; only the batch path needs it.
    """
    found = getattr(repid, "MessageData", None)
    if found is None:
        from repid.data import MessageData as found
    return found


async def _publish_batched(server: Any, channel: str, n: int, batch_size: int) -> None:
    """Publish n messages through `server.publish_batch(channel=..., messages=[...])`.

    The payload bytes are what `send_message_json` would produce for the same dict, so the
    consumer sees identical messages in both modes.
    """
    message_data = _message_data_type()
    for start in range(0, n, batch_size):
        batch = [
            message_data(
                payload=json.dumps({"n": i}).encode(),
                headers={"topic": "noop"},
                content_type="application/json",
            )
            for i in range(start, min(start + batch_size, n))
        ]
        await server.publish_batch(channel=channel, messages=batch)


async def _run(args: argparse.Namespace, impl: str) -> dict[str, Any]:
    global _calls
    channel = args.channel or f"bench-{uuid.uuid4().hex[:12]}"
    count = args.n

    app = repid.Repid(title="repid benchmark")
    server = _make_server(args.broker, args.url)
    app.servers.register_server("bench", server, is_default=True)

    router = repid.Router()

    @router.actor(channel=channel)
    async def noop(n: int) -> None:
        global _calls
        _calls += 1

    app.include_router(router)
    _instrument(app, args.instrument)

    use_batch = args.batch and hasattr(server, "publish_batch")
    publish_mode = "batch" if use_batch else "single"
    send_json = app.send_message_json
    headers = {"topic": "noop"}

    async def publish() -> None:
        if use_batch:
            await _publish_batched(server, channel, count, args.batch_size)
            return
        for i in range(count):
            await send_json(channel=channel, payload={"n": i}, headers=headers)

    # For the in-memory broker both phases must share one connection (one process, one
    # store); the network brokers do the same here so that the two impls are timed alike.
    async with app.servers.default.connection():
        # Wall time is the figure; CPU time of this process is reported beside it because it
        # varies far less when other processes compete for the machine's two cores.
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.wait_for(publish(), timeout=args.timeout)
        publish_s, publish_cpu_s = time.perf_counter() - t0, time.process_time() - c0

        _calls = 0
        t0, c0 = time.perf_counter(), time.process_time()
        info = await asyncio.wait_for(
            app.run_worker(messages_limit=count, register_signals=[]), timeout=args.timeout
        )
        consume_s, consume_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    processed = getattr(info, "processed", None)
    if _calls != count:
        raise RuntimeError(f"actor ran {_calls} times for {count} messages (processed={processed})")

    return {
        "impl": impl,
        "broker": args.broker,
        "n": count,
        "publish_per_s": round(count / publish_s, 1),
        "consume_per_s": round(count / consume_s, 1),
        "peak_rss_mb": _peak_rss_mb(),
        "publish_mode": publish_mode,
        "publish_per_cpu_s": round(count / publish_cpu_s, 1) if publish_cpu_s else None,
        "consume_per_cpu_s": round(count / consume_cpu_s, 1) if consume_cpu_s else None,
        "publish_s": round(publish_s, 4),
        "consume_s": round(consume_s, 4),
        "publish_cpu_s": round(publish_cpu_s, 4),
        "consume_cpu_s": round(consume_cpu_s, 4),
        "processed": processed,
        "channel": channel,
        "instrument": args.instrument,
    }


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    divisor = 1024 * 1024 if sys.platform == "darwin" else 1024
    return round(rss / divisor, 1)


def _environment(version: str) -> dict[str, Any]:
    try:
        pydantic_version: str | None = importlib.metadata.version("pydantic")
    except importlib.metadata.PackageNotFoundError:
        pydantic_version = None
    return {
        "repid_version": version,
        "repid_path": os.path.dirname(os.path.abspath(repid.__file__ or "")),
        "python": platform.python_version(),
        "pydantic": pydantic_version,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    detected, version = _detect_impl()
    impl = args.impl or detected
    try:
        result = asyncio.run(_run(args, impl))
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        traceback.print_exc()
        error = {"impl": impl, "broker": args.broker, "n": args.n, "error": repr(exc)}
        print(json.dumps({**error, **_environment(version)}), flush=True)
        return 1
    print(json.dumps({**result, **_environment(version)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
