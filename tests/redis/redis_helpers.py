"""Helpers for the RedisServer tests (a worker stand-in, polling, a private redis-server)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.redis.keys import KeyLayout

_KEYS = KeyLayout()


def stream(channel: str) -> str:
    """The default stream key of `channel` (`repid:{channel}`)."""
    return _KEYS.stream(channel)


def group(channel: str) -> str:
    """The default consumer group of `channel` (`repid:{channel}:group`)."""
    return _KEYS.group(channel)


def dlq(channel: str) -> str:
    """The default dead-letter stream of `channel` (`repid:{channel}:dlq`)."""
    dead = _KEYS.dead_letters(channel)
    assert dead is not None
    return dead


def redis_url_or_skip() -> str:
    url = os.environ.get("REPID_TEST_REDIS_URL")
    if not url:
        if os.environ.get("REPID_REQUIRE_BROKERS") == "1":
            pytest.fail("REPID_TEST_REDIS_URL is not set and REPID_REQUIRE_BROKERS=1")
        pytest.skip("REPID_TEST_REDIS_URL is not set (run scripts/brokers.sh start redis)")
    return url


@dataclass
class Collector:
    """A worker stand-in: takes a slot per message and settles as told (or lets the test)."""

    capacity: DeliveryCapacity
    settle: str | None = None  # "ack", "nack", "reject" or None (the test settles)
    messages: list[ReceivedMessageT] = field(default_factory=list)
    max_in_use: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def callback(self, message: ReceivedMessageT) -> None:
        assert self.capacity.free > 0, "delivered while the worker was full"
        self.capacity.acquire()
        self.max_in_use = max(self.max_in_use, self.capacity.in_use)
        self.messages.append(message)
        self.arrived.set()
        if self.settle is not None:
            task = asyncio.get_running_loop().create_task(self._settle(message))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _settle(self, message: ReceivedMessageT) -> None:
        try:
            await getattr(message, self.settle or "ack")()
        finally:
            self.capacity.release()

    async def finish(self, message: ReceivedMessageT, action: str = "ack") -> None:
        await getattr(message, action)()
        self.capacity.release()

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(self.messages)} messages, expected {count}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 0.2)
            except asyncio.TimeoutError:
                pass


async def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll an async or sync predicate until it is true (bounded, no timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnRedis:
    """A private redis-server (appendonly) that a test may stop and restart at will."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("REPID_REQUIRE_BROKERS") == "1":
                pytest.fail("redis-server is not installed and REPID_REQUIRE_BROKERS=1")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="repid-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.password = "s3cr3t-Pa55"

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir,
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--requirepass",
                self.password,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: redis flushes the AOF and exits
            self.proc.wait(10)
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class OwnTlsRedis(OwnRedis):
    """A private redis-server that only speaks TLS, with a throwaway CA (needs openssl)."""

    def __init__(self) -> None:
        if shutil.which("openssl") is None:
            pytest.skip("openssl is not installed")
        super().__init__()
        self.ca = os.path.join(self.dir, "ca.crt")
        self._make_certificates()

    def _make_certificates(self) -> None:
        d = self.dir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run = [
            ["openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", self.ca]
            + ["-days", "1", "-subj", "/CN=repid-test-ca"],
            ["openssl", "req", *ec, "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr"]
            + ["-subj", "/CN=127.0.0.1"],
        ]
        for args in run:
            subprocess.run(args, check=True, capture_output=True)
        with open(f"{d}/san.ext", "w") as ext:
            ext.write("subjectAltName=IP:127.0.0.1\n")
        subprocess.run(
            ["openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", self.ca]
            + ["-CAkey", f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/server.crt"]
            + ["-days", "1", "-extfile", f"{d}/san.ext"],
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"rediss://:{self.password}@127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca}"

    def start(self) -> None:
        d = self.dir
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1"]
            + ["--dir", d, "--save", "", "--requirepass", self.password]
            + ["--tls-cert-file", f"{d}/server.crt", "--tls-key-file", f"{d}/server.key"]
            + ["--tls-ca-cert-file", self.ca, "--tls-auth-clients", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_for_port()

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")
