"""A private RabbitMQ 4 for fault injection: `scripts/brokers.sh` with a state dir of its own,
`rabbitmqctl` inside the node's chroot, and the management HTTP API."""

from __future__ import annotations

import os
import time
import urllib.parse
from pathlib import Path
from typing import Any

from ._util import http_json, run_tool, wait_for, wait_for_port

__all__ = ["RabbitBroker"]

ROOT = Path(__file__).resolve().parents[2]
BROKERS_SCRIPT = ROOT / "scripts" / "brokers.sh"


class RabbitBroker:
    """RabbitMQ 4 started by scripts/brokers.sh in `state_dir` (its own ports, node and data).

    Faults: `restart()` (`rabbitmqctl stop`, a graceful node stop, then a start on the same
    ports and data), `kill()` (SIGKILL of every process of the node). Queues are declared
    through the management API, since Repid creates no topology.
    """

    name = "amqp"

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir or ROOT / ".bench" / "reliability-brokers"
        self.env: dict[str, str] = {}

    def _script(self, *args: str, timeout: float = 900.0) -> str:
        environment = {**os.environ, "REPID_BROKERS_DIR": str(self.state_dir)}
        import subprocess

        proc = subprocess.run(
            ["bash", str(BROKERS_SCRIPT), *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"brokers.sh {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def start(self) -> None:
        self._script("start", "rabbitmq")
        self.env = {}
        for raw in (self.state_dir / "env").read_text().splitlines():
            key, sep, value = raw.removeprefix("export ").partition("=")
            if sep:
                self.env[key] = value.strip().strip("'\"")

    def stop(self) -> None:
        self._script("stop", "rabbitmq", timeout=300)

    def cleanup(self) -> None:
        """Stop the node and delete its state dir (a copy of the root: about 200 MB)."""
        self._script("purge", timeout=300)

    @property
    def url(self) -> str:
        return self.env["REPID_TEST_AMQP_URL"]

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.url).port or 5672

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def url_via(self, port: int) -> str:
        return f"amqp://guest:guest@127.0.0.1:{port}/"

    @property
    def management(self) -> str:
        return self.env["REPID_TEST_RABBITMQ_MANAGEMENT_URL"].rstrip("/")

    # -- rabbitmqctl ----------------------------------------------------------------------------

    def rabbitmqctl(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        """`rabbitmqctl ARGS` run inside the node's chroot (as the node's own user, root)."""
        root = self.state_dir / "rabbitmq" / "root"
        return run_tool(
            ["chroot", str(root), "/usr/bin/env", "-i", "HOME=/var/lib/rabbitmq",
             "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
             "/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", "rabbit@localhost", *args],
            timeout=timeout,
            check=check,
        )  # fmt: skip

    def is_up(self) -> bool:
        try:
            self.api("GET", "/api/overview", timeout=3)
        except Exception:
            return False
        return True

    def restart(self, down_for: float = 2.0, *, mode: str = "node") -> float:
        """Restart the broker; return the monotonic time it answers again.

        `node`: `rabbitmqctl stop` (the whole node, gracefully), down `down_for` s, then a new
        node on the same ports and data. `app`: `rabbitmqctl stop_app` / `start_app` (the
        RabbitMQ application inside the running Erlang VM: every connection is closed, the
        listeners go away and the queues restart; a few seconds faster than a node restart).
        """
        if mode == "app":
            self.rabbitmqctl("stop_app")
            time.sleep(down_for)
            self.rabbitmqctl("start_app")
            wait_for(lambda: self.is_up() and wait_for_port(self.port, 0.5), 120, 0.2)
            return time.monotonic()
        self.rabbitmqctl("stop", check=False)
        wait_for(lambda: not self.is_up(), 60)
        time.sleep(down_for)
        self._script("start", "rabbitmq")
        return time.monotonic()

    def kill(self) -> None:
        self._script("kill", "rabbitmq", timeout=120)

    # -- management API -------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return http_json(method, self.management + path, body, auth=("guest", "guest"), **kwargs)

    def declare_queue(self, name: str, *, queue_type: str = "quorum", **arguments: Any) -> None:
        self.api(
            "PUT",
            f"/api/queues/%2F/{urllib.parse.quote(name, safe='')}",
            {"durable": True, "auto_delete": False,
             "arguments": {"x-queue-type": queue_type, **arguments}},
        )  # fmt: skip

    def delete_queue(self, name: str) -> None:
        self.api("DELETE", f"/api/queues/%2F/{urllib.parse.quote(name, safe='')}", allow=(404,))

    def queue(self, name: str) -> dict[str, Any]:
        info = self.api("GET", f"/api/queues/%2F/{urllib.parse.quote(name, safe='')}", allow=(404,))
        return dict(info or {})

    def connection_count(self) -> int:
        return len(self.api("GET", "/api/connections") or [])
