"""Running `python -m repid ...` as a subprocess and reading what it logs and its actors did."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# The project a `repid run` test starts: each worker process appends "start N" / "done N"
# lines to OUT/<pid>.log (line-buffered), sleeping SLEEP seconds in between.
PROJECT = textwrap.dedent(
    """
    import asyncio
    import os

    from repid import RedisServer, Repid, Router

    VERSION = "v1"
    OUT = os.environ["CLI_TEST_OUT"]
    SLEEP = float(os.environ.get("CLI_TEST_SLEEP", "0"))

    app = Repid(title="CLI test")
    app.servers.register_server(
        "default",
        RedisServer(os.environ["REPID_TEST_REDIS_URL"], claim_idle=2.0, block=0.5),
        is_default=True,
    )
    router = Router()
    _log = open(os.path.join(OUT, f"{os.getpid()}.log"), "a", buffering=1)


    @router.actor(channel=os.environ["CLI_TEST_CHANNEL"])
    async def work(n: int) -> None:
        _log.write(f"start {n} {VERSION}\\n")
        await asyncio.sleep(SLEEP)
        _log.write(f"done {n} {VERSION}\\n")


    app.include_router(router)
    """
)


def write_project(directory: Path, module: str = "project") -> Path:
    (directory / "out").mkdir(exist_ok=True)
    path = directory / f"{module}.py"
    path.write_text(PROJECT)
    return path


class Command:
    """One `python -m repid ...` process; its stderr goes to a file we poll."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.log_path = cwd / f"repid-{len(list(cwd.glob('repid-*.log')))}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "repid", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(cwd), **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal's job: we send the signals ourselves
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self) -> list[str]:
        return self.text().splitlines()

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines() if line.strip()]

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.text()))

    def wait_for(self, pattern: str, timeout: float = 30.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.count(pattern) < count:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"exited ({self.process.returncode}) before {pattern!r}:\n{self.text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} x{count} in {timeout} s:\n{self.text()}")
            time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout} s:\n{self.text()}") from None

    def stop(self) -> None:
        """End the process (and, through the supervisor, its workers) if still running."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self._log.close()


def worker_pids(command: Command) -> list[int]:
    """Worker pids in start order, from the supervisor's log."""
    return [
        int(p)
        for p in re.findall(r"supervisor\.worker_started: worker \d+, pid (\d+)", command.text())
    ]


def activity(out: Path) -> dict[int, list[tuple[str, int, str]]]:
    """(kind, n, version) lines by worker pid."""
    found: dict[int, list[tuple[str, int, str]]] = {}
    for log in out.glob("*.log"):
        entries = []
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                entries.append((parts[0], int(parts[1]), parts[2]))
        found[int(log.stem)] = entries
    return found


def done_counts(out: Path) -> Counter[int]:
    return Counter(
        n for entries in activity(out).values() for kind, n, _ in entries if kind == "done"
    )


def started(out: Path) -> Counter[int]:
    return Counter(
        n for entries in activity(out).values() for kind, n, _ in entries if kind == "start"
    )


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
