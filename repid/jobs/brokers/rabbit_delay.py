"""Delayed delivery inside RabbitMQ: a binary chain of fixed-TTL queues.

RabbitMQ has no per-message delay without a plugin, and the usual substitute - a per-message
TTL on one waiting queue that dead-letters to the target - breaks twice: a queue only expires
its head, so a long delay blocks every shorter one queued behind it, and TTLs are capped near
49 days. This chain has neither problem:

* 26 levels, k = 0 ... 25. Level k is a quorum queue `repid.delay.KK.wait` whose
  `x-message-ttl` is 100 ms x 2^k (100 ms ... 38.8 days) and a topic exchange
  `repid.delay.KK`. Every message in one level waits the same time, so a queue's head is
  always the first to expire: no head-of-line blocking.
* A delay is rounded up to whole 100 ms units and written in binary into the routing key, one
  word per level from the highest: `0.0.1.0.....1.QUEUE`. The message is published to the
  exchange `repid.delay`, which passes it to the top level's; each level's exchange sends it
  into its waiting queue when its bit is 1,
  or on to the next level's exchange when it is 0; a waiting queue dead-letters (at least
  once) to the next level's exchange, keeping the routing key. After level 0 the exchange
  `repid.delay.deliver` routes it to QUEUE (each declared queue is bound there).
* So a message passes at most one queue per set bit: the delay is exact to the 100 ms unit
  (rounded up: never early), at a few milliseconds per hop. The longest delay the chain holds
  is 2^26 - 1 units, about 77.7 days; a longer one reaches its queue early carrying its
  `job-due` header, and the worker sends it round again for the rest.
* Everything is durable (quorum queues, at-least-once dead-lettering): delayed jobs survive a
  worker crash and a broker restart, and TTLs keep counting while the broker is down (a job
  overdue at restart is delivered at once).

The chain (54 exchanges and queues, 53 bindings) is declared through the AMQP management node
by each `RabbitMessageBroker` the first time it declares a queue or publishes a delayed job
(declaring is idempotent: about 0.1 s when it exists, 0.6 s the very first time), and again if
a delayed publish finds it missing. It needs nothing configured
in RabbitMQ; the user must be allowed to declare exchanges and queues named `repid.delay.*`.
A queue's name must fit in a routing key beside the 52 bits' characters (at most 200 bytes)
and must not have `*` or `#` as a dot-separated word.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

__all__ = [
    "DELIVER_EXCHANGE",
    "ENTRY_EXCHANGE",
    "LEVELS",
    "MAX_DELAY",
    "UNIT",
    "delay_address",
    "level_exchange",
    "level_queue",
    "queue_binding",
    "topology",
]

UNIT = 0.1
"""Seconds per delay unit (the chain's resolution)."""
LEVELS = 26
"""Levels of the chain: level k waits UNIT * 2**k seconds."""
MAX_DELAY = (2**LEVELS - 1) * UNIT
"""The longest delay the chain holds, in seconds (about 77.7 days)."""
DELIVER_EXCHANGE = "repid.delay.deliver"
"""Routes a message that has waited to its queue."""
ENTRY_EXCHANGE = "repid.delay"
"""Where delayed messages are published."""
_MAX_QUEUE_NAME = 255 - 2 * LEVELS


def level_exchange(level: int) -> str:
    """The topic exchange of `level`."""
    return f"repid.delay.{level:02d}"


def level_queue(level: int) -> str:
    """The waiting queue of `level`."""
    return f"repid.delay.{level:02d}.wait"


def _next_exchange(level: int) -> str:
    return level_exchange(level - 1) if level > 0 else DELIVER_EXCHANGE


def _check_queue_name(queue: str) -> None:
    if len(queue.encode()) > _MAX_QUEUE_NAME:
        raise ValueError(
            f"queue name {queue!r} is too long for delayed jobs on RabbitMQ (at most "
            f"{_MAX_QUEUE_NAME} bytes)"
        )
    if any(word in ("*", "#") for word in queue.split(".")):
        raise ValueError(
            f"queue name {queue!r} has '*' or '#' as a word, which RabbitMQ's topic routing of "
            "delayed jobs cannot tell apart from a wildcard"
        )


def delay_address(queue: str, delay: float) -> str:
    """The AMQP address (`/exchanges/repid.delay.25/ROUTING-KEY`) that delivers a message to
    `queue` after `delay` seconds (rounded up to the unit; capped at `MAX_DELAY`)."""
    _check_queue_name(queue)
    units = min(max(1, math.ceil(round(delay / UNIT, 6))), 2**LEVELS - 1)
    bits = ".".join("1" if units >> level & 1 else "0" for level in range(LEVELS - 1, -1, -1))
    routing_key = f"{bits}.{queue}"
    return f"/exchanges/{ENTRY_EXCHANGE}/{quote(routing_key, safe='')}"


def _exchange_body() -> dict[str, Any]:
    return {"type": "topic", "durable": True, "auto_delete": False, "internal": False}


def topology() -> list[tuple[str, str, dict[str, Any]]]:
    """The management requests (method, path, body) that declare the chain, in order."""
    requests: list[tuple[str, str, dict[str, Any]]] = []
    for level in range(LEVELS):
        ttl_ms = round(UNIT * 1000) * 2**level
        requests.append(("PUT", f"/exchanges/{level_exchange(level)}", _exchange_body()))
        requests.append(
            (
                "PUT",
                f"/queues/{level_queue(level)}",
                {
                    "durable": True,
                    "exclusive": False,
                    "auto_delete": False,
                    "arguments": {
                        "x-queue-type": "quorum",
                        "x-message-ttl": ttl_ms,
                        "x-dead-letter-exchange": _next_exchange(level),
                        "x-dead-letter-strategy": "at-least-once",
                        "x-overflow": "reject-publish",
                    },
                },
            )
        )
    requests.append(("PUT", f"/exchanges/{DELIVER_EXCHANGE}", _exchange_body()))
    for level in range(LEVELS):
        before = "*." * (LEVELS - 1 - level)
        exchange = level_exchange(level)
        requests.append(
            (
                "POST",
                "/bindings",
                {
                    "source": exchange,
                    "binding_key": f"{before}1.#",
                    "arguments": {},
                    "destination_queue": level_queue(level),
                },
            )
        )
        requests.append(
            (
                "POST",
                "/bindings",
                {
                    "source": exchange,
                    "binding_key": f"{before}0.#",
                    "arguments": {},
                    "destination_exchange": _next_exchange(level),
                },
            )
        )
    requests.append(("PUT", f"/exchanges/{ENTRY_EXCHANGE}", _exchange_body()))
    requests.append(
        (
            "POST",
            "/bindings",
            {
                "source": ENTRY_EXCHANGE,
                "binding_key": "#",
                "arguments": {},
                "destination_exchange": level_exchange(LEVELS - 1),
            },
        )
    )
    return requests


def queue_binding(queue: str) -> dict[str, Any]:
    """The body of the `POST /bindings` that delivers delayed jobs of `queue` to it."""
    _check_queue_name(queue)
    return {
        "source": DELIVER_EXCHANGE,
        "binding_key": "*." * LEVELS + queue,
        "arguments": {},
        "destination_queue": queue,
    }
