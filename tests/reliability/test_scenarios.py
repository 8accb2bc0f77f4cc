"""Short versions of the reliability harness's scenarios (benchmarks/reliability.py).

Each scenario runs once per broker it applies to, all brokers at the same time (the runs wait
on timeouts far more than they compute), the first time one of its tests asks for it; each
test then checks one broker's run. They fail on a lost message, a stuck worker, or a recovery
slower than the bounds issue 13 names (15 s after a kill -9 on Redis and RabbitMQ, 30 s on
the Pub/Sub emulator, 10 s after a broker or the network returns), with a margin for a loaded
machine. Workers run with default settings; only the sizes are small.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from benchmarks.reliability import APPLIES, BrokerEnv, Impl, Params, run_scenario

pytestmark = pytest.mark.slow

PARAMS = Params(
    kill9_count=300, kill9_rate=0.0, kill9_ms=2000.0, kill9_trigger="started", kill9_tail=200,
    rolling_count=1000, rolling_rate=80.0,
    restart_seconds=8.0, restart_rate=50.0, restart_down=1.0, restart_mode="app",
    partition_seconds=12.0, partition_rate=50.0, partition_tail=5.0,
    longtask_seconds=12.0, longtask_kill_after=2.0,
    badinput_good=200, badinput_each=1,
    soak_memory=50_000, soak_redis=6_000, soak_rate=1_000.0,
    drain_timeout=90.0,
)  # fmt: skip

# The log lines a bad message may cause (one per message, see the badinput test), and the
# prefixes of the events that are about the connection rather than the message.
BAD_INPUT_EVENTS = frozenset(
    {
        "actor.payload_invalid",
        "actor.route.not_found",
        "actor.route.poison_message",
        "redis.malformed_entry",
        "redis.nack_dropped",
        "amqp.bad_message",
    }
)
WEATHER = (
    "redis.connection_lost",
    "redis.keepalive_failed",
    "amqp.connection_lost",
    "amqp.reconnect",
    "amqp.socket_lost",
    "amqp.idle_timeout",
    "pubsub.stream_lost",
    "pubsub.connection_silent",
    "pubsub.lease_extension_failed",
    "subscription.recover",
    "message.lease_expired",
    "message.settled_after_lease",
)

# Margin on the named bounds: these runs share a small machine with the rest of the suite.
MARGIN = 1.5

_results: dict[str, dict[str, dict[str, Any]]] = {}


def results(scenario: str, envs: dict[str, BrokerEnv], root: Path) -> dict[str, dict[str, Any]]:
    """The scenario's run on every available broker it applies to (run once, concurrently)."""
    if scenario not in _results:
        brokers = [b for b in APPLIES[scenario] if b in envs]
        with ThreadPoolExecutor(max(1, len(brokers))) as pool:
            futures = {
                b: pool.submit(run_scenario, scenario, envs[b], Impl.ours(), PARAMS, root)
                for b in brokers
            }
            _results[scenario] = {b: f.result() for b, f in futures.items()}
    return _results[scenario]


def result_for(
    scenario: str, broker: str, envs: dict[str, BrokerEnv], root: Path
) -> dict[str, Any]:
    if broker not in envs:
        pytest.skip(f"{broker} is not available here")
    result = results(scenario, envs, root)[broker]
    assert "error" not in result, f"the {scenario} run failed: {result['error']}"
    return result


def where(result: dict[str, Any]) -> str:
    return f"(records and logs in {result.get('run_dir')}; {result})"


@pytest.mark.parametrize("broker", APPLIES["kill9"])
def test_kill_9_loses_nothing_and_the_held_messages_come_back(
    broker: str, broker_envs: dict[str, BrokerEnv], reliability_root: Path
) -> None:
    result = result_for("kill9", broker, broker_envs, reliability_root)
    assert result["lost"] == 0, where(result)
    assert result["held"] > 0, "the killed worker held nothing: the test proved nothing " + where(
        result
    )
    bound = {"redis": 15.0, "amqp": 15.0, "pubsub": 30.0}[broker] * MARGIN
    assert result["held_back_s"] <= bound, where(result)
    # Messages published after the kill too. Not on the emulator: it routes a share of them to
    # the dead worker's streams, each delivery there costing a deadline (up to 60 s measured).
    if broker != "pubsub":
        assert result["recover_s"] is not None and result["recover_s"] <= bound, where(result)


