"""Crash and restart behaviour: a killed worker, a restarted emulator."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pubsub_helpers import PROJECT, OwnEmulator, create_pair, pull

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.pubsub import PubsubServer
from repid.data import MessageData

pytestmark = [pytest.mark.pubsub, pytest.mark.slow]

DRIVER = Path(__file__).with_name("pubsub_worker_driver.py")


def _start_worker(
    host: str, channel: str, out: Path, stop: Path, work: float, capacity: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(DRIVER), host, channel, str(out), str(stop), str(work), str(capacity)],
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def _wait(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_kill_9_worker_mid_run_second_worker_finishes_everything(
    host: str, tmp_path: Path
) -> None:
    total = 300
    channel = create_pair(host)
    server = PubsubServer(PROJECT, emulator_host=host)
    async with server.connection():
        await server.publish_batch(
            channel=channel, messages=[MessageData(str(i).encode()) for i in range(total)]
        )
    out_a, out_b, stop = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "stop"
    worker_a = _start_worker(host, channel, out_a, stop, work=0.02, capacity=10)
    worker_b: subprocess.Popen[bytes] | None = None
    try:
        await _wait(lambda: len(_lines(out_a)) >= 50, 30, "worker A to process 50 messages")
        worker_a.send_signal(signal.SIGKILL)
        worker_a.wait(timeout=10)
        done_by_a = set(_lines(out_a))
        assert len(done_by_a) < total, "worker A finished before it was killed"
        worker_b = _start_worker(host, channel, out_b, stop, work=0.0, capacity=10)
        expected = {str(i) for i in range(total)}
        # A's unacked messages come back when their 10 s ack deadline passes (the emulator
        # also needs a moment to notice the dead stream): within a minute.
        await _wait(
            lambda: set(_lines(out_a)) | set(_lines(out_b)) == expected,
            90,
            "worker B to finish what worker A left",
        )
        stop.touch()
        assert worker_b.wait(timeout=30) == 0
    finally:
        for proc in (worker_a, worker_b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    # Every message was processed by A or B, and nothing is left in the subscription.
    assert set(_lines(out_a)) | set(_lines(out_b)) == expected
    assert pull(host, channel) == []


async def test_a_killed_workers_streams_stop_taking_messages_after_their_deadline(
    host: str, tmp_path: Path
) -> None:
    """The emulator never ends a SIGKILLed client's streams by itself and routes a share of
    the messages to them (each then waits out a 10 s ack deadline). Their gRPC deadline
    (`stream_lifetime` 5 s + 2 s, the emulator's default) ends them: once it has passed,
    every message reaches the live worker at once."""
    channel = create_pair(host)
    out_a, stop = tmp_path / "a.txt", tmp_path / "stop"
    worker_a = _start_worker(host, channel, out_a, stop, work=0.0, capacity=100)
    server = PubsubServer(PROJECT, emulator_host=host)
    capacity = DeliveryCapacity(100)
    arrived: dict[int, float] = {}

    async def callback(message: ReceivedMessageT) -> None:
        capacity.acquire()
        arrived.setdefault(int(message.payload), time.monotonic())
        try:
            await message.ack()
        finally:
            capacity.release()

    try:
        await _wait(lambda: Path(f"{out_a}.ready").exists(), 30, "worker A to subscribe")
        async with server.connection():
            subscriber = await server.subscribe(
                channels_to_callbacks={channel: callback}, capacity=capacity
            )
            worker_a.send_signal(signal.SIGKILL)
            worker_a.wait(timeout=10)
            killed_at = time.monotonic()
            published: dict[int, float] = {}
            seq = 0
            while time.monotonic() - killed_at < 14.0:  # a producer at 10 messages/s
                published[seq] = time.monotonic()
                await server.publish(channel=channel, message=MessageData(str(seq).encode()))
                seq += 1
                await asyncio.sleep(0.1)
            # What the dead streams took before their deadline comes back after one ack
            # deadline: nothing is lost.
            await _wait(lambda: len(arrived) == len(published), 60, "every message")
            await subscriber.close()
    finally:
        if worker_a.poll() is None:
            worker_a.kill()
            worker_a.wait(timeout=10)
    late = {
        s: round(arrived[s] - at, 1)
        for s, at in published.items()
        if at - killed_at >= 9.0 and arrived[s] - at > 5.0
    }
    later = [s for s, at in published.items() if at - killed_at >= 9.0]
    assert len(later) >= 20
    # Published 9 s or more after the kill (the dead streams' deadline passed at 7 s at the
    # latest): none went to a dead stream, so none waited for an ack deadline.
    assert late == {}, f"messages taken by the dead worker's streams after their deadline: {late}"


async def test_emulator_restart_reopens_the_stream_and_keeps_consuming(
    own_emulator: OwnEmulator,
) -> None:
    host = own_emulator.host
    channel = create_pair(host)
    server = PubsubServer(
        PROJECT, emulator_host=host, ack_deadline=10, initial_backoff=0.2, max_backoff=1.0
    )
    capacity = DeliveryCapacity(20)
    received: list[bytes] = []

    async def callback(message: ReceivedMessageT) -> None:
        capacity.acquire()
        received.append(message.payload)
        try:
            await message.ack()
        finally:
            capacity.release()

    async with server.connection():
        subscriber = await server.subscribe(
            channels_to_callbacks={channel: callback}, capacity=capacity
        )
        await server.publish_batch(
            channel=channel, messages=[MessageData(b"before-%d" % i) for i in range(20)]
        )
        await _wait(lambda: len(received) >= 20, 15, "messages before the restart")
        assert server.is_connected

        own_emulator.stop(signal.SIGKILL)
        await _wait(lambda: not server.is_connected, 20, "is_connected to turn False")

        own_emulator.start()
        # The emulator keeps nothing across a restart: recreate the topology, as a deployment
        # script would.
        create_pair(host, channel)
        await _wait(lambda: server.is_connected, 30, "the stream to be reopened")
        await server.publish_batch(
            channel=channel, messages=[MessageData(b"after-%d" % i) for i in range(20)]
        )
        await _wait(lambda: len(received) >= 40, 30, "messages after the restart")
        await subscriber.close()
    assert sorted(received) == sorted(
        [b"before-%d" % i for i in range(20)] + [b"after-%d" % i for i in range(20)]
    )


async def test_cut_connection_reopens_stream_and_settles_in_flight_messages(host: str) -> None:
    from pubsub_helpers import CuttableProxy

    channel = create_pair(host)
    proxy = CuttableProxy(host)
    await proxy.start()
    server = PubsubServer(
        PROJECT, emulator_host=proxy.host, ack_deadline=10, initial_backoff=0.2, max_backoff=1.0
    )
    capacity = DeliveryCapacity(10)
    held: list[ReceivedMessageT] = []
    acked: list[bytes] = []

    async def callback(message: ReceivedMessageT) -> None:
        capacity.acquire()
        if message.payload.startswith(b"held"):
            held.append(message)  # settled by the test after the cut
            return
        try:
            await message.ack()
            acked.append(message.payload)
        finally:
            capacity.release()

    try:
        async with server.connection():
            subscriber = await server.subscribe(
                channels_to_callbacks={channel: callback}, capacity=capacity
            )
            await server.publish_batch(
                channel=channel, messages=[MessageData(b"held-%d" % i) for i in range(3)]
            )
            await _wait(lambda: len(held) == 3, 15, "the held messages")

            proxy.refusing = True
            proxy.cut()
            await _wait(lambda: not server.is_connected, 20, "is_connected to turn False")
            proxy.refusing = False
            await _wait(lambda: server.is_connected, 30, "the stream to be reopened")

            # Ack ids outlive the stream: the messages delivered before the cut settle now.
            for message in held:
                await message.ack()
                capacity.release()
            await server.publish_batch(
                channel=channel, messages=[MessageData(b"after-%d" % i) for i in range(10)]
            )
            # The emulator may route some of these to the dead stream until it notices it is
            # gone; they come back after the ack deadline, so allow for that.
            await _wait(lambda: len(set(acked)) >= 10, 60, "messages after the reconnect")
            await subscriber.close()
    finally:
        await proxy.close()
    assert set(acked) == {b"after-%d" % i for i in range(10)}
    assert all(m.payload.startswith(b"held") for m in held)
    assert pull(host, channel) == []  # nothing left: the held messages' acks took effect


async def test_missing_subscription_is_retried_until_it_exists(host: str) -> None:
    from pubsub_helpers import create_subscription, create_topic, unique

    name = unique()
    server = PubsubServer(
        PROJECT, emulator_host=host, ack_deadline=10, initial_backoff=0.2, max_backoff=0.5
    )
    capacity = DeliveryCapacity(1)
    received: list[bytes] = []

    async def callback(message: ReceivedMessageT) -> None:
        received.append(message.payload)
        await message.ack()

    async with server.connection():
        subscriber = await server.subscribe(
            channels_to_callbacks={name: callback}, capacity=capacity
        )
        # NOT_FOUND: the stream fails, is logged as an error and retried with backoff; once
        # it failed, it does not count as connected until a stream is established.
        await _wait(lambda: not server.is_connected, 10, "is_connected to report the failure")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert not server.is_connected
            await asyncio.sleep(0.05)
        create_topic(host, name)
        create_subscription(host, name, name)
        await _wait(lambda: server.is_connected, 15, "the stream to open")
        await server.publish(channel=name, message=MessageData(b"finally"))
        await _wait(lambda: received == [b"finally"], 15, "the message")
        await subscriber.close()
