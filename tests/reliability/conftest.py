"""Private brokers for the reliability scenarios, shared by the whole session.

The scenarios kill, restart and cut their brokers, so they never use the shared test brokers:
the harness starts its own (benchmarks/faults): a redis-server, a RabbitMQ 4 through
scripts/brokers.sh with a state dir of its own, and a Pub/Sub emulator, each on free ports,
started once (in parallel) and stopped at the end of the session.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchmarks.faults import pubsub as pubsub_faults
from benchmarks.reliability import BrokerEnv
from tests.brokers import brokers_required


def _available(name: str) -> str | None:
    """Why `name` cannot run here, or None."""
    if name == "redis" and not (shutil.which("redis-server") and shutil.which("redis-cli")):
        return "redis-server and redis-cli are not installed"
    if (
        name == "amqp"
        and not Path("/var/cache/repid/rabbitmq-root-4").exists()
        and not (shutil.which("debootstrap"))
    ):
        return "RabbitMQ 4 cannot be built here (no debootstrap, no cached root)"
    if name == "pubsub" and not Path(pubsub_faults.EMULATOR).exists():
        return "the Pub/Sub emulator is not installed"
    return None


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability"


@pytest.fixture(scope="session")
def reliability_root() -> Path:
    """Where the runs keep their records and worker logs (kept after the session: a failing
    test names its run's directory)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=ARTIFACTS))


@pytest.fixture(scope="session")
def broker_envs(reliability_root: Path) -> Iterator[dict[str, BrokerEnv]]:
    """Every broker the scenarios use, started in parallel on first use of the fixture."""
    envs = {
        name: BrokerEnv(name, reliability_root / "brokers")
        for name in ("memory", "redis", "amqp", "pubsub")
    }
    missing = {name: why for name in envs if (why := _available(name))}
    startable = [env for name, env in envs.items() if name not in missing]
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(len(startable)) as pool:
        for env, future in [(env, pool.submit(env.start)) for env in startable]:
            try:
                future.result()
            except Exception as exc:
                errors[env.name] = repr(exc)
    for name, why in {**missing, **errors}.items():
        envs.pop(name)
        if brokers_required():
            pytest.fail(f"reliability broker {name}: {why}", pytrace=False)
    try:
        yield envs
    finally:
        for env in envs.values():
            env.stop()
