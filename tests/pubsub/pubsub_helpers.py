"""Pub/Sub emulator helpers: the shared emulator's address, REST admin calls, an own emulator."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

EMULATOR = os.environ.get(
    "REPID_PUBSUB_EMULATOR",
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
)
PROJECT = "repid-test"


def pubsub_host_or_skip() -> str:
    host = os.environ.get("REPID_TEST_PUBSUB_HOST")
    if not host:
        if os.environ.get("REPID_REQUIRE_BROKERS") == "1":
            pytest.fail("REPID_TEST_PUBSUB_HOST is not set and REPID_REQUIRE_BROKERS=1")
        pytest.skip("REPID_TEST_PUBSUB_HOST is not set (scripts/brokers.sh start pubsub)")
    return host


def emulator_or_skip() -> str:
    if not Path(EMULATOR).exists():
        if os.environ.get("REPID_REQUIRE_BROKERS") == "1":
            pytest.fail(f"Pub/Sub emulator not found at {EMULATOR}")
        pytest.skip(f"Pub/Sub emulator not found at {EMULATOR}")
    return EMULATOR


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _put(host: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(
        f"http://{host}/v1/{path}",
        data=data,
        method="PUT",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")  # type: ignore[no-any-return]


def create_topic(host: str, topic: str, project: str = PROJECT) -> str:
    _put(host, f"projects/{project}/topics/{topic}")
    return f"projects/{project}/topics/{topic}"


def create_subscription(
    host: str,
    subscription: str,
    topic: str,
    *,
    project: str = PROJECT,
    ack_deadline: int = 10,
    dead_letter_topic: str | None = None,
    max_delivery_attempts: int = 5,
    ordering: bool = False,
) -> str:
    body: dict[str, object] = {
        "topic": f"projects/{project}/topics/{topic}",
        "ackDeadlineSeconds": ack_deadline,
    }
    if dead_letter_topic is not None:
        body["deadLetterPolicy"] = {
            "deadLetterTopic": f"projects/{project}/topics/{dead_letter_topic}",
            "maxDeliveryAttempts": max_delivery_attempts,
        }
    if ordering:
        body["enableMessageOrdering"] = True
    _put(host, f"projects/{project}/subscriptions/{subscription}", body)
    return f"projects/{project}/subscriptions/{subscription}"


def create_pair(host: str, name: str | None = None, **kwargs: object) -> str:
    """Create topic NAME and subscription NAME on it (the same channel name for both)."""
    name = name or unique()
    create_topic(host, name)
    create_subscription(host, name, name, **kwargs)  # type: ignore[arg-type]
    return name


def pull(host: str, subscription: str, max_messages: int = 100) -> list[dict[str, object]]:
    """Unary pull through REST (a second, independent consumer for assertions)."""
    request = urllib.request.Request(
        f"http://{host}/v1/projects/{PROJECT}/subscriptions/{subscription}:pull",
        data=json.dumps({"maxMessages": max_messages, "returnImmediately": True}).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read() or b"{}")
    return list(body.get("receivedMessages", []))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnEmulator:
    """A private emulator on its own port, for tests that kill or restart it."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = log_dir / "emulator.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ, JAVA_OPTS="-Xmx512m -XX:+UseSerialGC")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [emulator_or_skip(), "--host=127.0.0.1", f"--port={self.port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: stop() ends the JVM too
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # any HTTP answer means it is up
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"own Pub/Sub emulator did not start; see {self.log}")

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=20)
        self.proc = None


class CuttableProxy:
    """An in-loop TCP proxy to the emulator whose connections can be cut and refused.

    Cutting breaks the gRPC connection (streams fail with UNAVAILABLE) while the emulator keeps
    its state, which a restart would lose.
    """

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.refusing = False
        self.host = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.host = f"127.0.0.1:{port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def cut(self) -> None:
        """Drop every proxied connection at once (both directions)."""
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def acknowledge(host: str, subscription: str, ack_ids: list[str]) -> None:
    """Acknowledge through REST (what an independent consumer would do)."""
    request = urllib.request.Request(
        f"http://{host}/v1/projects/{PROJECT}/subscriptions/{subscription}:acknowledge",
        data=json.dumps({"ackIds": ack_ids}).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
