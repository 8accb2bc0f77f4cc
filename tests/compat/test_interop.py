"""repid 2.1.4 and this package on the same channels of real brokers, counted end to end.

Each test runs tests/compat/peer.py under both packages as separate processes (repid 2.1.4 in
its own virtual environment, see conftest.py): what one side sends, the other processes -
payload, headers, content type, reply-to, replies and dead letters - and during a rolling
upgrade (2.x workers, then both, then ours) every message is processed exactly once.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests import brokers

pytestmark = [pytest.mark.slow]

BROKERS = [
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("amqp", marks=pytest.mark.amqp),
    pytest.param("pubsub", marks=pytest.mark.pubsub),
]


def fails(i: int) -> bool:
    return i % 7 == 3  # peer.py sends these with the topic "fail": their actor raises


def replies(i: int) -> bool:
    return i % 5 == 1 and not fails(i)


class Topology:
    """A channel's resources on one broker, and where its replies and dead letters land.

    Dead letters are read where a repid 2.x user finds them: Redis `repid:{channel}:dlq`; on
    RabbitMQ and Pub/Sub the broker's own dead-lettering (the queue's dead-letter routing key,
    the subscription's dead-letter topic), which both packages trigger the same way.
    """

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self.project = brokers.pubsub_project()
        self.created: list[str] = []

    def channel(self) -> str:
        name = f"compat-{uuid.uuid4().hex[:10]}"
        if self.broker == "amqp":
            for queue in (f"{name}.dlq", f"{name}.replies"):
                brokers.rabbitmq_declare_queue(queue, {"x-queue-type": "quorum"})
            brokers.rabbitmq_declare_queue(
                name,
                {
                    "x-queue-type": "quorum",
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": f"{name}.dlq",
                },
            )
        elif self.broker == "pubsub":
            for topic in (f"{name}.dlq", f"{name}.replies", name):
                brokers.pubsub_create_topic(self.project, topic)
            brokers.pubsub_create_subscription(self.project, f"{name}.dlq", f"{name}.dlq")
            brokers.pubsub_create_subscription(self.project, f"{name}.replies", f"{name}.replies")
            brokers.pubsub_create_subscription(
                self.project,
                name,
                name,
                ack_deadline_seconds=10,
                dead_letter_topic=f"{name}.dlq",
                max_delivery_attempts=5,
            )
        self.created.append(name)
        return name

    def _redis(self) -> Any:
        import redis

        return redis.Redis.from_url(brokers.redis_url())

    def _read(self, name: str) -> list[dict[str, str]]:
        """The headers of every message in `name` (a stream, queue or subscription).

        Pub/Sub messages are pulled and acked: each call returns only new ones.
        """
        if self.broker == "redis":
            with self._redis() as client:
                entries = client.xrange(name)
            return [json.loads(fields[b"headers"]) for _, fields in entries]
        if self.broker == "amqp":
            got = brokers.rabbitmq_get_messages(name, count=1000, requeue=True)
            return [dict(m["properties"].get("headers") or {}) for m in got]
        headers = []
        for item in brokers.pubsub_pull(self.project, name, max_messages=100):
            headers.append(dict(item["message"].get("attributes") or {}))
            brokers.pubsub_ack(self.project, name, [item["ackId"]])
        return headers

    def dead_letters(self, channel: str) -> list[str]:
        """The `x-id`s of the channel's dead letters (Pub/Sub: the new ones)."""
        name = f"repid:{channel}:dlq" if self.broker == "redis" else f"{channel}.dlq"
        return [h.get("x-id", "") for h in self._read(name)]

    def replies(self, channel: str) -> list[tuple[str, str]]:
        """(`x-id`, the worker that replied) of every reply sent to `{channel}.replies`."""
        name = f"repid:{channel}.replies" if self.broker == "redis" else f"{channel}.replies"
        return [(h.get("x-id", ""), h.get("x-by", "")) for h in self._read(name)]

    def consumers(self, channel: str) -> int | None:
        """How many workers read the channel, where the broker tells (None: it does not).

        Only RabbitMQ does: a Redis consumer appears with its first delivery (Redis 7.0), and
        the Pub/Sub emulator has no such API.
        """
        if self.broker == "amqp":
            return int((brokers.rabbitmq_get_queue(channel) or {}).get("consumers") or 0)
        return None

    def cleanup(self) -> None:
        for name in self.created:
            if self.broker == "amqp":
                for queue in (name, f"{name}.dlq", f"{name}.replies"):
                    brokers.rabbitmq_delete_queue(queue)
            elif self.broker == "pubsub":
                for sub in (name, f"{name}.dlq", f"{name}.replies"):
                    brokers.pubsub_delete_subscription(self.project, sub)
                    brokers.pubsub_delete_topic(self.project, sub)
            else:
                with self._redis() as client:
                    client.delete(f"repid:{name}", f"repid:{name}:dlq", f"repid:{name}.replies")


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> Iterator[Topology]:
    broker = request.node.callspec.params["broker"]
    {"redis": brokers.redis_url, "amqp": brokers.amqp_url, "pubsub": brokers.pubsub_host}[broker]()
    topo = Topology(broker)
    yield topo
    topo.cleanup()


