"""A private redis-server for fault injection, driven with `redis-server` and `redis-cli`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

from ._util import free_port, run_tool, wait_for

__all__ = ["RedisBroker"]


class RedisBroker:
    """redis-server on a free loopback port with AOF (`appendfsync always`), so that a restart
    or a SIGKILL of the broker loses nothing it acknowledged.

    Faults: `restart()` (redis-cli SHUTDOWN, which writes the AOF, then a new server on the same
    port and data), `kill()` (SIGKILL). Inspection and bad input go through `cli()`.
    """

    name = "redis"

    def __init__(self, *, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if binary is None or cli is None:
            raise RuntimeError("redis-server and redis-cli are needed (apt-get install redis)")
        self.binary = binary
        self.cli_binary = cli
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="repid-reliability-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def url_via(self, port: int) -> str:
        """The URL through a proxy listening on `port`."""
        return f"redis://127.0.0.1:{port}/0"

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self, timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--daemonize", "no", "--logfile", os.path.join(self.dir, "log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not wait_for(lambda: self.cli("PING").strip() == "PONG", timeout):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def is_up(self) -> bool:
        try:
            return self.cli("PING", timeout=2).strip() == "PONG"
        except Exception:
            return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self, down_for: float = 2.0, *, mode: str = "node") -> float:
        """SHUTDOWN (AOF flushed), stay down `down_for` seconds, start again on the same port.

        Returns the monotonic time the new server answered PING. `mode` is accepted for
        symmetry with `RabbitBroker.restart` and ignored.
        """
        self.cli("SHUTDOWN", check=False)
        if self.proc is not None:
            self.proc.wait(20)
            self.proc = None
        time.sleep(down_for)
        self.start()
        return time.monotonic()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- redis-cli ------------------------------------------------------------------------------

    def cli(self, *args: str | bytes, timeout: float = 30.0, check: bool = True) -> str:
        """Run `redis-cli -p PORT ARGS...` (bytes arguments go through unchanged)."""
        command: list[str | bytes] = [self.cli_binary, "-p", str(self.port), *args]
        proc = subprocess.run(
            command, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
        out = proc.stdout.decode(errors="replace")
        if check and (proc.returncode != 0 or out.startswith(("ERR", "(error)"))):
            raise RuntimeError(f"redis-cli {args[:2]!r}: {out}{proc.stderr.decode()}")
        return out

    def stream_keys(self, channel: str) -> list[str]:
        """Keys of type stream whose name contains `channel` (the channel's stream, whatever the
        package under test calls it, and its dead-letter stream)."""
        out = run_tool(
            [self.cli_binary, "-p", str(self.port), "--scan", "--pattern", f"*{channel}*"]
        )
        keys = [line for line in out.splitlines() if line]
        return sorted(key for key in keys if self.cli("TYPE", key).strip() == "stream")

    def xlen(self, key: str) -> int:
        return int(self.cli("XLEN", key).strip() or 0)

    def backlog(self, key: str) -> int:
        """Entries of `key` that some consumer group still has to settle: pending (delivered,
        not acked) plus lag (not delivered yet), summed over the groups."""
        lines = self.cli("XINFO", "GROUPS", key, check=False).splitlines()
        total = 0
        for name, value in zip(lines[0::2], lines[1::2], strict=False):
            if name in ("pending", "lag") and value.strip().isdigit():
                total += int(value)
        return total

    def used_memory(self) -> int:
        for line in self.cli("INFO", "memory").splitlines():
            if line.startswith("used_memory:"):
                return int(line.split(":", 1)[1])
        return 0
