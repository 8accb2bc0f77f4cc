"""The built package: sdist and wheel contents, and the wheel in fresh virtual environments.

One sdist and one wheel are built per test run (the wheel from the sdist, with npm out of
reach, which proves the sdist carries the AsyncAPI bundle); each virtual environment is made
once (`python -m venv --without-pip`, then this environment's pip installs into it).
"""

from __future__ import annotations

import asyncio
import email
import hashlib
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from repid.asyncapi import assets

from .. import brokers
from ..asyncapi.test_server import chromium_or_skip, run_chromium
from .checks import DOCS_APP, ROUND_TRIP

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = [
    "redis",
    "amqp",
    "pubsub",
    "pydantic",
    "yaml",
    "opentelemetry",
    "prometheus",
    "reload",
    "uvloop",
]
pytestmark = pytest.mark.slow


class Built:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sdist = next(directory.glob("repid-*.tar.gz"))
        self.wheel = next(directory.glob("repid-*.whl"))
        self.venvs: dict[str, Path] = {}

    def venv(self, extra: str | None) -> Path:
        """A fresh virtual environment with the wheel (and `extra`) installed."""
        key = extra or "core"
        if key not in self.venvs:
            target = self.directory / f"venv-{key}"
            subprocess.run(
                [sys.executable, "-m", "venv", "--without-pip", str(target)],
                check=True,
                timeout=120,
            )
            requirement = f"{self.wheel}[{extra}]" if extra else str(self.wheel)
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "--python",
                    str(target / "bin" / "python"),
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    requirement,
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            self.venvs[key] = target
        return self.venvs[key]


@pytest.fixture(scope="session")
def built() -> Iterator[Built]:
    with tempfile.TemporaryDirectory(prefix="repid-build-") as tmp:
        out = Path(tmp)
        build = [sys.executable, "-m", "build", "--outdir", str(out)]
        done = subprocess.run(
            [*build, "--sdist", str(ROOT)], capture_output=True, text=True, timeout=600, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        sdist = next(out.glob("repid-*.tar.gz"))
        # The wheel from the sdist, where npm cannot be found and no tarball is cached.
        no_npm = {
            **os.environ,
            "PATH": os.pathsep.join(
                p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "npm").exists()
            ),
            "REPID_NPM_CACHE": str(out / "empty-npm-cache"),
        }
        done = subprocess.run(
            [*build, "--wheel", str(sdist)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=no_npm,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        yield Built(out)


def test_sdist_and_wheel_carry_the_verified_bundle_and_metadata(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = wheel.namelist()
        for name, digest in assets.ASSET_SHA256.items():
            data = wheel.read(f"repid/asyncapi/static/{name}")
            assert hashlib.sha256(data).hexdigest() == digest, name
        metadata = email.message_from_bytes(
            wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        )
        entry_points = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
        assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    with tarfile.open(built.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    for name in assets.ASSET_SHA256:
        assert f"repid/asyncapi/static/{name}" in members
    assert {"LICENSE", "README.md", "setup.py", "scripts/fetch_asyncapi_assets.py"} <= members
    assert "repid = repid.cli:main" in entry_points
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("h11") and "extra" not in r for r in requires)
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["License-Expression"] == "MIT"
    classifiers = metadata.get_all("Classifier") or []
    for version in ("3.10", "3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert metadata.get_all("Project-URL")
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert set(EXTRAS) | {"all"} == extras  # no test tools among them


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, b""
    except OSError:
        return 0, b""


async def test_the_core_install_serves_health_and_a_docs_page_that_renders_offline(
    built: Built, tmp_path: Path
) -> None:
    venv = await asyncio.to_thread(built.venv, None)
    (tmp_path / "docs_app.py").write_text(DOCS_APP)
    health, docs = _free_port(), _free_port()
    process = subprocess.Popen(
        [
            str(venv / "bin" / "repid"),
            "run",
            "docs_app:app",
            "--health",
            f"127.0.0.1:{health}",
            "--docs",
            f"127.0.0.1:{docs}",
        ],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while _get(health, "/readyz")[0] != 200:
            assert process.poll() is None, process.communicate()[0].decode()
            assert time.monotonic() < deadline, "the worker never became ready"
            await asyncio.sleep(0.1)
        status, script = _get(docs, "/static/asyncapi-react.js")
        assert status == 200 and b"AsyncApiStandalone" in script
        binary = chromium_or_skip()
        dom = (await run_chromium(binary, f"http://127.0.0.1:{docs}/", "--dump-dom")).decode()
        rendered = re.sub(r"<script\b[^>]*>.*?</script>", "", dom, flags=re.S)
        assert 'class="aui-root"' in rendered
        for name in ("process_order", "send_welcome_email", "Packaged docs"):
            assert name in rendered, name
        assert "Could not load the AsyncAPI React component" not in rendered
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0, output
    assert "asyncapi_server.assets_missing" not in output  # served from the wheel, no CDN


def _broker_environment(extra: str) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "CHECK_CHANNEL": f"pkg-{uuid.uuid4().hex[:8]}"}
    if extra == "redis":
        env["REPID_TEST_REDIS_URL"] = brokers.redis_url()
    elif extra == "amqp":
        env["REPID_TEST_AMQP_URL"] = brokers.amqp_url()
        brokers.rabbitmq_declare_queue(env["CHECK_CHANNEL"], arguments={"x-queue-type": "quorum"})
    elif extra == "pubsub":
        host, project = brokers.pubsub_host(), brokers.pubsub_project()
        env |= {"REPID_TEST_PUBSUB_HOST": host, "PUBSUB_PROJECT_ID": project}
        brokers.pubsub_create_topic(project, env["CHECK_CHANNEL"])
        brokers.pubsub_create_subscription(project, env["CHECK_CHANNEL"], env["CHECK_CHANNEL"])
    return env


@pytest.mark.parametrize("extra", EXTRAS)
def test_each_extra_alone_imports_and_runs(built: Built, extra: str, tmp_path: Path) -> None:
    env = _broker_environment(extra)
    venv = built.venv(extra)
    script = tmp_path / "check.py"
    script.write_text(ROUND_TRIP)
    done = subprocess.run(
        [str(venv / "bin" / "python"), str(script), extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"ok {extra}")
    if extra == "amqp":
        brokers.rabbitmq_delete_queue(env["CHECK_CHANNEL"])


def test_the_core_install_has_no_extra_dependency(built: Built) -> None:
    venv = built.venv(None)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "--version"], capture_output=True, check=False
    )
    assert done.returncode != 0  # made without pip: what is there came from the wheel alone
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "list",
            "--format=freeze",
            "--disable-pip-version-check",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    names = sorted(line.split("==")[0].lower() for line in listing.split())
    expected = ["h11", "repid"] + (["typing_extensions"] if sys.version_info < (3, 11) else [])
    assert names == expected