class Expectation:
    """What the processed messages `ids` (published to `channel` by `sender`) must look like."""

    def __init__(self, broker: str, ids: range, sender: str, channel: str) -> None:
        self.broker = broker
        self.ids = ids
        self.sender = sender  # "2.x", "ours" or "any"
        self.channel = channel

    def complete(self, records: list[dict[str, Any]]) -> bool:
        done = {r["id"] for r in records}
        return all(str(i) in done for i in self.ids)

    def check(self, records: list[dict[str, Any]], worker: str | None) -> Counter[str]:
        """Assert every field and the exactly-once; return how many each kind processed."""
        mine = [r for r in records if r["id"] is not None and int(r["id"]) in self.ids]
        processed = Counter(r["id"] for r in mine if r["outcome"] != "failed")
        assert set(processed) == {str(i) for i in self.ids if not fails(i)}, "all processed"
        assert all(n == 1 for n in processed.values()), f"processed twice: {processed}"
        assert {r["id"] for r in mine if r["outcome"] == "failed"} == {
            str(i) for i in self.ids if fails(i)
        }
        for record in mine:
            i = int(record["id"])
            if worker is not None:
                assert record["impl"] == worker
            sender = record["headers"]["x-from"] if self.sender == "any" else self.sender
            expected_headers = {
                "topic": "fail" if fails(i) else "work",
                "x-id": str(i),
                "x-from": sender,
                "x-ünï": "välue",
            }
            reply_to = f"{self.channel}.replies" if i % 5 == 1 else None
            if self.broker == "pubsub":
                if reply_to is not None:
                    expected_headers["reply_to"] = reply_to  # sent as an attribute by both
                if record["impl"] == "2.x":
                    # 2.x leaves its content type attribute among the headers; we do not.
                    expected_headers["content_type"] = record["content_type"]
            assert record["headers"] == expected_headers
            if i % 2:
                assert record["payload"] == f"text {i}"
                assert record["content_type"] == "text/plain; charset=utf-8"
            else:
                assert json.loads(record["payload"]) == {"id": i, "text": "ünï"}
                assert record["content_type"] == "application/json"
            assert record["reply_to"] == reply_to
            assert record["message_id"]
            outcome = "failed" if fails(i) else "replied" if replies(i) else "acked"
            assert record["outcome"] == outcome
        return Counter(r["impl"] for r in mine if r["outcome"] != "failed")


class DeadLetters:
    """A channel's dead letters, collected until every failing message of `ids` is there."""

    def __init__(self, topology: Topology, channel: str, ids: range) -> None:
        self.topology = topology
        self.channel = channel
        self.expected = sorted(str(i) for i in ids if fails(i))
        self.seen: list[str] = []

    def complete(self) -> bool:
        # Pub/Sub dead-letters after the 5th delivery, a while after the first nack; elsewhere
        # the nack itself moves the message.
        if self.topology.broker == "pubsub":
            self.seen += self.topology.dead_letters(self.channel)
            return set(self.expected) <= set(self.seen)
        return True

    def check(self) -> None:
        if self.topology.broker != "pubsub":
            self.seen = self.topology.dead_letters(self.channel)
        assert sorted(self.seen) == self.expected, "each failing message dead-lettered once"


