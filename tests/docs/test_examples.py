"""Every Python code block in docs/ runs (or is a marked fragment whose repid names exist).

See `blocks.py` for the markers. Blocks run in this process (a fresh namespace each, named
`__main__`, in a working folder of their page) unless marked `subprocess`. Broker blocks read
the broker addresses from the environment variables the pages use (`REDIS_URL`, `AMQP_URL`,
`PUBSUB_EMULATOR_HOST`, `PUBSUB_PROJECT_ID`), pointed here at the brokers the test command
started.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import inspect
import io
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import brokers

from .blocks import Block, collect_blocks
from .names import check_repid_names

BLOCKS = collect_blocks()
RUN = [b for b in BLOCKS if b.kind == "run"]
CHECKED = [b for b in BLOCKS if b.kind != "run"]
BLOCK_TIMEOUT = 120.0  # seconds; a hung example must not hang the whole run
DOCS_REDIS_DB = 9  # examples get a database of their own, emptied before each block


@pytest.fixture(scope="session")
def workdirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {}


_namespaces: dict[str, dict[str, Any]] = {}


def _workdir(
    workdirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, page: str
) -> Path:
    """The page's working folder, with the page's `file=` blocks written into it."""
    if page not in workdirs:
        folder = tmp_path_factory.mktemp(page.replace("/", "-").removesuffix(".md"))
        for block in BLOCKS:
            path = block.options.get("file")
            if block.page != page or not path:
                continue
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            for package in Path(path).parents:
                if package != Path(".") and not (folder / package / "__init__.py").exists():
                    (folder / package / "__init__.py").write_text("")
            target.write_text(block.source, encoding="utf-8")
        workdirs[page] = folder
    return workdirs[page]


def _broker_env(block: Block) -> dict[str, str]:
    """The variables the pages read, for the brokers this block needs."""
    env: dict[str, str] = {}
    needs = block.options.get("needs")
    if needs == "redis":
        parts = urllib.parse.urlsplit(brokers.redis_url())
        env["REDIS_URL"] = urllib.parse.urlunsplit(parts._replace(path=f"/{DOCS_REDIS_DB}"))
    elif needs == "amqp":
        env["AMQP_URL"] = brokers.amqp_url()
    elif needs == "pubsub":
        env["PUBSUB_EMULATOR_HOST"] = brokers.pubsub_host()
        env["PUBSUB_PROJECT_ID"] = brokers.pubsub_project()
    return env


def _prepare_brokers(block: Block, env: dict[str, str]) -> None:
    if "REDIS_URL" in env:
        import redis

        client = redis.Redis.from_url(env["REDIS_URL"])
        try:
            client.flushdb()
        finally:
            client.close()
    for queue in filter(None, block.options.get("queues", "").split(",")):
        brokers.rabbitmq_delete_queue(queue)
        brokers.rabbitmq_declare_queue(queue, {"x-queue-type": "quorum"})
    project = env.get("PUBSUB_PROJECT_ID")
    for topic in filter(None, block.options.get("topics", "").split(",")):
        assert project is not None, f"{block.id}: topics= needs needs=pubsub"
        brokers.pubsub_delete_subscription(project, topic)
        brokers.pubsub_delete_topic(project, topic)
        brokers.pubsub_create_topic(project, topic)
        brokers.pubsub_create_subscription(project, topic, topic)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _in_folder(folder: Path) -> Iterator[None]:
    before_modules = set(sys.modules)
    previous = Path.cwd()
    sys.path.insert(0, str(folder))
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)
        sys.path.remove(str(folder))
        # Modules the page wrote (myapp.app ...) must not leak into the next page.
        for name in set(sys.modules) - before_modules:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(str(folder)):
                del sys.modules[name]


def _run_tests_in(namespace: dict[str, Any]) -> int:
    ran = 0
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            result = value()
            if inspect.iscoroutine(result):
                asyncio.run(result)
            ran += 1
    return ran


def _run_in_process(block: Block, folder: Path) -> str:
    if "continue" in block.options:
        assert block.page in _namespaces, f"{block.id}: `continue` needs a block before it"
        namespace = _namespaces[block.page]
    else:
        namespace = {"__name__": "__main__", "__file__": str(folder / "example.py")}
    code = compile(block.source, f"docs/{block.id}", "exec")
    out = io.StringIO()
    faulthandler.dump_traceback_later(BLOCK_TIMEOUT, exit=True)
    try:
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
            if "pytest" in block.options:
                assert _run_tests_in(namespace) > 0, f"{block.id}: no test_* function"
    finally:
        faulthandler.cancel_dump_traceback_later()
        _namespaces[block.page] = namespace
    return out.getvalue()


def _run_subprocess(block: Block, folder: Path, env: dict[str, str]) -> str:
    script = folder / "example.py"
    script.write_text(block.source, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-u", str(script)],
        cwd=folder,
        env={**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stop_on = block.options.get("stop-on")
    output: list[str] = []
    try:
        if stop_on is not None:
            assert process.stdout is not None
            deadline = time.monotonic() + BLOCK_TIMEOUT
            while stop_on not in "".join(output):
                line = process.stdout.readline()
                if not line:
                    break
                output.append(line)
                assert time.monotonic() < deadline, f"{block.id}: no {stop_on!r} in time"
            assert stop_on in "".join(output), f"{block.id}: exited before printing {stop_on!r}"
            process.send_signal(signal.SIGTERM)
        rest, errors = process.communicate(timeout=BLOCK_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output.append(rest)
    assert process.returncode == 0, f"{block.id}: exit code {process.returncode}\n{errors}"
    return "".join(output)


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_docs_example_runs(
    block: Block, workdirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = _workdir(workdirs, tmp_path_factory, block.page)
    env = _broker_env(block)
    _prepare_brokers(block, env)
    with _environment(env), _in_folder(folder):
        if "subprocess" in block.options:
            stdout = _run_subprocess(block, folder, env)
        else:
            stdout = _run_in_process(block, folder)
    if block.expected_output is not None:
        assert stdout.strip().splitlines() == block.expected_output.strip().splitlines()


@pytest.mark.parametrize("block", CHECKED, ids=[b.id for b in CHECKED])
def test_docs_fragment_names_exist(block: Block) -> None:
    # `file=` blocks also run, imported by the blocks after them on their page.
    problems = check_repid_names(block.source)
    assert not problems, f"{block.id}:\n" + "\n".join(problems)


def test_every_python_block_is_accounted_for() -> None:
    # Each block is either executed or checked; this states the totals (see the note).
    assert len(BLOCKS) == len(RUN) + len(CHECKED)
    assert len(RUN) >= 1
