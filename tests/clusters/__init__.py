"""The broker clusters of the failover tests, started on first use by a session fixture.

`scripts/brokers.sh start redis-cluster|redis-sentinel|rabbitmq-cluster` builds, on loopback,
a Redis Cluster of three masters and three replicas, a Sentinel group (a master, a replica
and three sentinels) or a three-node RabbitMQ 4 cluster; `stop` deletes it. They are heavy
enough that only tests marked `cluster` use them, and only when pytest runs with `--clusters`
(or `REPID_TEST_CLUSTERS=1`): the fixtures in tests/conftest.py start each cluster the first
time a test needs it and stop it when the session ends.

This module is standard library only, like tests/brokers.py; the tests of the package look at
the clusters through `redis_admin` (redis-py) and count failovers with `failover`.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tests.brokers import run_brokers_script

__all__ = [
    "ClusterName",
    "RunningCluster",
    "clusters_enabled",
    "key_slot",
    "redis_command",
    "start_cluster",
    "stop_cluster",
]

ClusterName = Literal["redis-cluster", "redis-sentinel", "rabbitmq-cluster"]

_REPO = Path(__file__).resolve().parents[1]


def clusters_enabled(config_option: bool) -> bool:
    """Cluster tests run with `--clusters` or `REPID_TEST_CLUSTERS=1`."""
    return config_option or os.environ.get("REPID_TEST_CLUSTERS") == "1"


def _state_dir() -> Path:
    return Path(os.environ.get("REPID_BROKERS_DIR") or _REPO / ".brokers")


def _brokers(*args: str, timeout: float = 600.0) -> str:
    env = {**os.environ, "REPID_BROKERS_DIR": str(_state_dir())}
    return run_brokers_script(*args, timeout=timeout, env=env)


def _read_env() -> dict[str, str]:
    values: dict[str, str] = {}
    env_file = _state_dir() / "env"
    for line in env_file.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export ") :].partition("=")
            values[name] = value
    return values


@dataclass
class RunningCluster:
    """A started cluster: its addresses, and control over its nodes."""

    name: ClusterName
    env: dict[str, str]
    started_here: bool
    kills: list[int] = field(default_factory=list)

    # -- addresses --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL a user would give: one node (Cluster), the sentinels, or one AMQP node."""
        if self.name == "redis-cluster":
            return self.env["REPID_TEST_REDIS_CLUSTER_URL"]
        if self.name == "redis-sentinel":
            return self.env["REPID_TEST_REDIS_SENTINEL_URL"]
        return self.urls[0]

    @property
    def urls(self) -> list[str]:
        """The three AMQP URLs of the RabbitMQ cluster, node 1 first."""
        return self.env["REPID_TEST_AMQP_CLUSTER_URLS"].split(",")

    @property
    def nodes(self) -> list[tuple[str, int]]:
        """(host, port) of every Redis data node, in node-number order (node 1 first)."""
        variable = (
            "REPID_TEST_REDIS_CLUSTER_NODES"
            if self.name == "redis-cluster"
            else "REPID_TEST_REDIS_SENTINEL_NODES"
        )
        out = []
        for item in self.env[variable].split(","):
            host, _, port = item.rpartition(":")
            out.append((host, int(port)))
        return out

    @property
    def amqp_ports(self) -> list[int]:
        return [int(url.rsplit(":", 1)[1].rstrip("/")) for url in self.urls]

    # -- control ----------------------------------------------------------------------------

    def kill(self, node: int) -> None:
        """SIGKILL node `node` (1-based, in the order of `nodes` / `urls`)."""
        _brokers("kill", f"{self.name}@{node}", timeout=60)
        self.kills.append(node)

    def revive(self) -> None:
        """Start every killed node again (same ports, own data) and wait until healthy."""
        _brokers("start", self.name)
        self.kills.clear()

    def node_of_port(self, port: int) -> int:
        """The node number of the Redis node listening on `port`."""
        return [p for _, p in self.nodes].index(port) + 1


def start_cluster(name: ClusterName) -> RunningCluster:
    """Start `name` (a no-op when it already runs) and return its addresses."""
    before = _read_env() if (_state_dir() / "env").exists() else {}
    marker = {
        "redis-cluster": "REPID_TEST_REDIS_CLUSTER_URL",
        "redis-sentinel": "REPID_TEST_REDIS_SENTINEL_URL",
        "rabbitmq-cluster": "REPID_TEST_AMQP_CLUSTER_URLS",
    }[name]
    _brokers("start", name)
    return RunningCluster(name, _read_env(), started_here=marker not in before)


def stop_cluster(cluster: RunningCluster) -> None:
    """Stop a cluster this session started (one that already ran is left running)."""
    if cluster.started_here:
        _brokers("stop", cluster.name, timeout=300)
    elif cluster.kills:
        cluster.revive()


# -- Redis without a client library (for checks independent of the code under test) --------


def redis_command(host: str, port: int, *args: str | bytes, timeout: float = 5.0) -> bytes:
    """Send one command on a fresh socket and return the raw RESP reply."""
    parts = [a if isinstance(a, bytes) else a.encode() for a in args]
    command = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(command + b"*1\r\n$4\r\nQUIT\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply[: -len(b"+OK\r\n")] if reply.endswith(b"+OK\r\n") else reply


def redis_info(host: str, port: int, section: str) -> dict[str, str]:
    """`INFO section` as a dict."""
    raw = redis_command(host, port, "INFO", section)
    body = raw.split(b"\r\n", 1)[1] if raw.startswith(b"$") else raw
    out = {}
    for line in body.decode(errors="replace").splitlines():
        if ":" in line and not line.startswith("#"):
            name, _, value = line.partition(":")
            out[name] = value
    return out


_CRC16_TABLE: list[int] = []


def _crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), the hash of Redis Cluster's key slots."""
    if not _CRC16_TABLE:
        for byte in range(256):
            crc = byte << 8
            for _ in range(8):
                crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            _CRC16_TABLE.append(crc & 0xFFFF)
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16_TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def key_slot(key: str | bytes) -> int:
    """The Redis Cluster slot of `key` (hash tags honoured), computed independently."""
    raw = key.encode() if isinstance(key, str) else key
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return _crc16(raw) % 16384


def wait_for(check, timeout: float, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll `check()` until it returns a true value (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)