@pytest.mark.parametrize("broker", BROKERS)
def test_each_direction(broker: str, topology: Topology, peers_factory: Any) -> None:
    """2.x sends, ours works - and ours sends, 2.x works - at the same time, on two channels."""
    peers = peers_factory(broker)
    to_ours, to_2x = topology.channel(), topology.channel()
    old_ids, new_ids = range(15), range(15, 30)
    old = peers.start(
        "2.x", "--publish", to_ours, "--ids", "0:15", "--work", to_2x, "--out", peers.out("2x")
    )
    new = peers.start(
        "ours", "--publish", to_2x, "--ids", "15:30", "--work", to_ours, "--out", peers.out("ours")
    )
    from_2x = Expectation(broker, old_ids, "2.x", to_ours)
    from_ours = Expectation(broker, new_ids, "ours", to_2x)
    dead = [DeadLetters(topology, to_ours, old_ids), DeadLetters(topology, to_2x, new_ids)]
    peers.wait_until(
        lambda: (
            from_2x.complete(peers.records("ours"))
            and from_ours.complete(peers.records("2x"))
            and all(letters.complete() for letters in dead)
        ),
        timeout=90,
        what="both workers to process the other side's messages",
    )
    peers.stop(old)
    peers.stop(new)
    from_2x.check(peers.records("ours"), worker="ours")
    from_ours.check(peers.records("2x"), worker="2.x")
    for channel, ids, worker in ((to_ours, old_ids, "ours"), (to_2x, new_ids, "2.x")):
        expected_replies = sorted((str(i), worker) for i in ids if replies(i))
        assert sorted(topology.replies(channel)) == expected_replies
    for letters in dead:
        letters.check()


@pytest.mark.parametrize("broker", BROKERS)
def test_rolling_upgrade(broker: str, topology: Topology, peers_factory: Any) -> None:
    """2.x workers, then 2.x and ours on one channel, then ours only: each message once."""
    peers = peers_factory(broker)
    channel = topology.channel()
    everything = Expectation(broker, range(160), "any", channel)
    dead = DeadLetters(topology, channel, everything.ids)

    # 1. Only 2.x: its producer and worker.
    old = peers.start(
        "2.x", "--publish", channel, "--ids", "0:40", "--work", channel, "--out", peers.out("2x")
    )
    phase1 = Expectation(broker, range(40), "2.x", channel)
    peers.wait_until(lambda: phase1.complete(peers.records("2x")), 60, "phase 1")
    # 2. Ours joins; once both consume, producers of both kinds send at the same time.
    new = peers.start("ours", "--work", channel, "--out", peers.out("ours"))
    if topology.consumers(channel) is not None:
        peers.wait_until(lambda: topology.consumers(channel) == 2, 30, "both workers to consume")
    producers = [
        peers.start("ours", "--publish", channel, "--ids", "40:80"),
        peers.start("2.x", "--publish", channel, "--ids", "80:120"),
    ]
    for producer in producers:
        assert producer.wait(60) == 0, peers.logs()
    phase2 = Expectation(broker, range(40, 120), "any", channel)
    peers.wait_until(lambda: phase2.complete(peers.records("2x", "ours")), 60, "phase 2")
    # 3. The 2.x worker is stopped; only ours consumes what ours now sends.
    peers.stop(old)
    peers.run("ours", "--publish", channel, "--ids", "120:160")
    peers.wait_until(
        lambda: everything.complete(peers.records("2x", "ours")) and dead.complete(),
        90,
        "phase 3",
    )
    peers.stop(new)

    records = peers.records("2x", "ours")
    split = everything.check(records, worker=None)
    phase1.check([r for r in records if int(r["id"]) < 40], worker="2.x")
    Expectation(broker, range(120, 160), "ours", channel).check(
        [r for r in records if int(r["id"]) >= 120], worker="ours"
    )
    dead.check()
    assert sorted(i for i, _ in topology.replies(channel)) == sorted(
        str(i) for i in everything.ids if replies(i)
    )
    mixed = Counter(
        r["impl"] for r in records if 40 <= int(r["id"]) < 120 and r["outcome"] != "failed"
    )
    print(f"rolling upgrade on {broker}: processed by {dict(split)}; both running {dict(mixed)}")