@pytest.mark.parametrize("broker", APPLIES["rolling"])
def test_rolling_restart_loses_and_repeats_nothing(
    broker: str, broker_envs: dict[str, BrokerEnv], reliability_root: Path
) -> None:
    result = result_for("rolling", broker, broker_envs, reliability_root)
    assert result["lost"] == 0, where(result)
    assert result["duplicated"] == 0, where(result)
    assert result["hung_on_sigterm"] == 0, where(result)
    assert result["max_wait_s"] <= 10.0 * MARGIN, "a message was stuck " + where(result)


@pytest.mark.parametrize("broker", APPLIES["restart"])
def test_broker_restart_consumers_come_back(
    broker: str, broker_envs: dict[str, BrokerEnv], reliability_root: Path
) -> None:
    result = result_for("restart", broker, broker_envs, reliability_root)
    assert result["stuck_workers"] == [], where(result)
    assert result["lost"] == 0, where(result)
    assert result["recover_s"] is not None and result["recover_s"] <= 10.0 * MARGIN, where(result)
    assert result["publish_gave_up"] == 0, "a publish never succeeded " + where(result)


@pytest.mark.parametrize("broker", APPLIES["partition"])
def test_network_partition_every_worker_reconnects(
    broker: str, broker_envs: dict[str, BrokerEnv], reliability_root: Path
) -> None:
    result = result_for("partition", broker, broker_envs, reliability_root)
    assert result["stuck_workers"] == [], where(result)
    assert all(result["reconnected"].values()), where(result)
    assert result["lost"] == 0, where(result)
    assert result["recover_s"] is not None and result["recover_s"] <= 10.0 * MARGIN, where(result)


@pytest.mark.parametrize("broker", APPLIES["longtask"])
def test_long_task_runs_once_and_once_more_after_a_kill(
    broker: str, broker_envs: dict[str, BrokerEnv], reliability_root: Path
) -> None:
    result = result_for("longtask", broker, broker_envs, reliability_root)
    assert result["lost"] == 0, where(result)
    if broker == "memory":
        assert result["runs"] == 1, where(result)
        return
    assert result["runs_alive"] == 1, "run twice while its worker lived " + where(result)
    assert result["runs_killed"] == 2, where(result)


@pytest.mark.parametrize("broker", APPLIES["badinput"])
def test_bad_input_ends_in_its_outcome_and_the_worker_goes_on(
    broker: str, broker_envs: dict[str, BrokerEnv], reliability_root: Path
) -> None:
    result = result_for("badinput", broker, broker_envs, reliability_root)
    assert result["lost"] == 0, where(result)
    assert result.get("alive", True), where(result)
    # One line a person reads per bad message (WARNING and up): when it fails to parse,
    # however often the broker brings it back (Pub/Sub: until the dead-letter policy's 5th
    # attempt), or, for an unroutable one, the ERROR when it is given up as poison.
    events: dict[str, int] = result["events"]
    about_bad_input = sum(n for event, n in events.items() if event in BAD_INPUT_EVENTS)
    assert about_bad_input <= result["bad_sent"], where(result)
    # Anything else logged is the transport's weather on a loaded machine (a reconnect, a
    # lease given back), never a failed worker or a crashed callback.
    others = {e for e in events if e not in BAD_INPUT_EVENTS and not e.startswith(WEATHER)}
    assert not others, where(result)
    if broker == "memory":
        return
    assert result["wrongly_processed"] == 0, where(result)
    assert result["processed_bad"] == result["expected_processed"], where(result)
    assert result["dead_lettered"] == result["expected_dead"], where(result)
    assert result.get("left_in_queue", 0) == 0, where(result)


@pytest.mark.parametrize("broker", APPLIES["soak"])
def test_soak_keeps_memory_tasks_and_the_stream_bounded(
    broker: str, broker_envs: dict[str, BrokerEnv], reliability_root: Path
) -> None:
    result = result_for("soak", broker, broker_envs, reliability_root)
    assert result["lost"] == 0, where(result)
    assert result["duplicated"] == 0, where(result)
    assert "tasks_max" in result, "too few samples to judge flatness " + where(result)
    # Short runs: the framework's tasks stay within the worker's task limit (no leak), RSS
    # within the 10% (a leak of a few hundred bytes per message would show).
    assert result["tasks_max"] <= 1000 + 50, where(result)
    assert result["rss_growth_pct"] <= 10.0, where(result)
    if broker == "redis":
        assert result["stream_len_max"] <= 2000, where(result)
