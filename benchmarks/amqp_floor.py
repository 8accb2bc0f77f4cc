"""Diagnostic: RabbitMQ's latency floor on this machine, with the thinnest Python client we have.

    bash scripts/brokers.sh start rabbitmq && source .brokers/env
    .venv/bin/python benchmarks/amqp_floor.py --rate 5000 --rate 10000 --seconds 10 \
        --producer raw,repid --consumer raw,repid

The same shape as `compare.py`'s latency workload (a producer process sending at a steady
rate with publisher confirms, a consumer in its own process, the time from the send call to
the consumer seeing the message), with two kinds of each side:

- raw: none of repid above the AMQP client. The producer calls `AmqpClient.send` with the
  bytes `AmqpServer` would publish; the consumer settles each delivery in the client's
  callback (no subscriber, runner, task or actor) and reads the send time from the payload.
- repid: `amqp_tail.py`'s producer (`send_message_json`) and worker (`run_worker`, an actor).

Each pair given runs in turn, so a layer's share of the tail shows as the difference between
pairs of one invocation. raw/raw is a lower bound for any client written in Python on our
protocol package; what remains there is the broker's share and the machine's. A diagnostic,
not a benchmark: claims come from `compare.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR / "peers"))

import _common  # noqa: E402  (the steady-rate loop and payloads of compare.py's adapters)
import amqp_tail  # noqa: E402  (the repid worker and producer, for the mixed pairs)
import run as harness  # noqa: E402  (queue declaration through the management API)

QUEUE = amqp_tail.QUEUE  # one queue for both scripts, so that their roles can be paired
CREDIT = 1000


async def _connect() -> Any:
    from repid.connections.amqp.transport import AmqpClient, parse_amqp_url

    return await AmqpClient.connect(parse_amqp_url(os.environ["REPID_TEST_AMQP_URL"]))


async def _consumer(n: int, out: str, ready: str) -> None:
    from repid.connections.amqp.protocol.performatives import Accepted

    client = await _connect()
    latencies: list[float] = []
    done = asyncio.Event()
    accepted = Accepted()

    def on_message(link: Any, delivery: Any) -> None:
        now = time.monotonic()
        data = delivery.payload
        body = json.loads(data[data.rindex(b'{"i"') :])
        client.settle(link, delivery, accepted)
        if link.credit <= CREDIT // 2:
            client.flow(link, CREDIT)
        if body["w"]:
            if not os.path.exists(ready):
                Path(ready).write_text("1")
            return
        latencies.append(now - body["t"])
        if len(latencies) >= n:
            done.set()

    link = await client.attach_receiver("floor", f"/queues/{QUEUE}", on_message)
    client.flow(link, CREDIT)
    await done.wait()
    with open(out, "w") as file:
        json.dump(latencies, file)
    os._exit(0)


async def _producer(rate: float, seconds: float, ready: str) -> None:
    from repid.connections.amqp.addressing import encode_plain_message, new_message_id

    client = await _connect()
    link = await client.attach_sender("floor-producer", None)
    to = f"/queues/{QUEUE}"
    headers = {"topic": "noop"}

    async def send(payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        message = encode_plain_message(new_message_id(), to, body, headers, "application/json")
        assert message is not None
        await client.send(link, message)

    await _common.send_at_rate(send, rate, seconds, ready)


def _run(
    rate: float, seconds: float, producer_kind: str, consumer_kind: str, prefix: list[str]
) -> None:
    n = int(rate * seconds)
    records = amqp_tail.run_pair(
        [*prefix, sys.executable, __file__, f"{consumer_kind}-consumer", str(n)],
        [sys.executable, __file__, f"{producer_kind}-producer", str(rate), str(seconds)],
    )
    # amqp_tail's worker writes (sent, latency, arrival) records; the raw consumer latencies.
    latencies = [r[1] for r in records] if consumer_kind == "repid" else records
    harness.amqp_delete(os.environ["REPID_TEST_AMQP_URL"], QUEUE)
    print(
        f"rate {rate:,.0f}/s for {seconds:.0f} s, {len(latencies):,} messages, "
        f"{producer_kind} producer, {consumer_kind} consumer"
        + (f" (started with {shlex.join(prefix)})" if prefix else "")
    )
    print("  latency ", amqp_tail._percentiles(latencies), flush=True)


ROLES: dict[str, Any] = {
    "raw-consumer": _consumer,
    "repid-consumer": amqp_tail._worker,
    "raw-producer": _producer,
    "repid-producer": amqp_tail._producer,
}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ROLES:
        role, args = ROLES[sys.argv[1]], sys.argv[2:]
        if sys.argv[1].endswith("consumer"):
            asyncio.run(role(int(args[0]), args[1], args[2]))
        else:
            asyncio.run(role(float(args[0]), float(args[1]), args[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, action="append")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--producer", default="raw", help="raw, repid or raw,repid")
    parser.add_argument("--consumer", default="raw", help="raw, repid or raw,repid")
    parser.add_argument(
        "--consumer-prefix",
        default="",
        help='a command the consumer is started under, e.g. "chrt -f 1" (real-time '
        "scheduling: how much of the tail is the consumer waiting for a core)",
    )
    args = parser.parse_args()
    prefix = shlex.split(args.consumer_prefix)
    for rate in args.rate or [10000.0]:
        for producer_kind in args.producer.split(","):
            for consumer_kind in args.consumer.split(","):
                _run(rate, args.seconds, producer_kind, consumer_kind, prefix)


if __name__ == "__main__":
    main()
