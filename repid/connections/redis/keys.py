"""Every Redis key and consumer group name Repid uses, built in this one module.

The layout is repid 2.x's, so that 2.x producers and workers and ours share channels (see
docs/migration/from-repid-2.md):

| what                          | name                          | written by        |
| ----------------------------- | ----------------------------- | ----------------- |
| a channel's stream            | `repid:{channel}`             | 2.x and Repid     |
| its consumer group            | `repid:{channel}:group`       | 2.x and Repid     |
| its dead-letter stream        | `repid:{channel}:dlq`         | 2.x and Repid     |
| job layer: delayed messages   | `{repid:{channel}}:delayed`   | Repid only        |
| job layer: one delayed message| `{repid:{channel}}:delayed:ID`| Repid only        |
| job layer: unique job claim   | `{repid:{channel}}:unique:ID` | Repid only        |
| job layer: scheduler tick     | `{repid:{channel}}:schedule:KEY` | Repid only     |
| job layer: cancellation marks | `{repid:{channel}}:cancelled` | Repid only        |
| job layer: argument/result    | `repid:bucket:{id}`           | Repid only        |
| job state of a RabbitMQ queue | `{repid-state:{channel}}:...` | Repid only        |

(The last row: a `RedisBucketBroker` keeps the unique, schedule and cancelled keys of another
broker's queue under that base instead, apart from any Redis queue of the same name.)

(`{channel}` above stands for the channel's name; the braces of the delayed keys are literal.)
The first three follow the 2.x names `stream_name_strategy`, `consumer_group_strategy` and
`dlq_stream_strategy` of `RedisServer`, which take a channel name and return the name to use.

Redis Cluster puts a key in the slot of its hash tag (the text between the first `{` and the
next `}`) or, without one, of the whole name. 2.x's stream name `repid:{channel}` carries no
hash tag, so every key Repid adds for a channel is built by `same_slot`, which wraps the stream
name in braces (`{repid:orders}:delayed`): Redis hashes it on `repid:orders`, exactly like the
stream itself, and a script may touch both in one step. The dead-letter stream keeps 2.x's
name, where 2.x users and their tools look for it; that name hashes elsewhere, which matters
only on Redis Cluster (a deployment 2.x never supported), where a `dlq_stream_strategy`
returning `same_slot(stream, ":dlq")` keeps every key of a channel in one slot. `RedisServer`
does that by itself when it finds a Redis Cluster (`KeyLayout.for_cluster`: the default
dead-letter stream becomes `{repid:{channel}}:dlq`), and refuses a channel whose keys a custom
strategy puts in different slots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BUCKET_PREFIX",
    "ChannelNameStrategyT",
    "KeyLayout",
    "bucket_key",
    "default_consumer_group",
    "default_dead_letter_stream",
    "default_job_state_name",
    "default_stream_name",
    "hash_tag",
    "same_slot",
]

ChannelNameStrategyT = Callable[[str], str]
"""channel name -> a Redis name (a stream key or a consumer group)."""

BUCKET_PREFIX = "repid:bucket:"


def default_stream_name(channel: str) -> str:
    """`repid:{channel}` (repid 2.x's stream name)."""
    return f"repid:{channel}"


def default_consumer_group(channel: str) -> str:
    """`repid:{channel}:group` (repid 2.x's consumer group, one per channel)."""
    return f"repid:{channel}:group"


def default_dead_letter_stream(channel: str) -> str:
    """`repid:{channel}:dlq` (repid 2.x's dead-letter stream)."""
    return f"repid:{channel}:dlq"


def hash_tag(key: str) -> str | None:
    """The Redis Cluster hash tag of `key` (between the first `{` and the next `}`), if any."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:  # no closing brace, or `{}`: the whole key is hashed
        return None
    return key[start + 1 : end]


def same_slot(base: str, suffix: str) -> str:
    """A key named after `base` + `suffix` that Redis Cluster puts in `base`'s slot.

    `base` with a hash tag keeps it (`a{x}b` -> `a{x}b:suffix`); `base` without one becomes the
    tag (`repid:orders` -> `{repid:orders}:suffix`). A `base` with a stray `}` and no tag cannot
    be wrapped and is only suffixed (such a channel is not Cluster-safe).
    """
    if hash_tag(base) is not None or "}" in base:
        return base + suffix
    return "{" + base + "}" + suffix


def default_job_state_name(channel: str) -> str:
    """`repid-state:{channel}`: the base name of the job state a `RedisBucketBroker` keeps for
    a queue of another broker (RabbitMQ). No Redis stream is named so, so the state of a
    RabbitMQ queue never meets that of a Redis queue of the same name in a shared Redis."""
    return f"repid-state:{channel}"


def bucket_key(bucket_id: str) -> str:
    """The string key of a job-layer argument or result bucket: `repid:bucket:{id}`."""
    return BUCKET_PREFIX + bucket_id


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """How channel names become Redis names; the defaults are repid 2.x's.

    `dead_letter_stream=None` means no dead-letter stream: a nacked message is acknowledged and
    dropped (repid 2.x's `dlq_stream_strategy=None`).
    """

    stream_name: ChannelNameStrategyT = default_stream_name
    consumer_group: ChannelNameStrategyT = default_consumer_group
    dead_letter_stream: ChannelNameStrategyT | None = default_dead_letter_stream

    def stream(self, channel: str) -> str:
        """The stream that holds `channel`'s messages."""
        return self.stream_name(channel)

    def group(self, channel: str) -> str:
        """The consumer group every worker of `channel` reads through."""
        return self.consumer_group(channel)

    def dead_letters(self, channel: str) -> str | None:
        """The stream nacked messages of `channel` go to (None: they are dropped)."""
        strategy = self.dead_letter_stream
        return None if strategy is None else strategy(channel)

    def delayed(self, channel: str) -> str:
        """Job layer: the sorted set of `channel`'s delayed message ids (by due time)."""
        return same_slot(self.stream(channel), ":delayed")

    def delayed_entry_prefix(self, channel: str) -> str:
        """Job layer: the prefix of the hashes holding delayed messages (prefix + id)."""
        return self.delayed(channel) + ":"

    def job_state(self, channel: str, name: str) -> str:
        """Job layer: the string holding the state `name` of `channel` (`unique:ID`, a unique
        job's claim; `schedule:KEY`, a periodic job's last tick)."""
        return same_slot(self.stream(channel), ":" + name)

    def cancelled(self, channel: str) -> str:
        """Job layer: the sorted set of `channel`'s cancelled job ids (scored by expiry, ms)."""
        return same_slot(self.stream(channel), ":cancelled")

    def channel_keys(self, channel: str) -> list[str]:
        """Every key `channel` uses that a script may touch with its stream, stream first."""
        keys = [self.stream(channel), self.delayed(channel)]
        dead = self.dead_letters(channel)
        if dead is not None:
            keys.append(dead)
        return keys

    def for_cluster(self, *, keep_dead_letters: bool) -> KeyLayout:
        """This layout on Redis Cluster: the dead-letter stream moves into the stream's slot
        (`same_slot(stream, ":dlq")`, e.g. `{repid:orders}:dlq`), unless `keep_dead_letters`
        (the user chose the name; `RedisServer` then checks that it shares the slot)."""
        if keep_dead_letters or self.dead_letter_stream is None:
            return self
        stream = self.stream_name

        def cluster_dead_letter_stream(channel: str) -> str:
            return same_slot(stream(channel), ":dlq")

        return KeyLayout(
            stream_name=stream,
            consumer_group=self.consumer_group,
            dead_letter_stream=cluster_dead_letter_stream,
        )
