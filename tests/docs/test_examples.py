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
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import brokers

from .blocks import Block, collect_blocks, rabbitmq_definitions
from .names import check_repid_names

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = collect_blocks()
DEFINITIONS = rabbitmq_definitions()
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
            source = block.options.get("copy")
            if block.page == page and source:
                shutil.copy(ROOT / source, folder / Path(source).name)
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _broker_env(block: Block) -> dict[str, str]:
    """The variables the pages read: the brokers this block needs and free ports."""
    # The pages' HTTP servers default to 8080/8081; other test runs may hold those here.
    env = {"HEALTH_PORT": str(_free_port()), "ASYNCAPI_PORT": str(_free_port())}
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


_flushed_pages: set[str] = set()
_defined_pages: set[str] = set()


def _prepare_brokers(block: Block, env: dict[str, str]) -> None:
    # The Redis database of the examples is emptied once per page: a page's blocks build on
    # each other (a producer block, then a worker block).
    if "REDIS_URL" in env and block.page not in _flushed_pages:
        _flushed_pages.add(block.page)
        import redis

        client = redis.Redis.from_url(env["REDIS_URL"])
        try:
            client.flushdb()
        finally:
            client.close()
    if "AMQP_URL" in env and block.page in DEFINITIONS and block.page not in _defined_pages:
        _defined_pages.add(block.page)
        for text in DEFINITIONS[block.page]:
            document = json.loads(text)
            for queue in document.get("queues", []):
                brokers.rabbitmq_delete_queue(queue["name"])
            brokers.rabbitmq_load_definitions(document)
    for name in filter(None, block.options.get("queues", "").split(",")):
        brokers.rabbitmq_delete_queue(name)
        brokers.rabbitmq_declare_queue(name, {"x-queue-type": "quorum"})
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


_skipped_pages: set[str] = set()
"""Pages with a skipped block (no broker here): the blocks continuing it are skipped too."""


def _run_in_process(block: Block, folder: Path) -> str:
    if "continue" in block.options:
        if block.page in _skipped_pages and block.page not in _namespaces:
            pytest.skip(f"{block.id}: the block it continues was skipped")
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
    log = folder / "example.stderr"
    with log.open("w") as stderr:
        return _supervise(block, script, log, stderr, env)


def _supervise(block: Block, script: Path, log: Path, stderr: Any, env: dict[str, str]) -> str:
    folder = script.parent
    process = subprocess.Popen(
        [sys.executable, "-u", str(script)],
        cwd=folder,
        env={**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    stop_on = block.options.get("stop-on")
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []
    try:
        assert process.stdout is not None
        reader = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
        reader.start()
        if stop_on is not None:
            deadline = time.monotonic() + BLOCK_TIMEOUT
            while stop_on not in "".join(output):
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise AssertionError(f"{block.id}: no {stop_on!r} in {BLOCK_TIMEOUT} s")
                if not line:
                    raise AssertionError(f"{block.id}: exited before printing {stop_on!r}")
                output.append(line)
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=BLOCK_TIMEOUT)
        reader.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    while not lines.empty():
        output.append(lines.get())
    errors = log.read_text()
    assert process.returncode == 0, f"{block.id}: exit code {process.returncode}\n{errors}"
    return "".join(output)


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)
    lines.put("")


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_docs_example_runs(
    block: Block, workdirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = _workdir(workdirs, tmp_path_factory, block.page)
    try:
        env = _broker_env(block)
    except pytest.skip.Exception:
        _skipped_pages.add(block.page)
        raise
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


def test_every_file_block_is_imported_by_a_run_block() -> None:
    # A `file=` block is executed only through the blocks that import it: one that nothing
    # imports would be an unchecked example.
    for block in BLOCKS:
        path = block.options.get("file")
        if not path:
            continue
        module = path.removesuffix(".py").replace("/", ".")
        importers = [
            b
            for b in RUN
            if b.page == block.page
            and (f"from {module} import" in b.source or f"import {module}" in b.source)
        ]
        assert importers, f"{block.id}: no run block of the page imports {module}"
