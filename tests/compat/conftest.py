"""repid 2.1.4 as a peer process: where its interpreter is, and how to run `peer.py` with it.

scripts/test.sh creates the 2.x virtual environment once per run (benchmarks/baseline.sh) and
exports REPID_COMPAT_PYTHON; locally, `bash benchmarks/baseline.sh` does the same into
.bench/baseline-venv, which is used when the variable is not set.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import brokers

ROOT = Path(__file__).resolve().parents[2]
PEER = Path(__file__).with_name("peer.py")
REPID2_VERSION = "2.1.4"


def _repid2_python() -> str:
    path = os.environ.get("REPID_COMPAT_PYTHON") or str(ROOT / ".bench/baseline-venv/bin/python")
    if not Path(path).is_file():
        message = (
            f"repid {REPID2_VERSION}'s interpreter is missing ({path}): run "
            "`bash benchmarks/baseline.sh` (scripts/test.sh does) or set REPID_COMPAT_PYTHON"
        )
        if brokers.brokers_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def repid2_python() -> str:
    python = _repid2_python()
    # -I: the checkout (current directory, PYTHONPATH) is not on its sys.path.
    version = subprocess.run(
        [python, "-I", "-c", "import importlib.metadata as m; print(m.version('repid'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert version == REPID2_VERSION, f"{python} has repid {version}, not {REPID2_VERSION}"
    return python


class Peers:
    """Starts `peer.py` under either package and reads what the workers recorded."""

    def __init__(self, repid2_python: str, broker: str, tmp_path: Path) -> None:
        self.repid2_python = repid2_python
        self.broker = broker
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, impl: str, *args: str) -> subprocess.Popen[bytes]:
        """Run peer.py as `impl` ("2.x" or "ours") with `args` (see peer.py)."""
        env = dict(os.environ)
        if impl == "ours":
            command = [sys.executable, str(PEER)]
            env["PYTHONPATH"] = str(ROOT)
        else:
            command = [self.repid2_python, "-I", str(PEER)]
            env.pop("PYTHONPATH", None)
        log = open(self.tmp_path / f"{impl}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [*command, "--broker", self.broker, "--impl", impl, *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def run(self, impl: str, *args: str, timeout: float = 60.0) -> None:
        """Run a peer to completion (a producer) and check it succeeded."""
        proc = self.start(impl, *args)
        assert proc.wait(timeout) == 0, self.logs()

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        """SIGTERM a worker: both packages shut down gracefully and exit 0."""
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout) == 0, self.logs()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.tmp_path.glob("*.log"))
        )

    def out(self, name: str) -> str:
        return str(self.tmp_path / name)

    def records(self, *names: str) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for name in names:
            path = self.tmp_path / name
            if path.exists():
                text = path.read_text(encoding="utf-8")
                # A line being written may be incomplete: only whole lines count.
                lines += [
                    json.loads(line)
                    for line in text.splitlines(keepends=True)
                    if line.endswith("\n")
                ]
        return lines

    def wait_until(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            for proc in self.procs:
                if proc.poll() not in (None, 0):
                    raise AssertionError(f"a peer failed while waiting for {what}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")
            time.sleep(0.1)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def peers_factory(repid2_python: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Peers] = []

    def make(broker: str) -> Peers:
        peers = Peers(repid2_python, broker, tmp_path)
        made.append(peers)
        return peers

    yield make
    for peers in made:
        peers.kill_all()
