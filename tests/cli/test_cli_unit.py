"""The `repid` command without a broker: parsing, app loading, check, docs, logs, send."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from repid.cli import build_parser, main
from repid.cli.loading import load_app
from repid.cli.logs import JsonFormatter, TextFormatter, event_name
from repid.cli.options import parse_address
from repid.errors import AppLoadError

from . import apps

ROOT = Path(__file__).resolve().parents[2]

SUBCOMMANDS = [
    ["run"],
    ["check"],
    ["docs"],
    ["docs", "serve"],
    ["docs", "export"],
    ["send"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "replay"],
    ["dlq", "purge"],
    ["stats"],
]


@pytest.mark.parametrize("words", [[], *SUBCOMMANDS], ids=lambda w: " ".join(w) or "repid")
def test_every_subcommand_has_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*words, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: repid")
    assert "--help" in out


def test_run_has_exactly_the_documented_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--server",
        "--workers",
        "--tasks-limit",
        "--graceful-shutdown-time",
        "--messages-limit",
        "--health",
        "--docs",
        "--log-level",
        "--log-format",
        "--reload",
        "--max-messages-per-worker",
        "--loop",
    ):
        assert option in out, option


def test_python_dash_m_repid_and_the_console_script() -> None:
    for command in (
        [sys.executable, "-m", "repid", "--version"],
        [str(Path(sys.executable).parent / "repid"), "--version"],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("repid ")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "tests.cli.apps:app", "--workers", "0"])
    assert info.value.code == 2
    assert "expected at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        (":9000", ("127.0.0.1", 9000)),
        ("9000", ("127.0.0.1", 9000)),
        ("0.0.0.0:1", ("0.0.0.0", 1)),
        ("[::1]:80", ("::1", 80)),
    ],
)
def test_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


# App loading -------------------------------------------------------------------------------


def test_loads_an_attribute_and_a_factory() -> None:
    assert load_app("tests.cli.apps:app") is apps.app
    assert load_app("tests.cli.apps:make_app()") is apps.app


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.cli.apps", "must look like 'package.module:app'"),
        ("tests.cli.apps:", "must look like"),
        ("tests.cli.apps:1x", "must look like"),
        ("tests.cli.nothing_here:app", "no module named 'tests.cli.nothing_here'"),
        ("tests.cli.apps:missing", "has no attribute 'missing'"),
        ("tests.cli.apps:not_an_app", "is 'int', not a Repid app"),
        ("tests.cli.apps:make_app", "is 'function', not a Repid app (if it is a factory, write"),
        ("tests.cli.apps:failing_factory()", "RuntimeError: no config"),
        ("tests.cli.apps:not_an_app()", "is not callable"),
    ],
)
def test_load_errors_name_the_problem(path: str, message: str) -> None:
    with pytest.raises(AppLoadError) as info:
        load_app(path)
    assert message in str(info.value)


def test_a_module_that_raises_on_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "explodes.py").write_text("import not_installed_anywhere_xyz\n")
    (tmp_path / "raises.py").write_text("raise ValueError('bad settings')\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AppLoadError, match="a dependency of your module is missing"):
        load_app("explodes:app")
    with pytest.raises(AppLoadError, match="ValueError: bad settings"):
        load_app("raises:app")


def test_load_errors_are_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "tests.cli.apps:missing"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: module 'tests.cli.apps' has no attribute 'missing'")
    assert "Traceback" not in err


# check -------------------------------------------------------------------------------------


def test_check_prints_servers_channels_and_actors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "tests.cli.apps:app"]) == 0
    out = capsys.readouterr().out
    assert "app: CLI test app 2.0.0" in out
    assert "default: in-memory://localhost (InMemoryServer) [default]" in out
    assert "orders: charge" in out and "emails: send_welcome_email" in out
    assert "orders.submit: sends to orders" in out
    assert out.rstrip().endswith("ok")


def test_check_fails_on_an_actor_a_worker_would_refuse(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "tests.cli.apps:broken"]) == 1
    out = capsys.readouterr().out
    assert "an actor does not compile: wants_unknown: cannot evaluate the annotation" in out
    assert main(["check", "tests.cli.apps:app", "--server", "nope"]) == 1
    assert "no server named 'nope'" in capsys.readouterr().out


def test_check_never_shows_a_password(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("redis")
    from repid import AmqpServer, RedisServer, Repid

    app = Repid()
    app.servers.register_server("r", RedisServer("redis://:hunter2@cache:6379/3"))
    app.servers.register_server("a", AmqpServer("amqp://user:hunter2@rabbit:5672/vh"))
    sys.modules["_cli_secret_app"] = type(sys)("_cli_secret_app")
    sys.modules["_cli_secret_app"].app = app  # type: ignore[attr-defined]
    try:
        assert main(["check", "_cli_secret_app:app"]) == 0
    finally:
        del sys.modules["_cli_secret_app"]
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "redis://cache:6379/3" in out and "amqp://rabbit:5672/vh" in out


# docs export -------------------------------------------------------------------------------


def test_docs_export_json_and_yaml(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["docs", "export", "tests.cli.apps:app"]) == 0
    document = json.loads(capsysbinary.readouterr().out)
    assert document == apps.app.generate_asyncapi_schema()
    target = tmp_path / "asyncapi.yaml"
    assert (
        main(["docs", "export", "tests.cli.apps:app", "--format", "yaml", "-o", str(target)]) == 0
    )
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(target.read_text()) == document


def test_docs_serve_until_sigterm() -> None:
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "repid", "docs", "serve", "tests.cli.apps:app",
         "--address", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/asyncapi.json") as answer:
                    document = json.loads(answer.read())
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert document == apps.app.generate_asyncapi_schema()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as answer:
            assert b"AsyncApiStandalone" in answer.read()
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert (
        f"docs.serving: the AsyncAPI page of 'CLI test app' is at http://127.0.0.1:{port}/"
        in output
    )


# send, stats and dlq on servers that cannot --------------------------------------------------


def test_send_goes_through_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    before = len(apps.memory.queued("orders"))
    assert (
        main(
            [
                "send",
                "tests.cli.apps:app",
                "--channel",
                "orders",
                "--topic",
                "charge",
                "--json",
                '{"order_id": 7}',
                "--header",
                "x-trace=abc",
            ]
        )
        == 0
    )
    assert "sent to 'orders'" in capsys.readouterr().out
    stored = apps.memory.queued("orders")[before:]
    assert [(m.payload, m.headers, m.content_type) for m in stored] == [
        (b'{"order_id":7}', {"x-trace": "abc", "topic": "charge"}, "application/json")
    ]
    assert main(["send", "tests.cli.apps:app", "--channel", "orders", "--json", "{nope"]) == 2


def test_stats_and_dlq_say_when_a_server_cannot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "tests.cli.apps:plain", "--channel", "c"]) == 1
    assert "does not report channel statistics" in capsys.readouterr().err
    assert main(["dlq", "list", "tests.cli.apps:plain", "--channel", "c"]) == 1
    assert "does not support reading dead letters" in capsys.readouterr().err
    assert main(["dlq", "purge", "tests.cli.apps:plain", "--channel", "c"]) == 2
    assert "add --yes" in capsys.readouterr().err


def test_stats_on_the_in_memory_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "tests.cli.apps:app", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["channel"] for row in rows] == ["orders", "emails"]
    assert set(rows[0]) == {"channel", "depth", "in_flight", "dead_letters", "consumers"}
    assert rows[0]["depth"] == len(apps.memory.queued("orders"))


# Logs ---------------------------------------------------------------------------------------


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("repid.worker", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_event_names() -> None:
    assert event_name("worker.started: consuming 'a'") == "worker.started"
    assert event_name("message.processed") == "message.processed"
    assert event_name("Something happened: x") is None
    assert event_name("ratio 1.5: odd") is None


def test_json_lines_have_stable_keys() -> None:
    line = JsonFormatter().format(
        _record("message.processed: %s in %.1f ms", "id-1", 2.5, actor="charge", duration_ms=2.5)
    )
    data = json.loads(line)
    assert list(data)[:6] == ["ts", "level", "logger", "event", "message", "pid"]
    assert data["event"] == "message.processed"
    assert data["message"] == "message.processed: id-1 in 2.5 ms"
    assert data["level"] == "info" and data["logger"] == "repid.worker"
    assert data["actor"] == "charge" and data["duration_ms"] == 2.5
    assert data["ts"].endswith("Z") and "T" in data["ts"]
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("actor.error: failed", channel=object())
        record.exc_info = sys.exc_info()
    data = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in data["exc_info"]
    assert data["channel"].startswith("<object object")


def test_text_lines() -> None:
    line = TextFormatter().format(_record("worker.started: consuming %r", "orders"))
    assert " INFO    [" in line
    assert line.endswith("repid.worker: worker.started: consuming 'orders'")


def test_repid_is_silent_as_a_library() -> None:
    script = (
        "import asyncio\n"
        "from tests.cli.apps import app, memory\n"
        "async def main():\n"
        "    async with memory.connection():\n"
        "        await app.send_message_json(channel='orders', payload={'order_id': 1},"
        " headers={'topic': 'charge'})\n"
        "        await app.run_worker(messages_limit=1, register_signals=[])\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
