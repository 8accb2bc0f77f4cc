"""The documentation site, built once per test session with `mkdocs build --strict`."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def require_or_skip(reason: str) -> None:
    """Skip, or fail in the full test run (REPID_REQUIRE_BROKERS=1), where everything is
    installed."""
    if os.environ.get("REPID_REQUIRE_BROKERS") == "1":
        pytest.fail(f"{reason} (REPID_REQUIRE_BROKERS=1)")
    pytest.skip(reason)


@dataclass(frozen=True)
class BuiltSite:
    path: Path
    output: str
    seconds: float


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    if importlib.util.find_spec("mkdocs") is None:
        require_or_skip("the docs tools are not installed: pip install --group docs")
    site = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{output}"
    return BuiltSite(site, output, time.monotonic() - started)
