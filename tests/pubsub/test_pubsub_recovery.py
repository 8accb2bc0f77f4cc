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
