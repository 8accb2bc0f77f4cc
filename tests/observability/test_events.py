"""Stable event names: every logging call in `repid/` names an event of `repid.events.EVENTS`
and passes structured fields in `extra`; the table lists no event nobody logs."""

from __future__ import annotations

import ast
import functools
import logging
import re
import subprocess
import sys
from pathlib import Path

from repid.events import EVENTS, event_of, events_markdown

PACKAGE = Path(__file__).resolve().parents[2] / "repid"
METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
NAME = re.compile(r"([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)(?::|$)")
LOOSE = re.compile(r"([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)")

# Known gaps: (file, event) records allowed to lack `extra` for now. Empty since issue 12's
# rewrite of the servers; an entry that no longer needs to be here fails the test, so this
# list only shrinks.
PENDING: set[tuple[str, str]] = set()


@functools.cache
def package_trees() -> tuple[tuple[Path, ast.Module], ...]:
    """Every module of `repid/`, parsed once for all the tests here."""
    return tuple(
        (path, ast.parse(path.read_text(), filename=str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    )


def logging_calls() -> list[tuple[str, int, ast.Call]]:
    """Calls like `logger.info(...)` / `log.warning(...)` on a logger-named object."""
    found = []
    for path, tree in package_trees():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in METHODS:
                continue
            target = node.func.value
            name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
            if "log" not in name.lower() or name in {"logging"}:
                continue
            found.append((str(path.relative_to(PACKAGE.parent)), node.lineno, node))
    return found


def message_text(call: ast.Call) -> str | None:
    args = (
        call.args[1:]
        if isinstance(call.func, ast.Attribute) and call.func.attr == "log"
        else call.args
    )
    if not args:
        return None
    first = args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    if isinstance(first, ast.JoinedStr) and first.values:
        head = first.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value
    return None


def test_the_scan_sees_the_package() -> None:
    calls = logging_calls()
    assert len(calls) > 100  # the scan would find nothing if it were broken


def test_no_record_goes_to_the_root_logger() -> None:
    """`logging.info(...)` and friends would bypass the `repid.*` loggers (and configure the
    root logger as a side effect): every record goes through a named logger."""
    problems = []
    for path, tree in package_trees():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in METHODS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "logging"
            ):
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert problems == []


def test_every_record_names_an_event_of_the_table_and_has_fields() -> None:
    problems = []
    exempt_seen = set()
    for path, line, call in logging_calls():
        text = message_text(call)
        loose = LOOSE.match(text or "")
        complete = NAME.match(text or "") is not None and any(
            keyword.arg == "extra" for keyword in call.keywords
        )
        if loose is not None and (path, loose.group(1)) in PENDING and not complete:
            exempt_seen.add((path, loose.group(1)))
            continue
        match = NAME.match(text or "")
        if match is None:
            problems.append(f"{path}:{line}: message does not start with an event name: {text!r}")
            continue
        if match.group(1) not in EVENTS:
            problems.append(f"{path}:{line}: {match.group(1)!r} is not in repid.events.EVENTS")
        if not any(keyword.arg == "extra" for keyword in call.keywords):
            problems.append(f"{path}:{line}: {match.group(1)}: no extra= fields")
    assert not problems, "\n".join(problems)
    stale = PENDING - exempt_seen
    assert not stale, f"fixed or gone, remove from PENDING: {sorted(stale)}"


def test_the_table_lists_no_event_nobody_logs() -> None:
    logged = set()
    for _, _, call in logging_calls():
        match = LOOSE.match(message_text(call) or "")
        if match is not None:
            logged.add(match.group(1))
    assert sorted(set(EVENTS) - logged) == []


def test_event_of_and_markdown() -> None:
    record = logging.LogRecord(
        "repid.worker", logging.INFO, __file__, 1, "worker.started: x", (), None
    )
    assert event_of(record) == "worker.started"
    other = logging.LogRecord("x", logging.INFO, __file__, 1, "hello: world", (), None)
    assert event_of(other) is None
    table = events_markdown()
    assert table.startswith("| event | meaning |") and "| `actor.error` |" in table


def test_the_docs_page_has_the_table() -> None:
    page = PACKAGE.parent / "docs" / "guide" / "observability.md"
    assert events_markdown() in page.read_text()


QUIET_PROGRAM = """
import asyncio
from repid import InMemoryServer, Repid, Router

app = Repid()
app.servers.register_server("m", InMemoryServer(), is_default=True)
router = Router()


@router.actor(channel="c")
async def known(n: int) -> None: ...


app.include_router(router)


async def main() -> None:
    async with app.servers.default.connection():
        # Its payload does not fit the actor: a WARNING from repid.worker.
        await app.send_message_json(channel="c", payload={"n": "x"}, headers={"topic": "known"})
        await app.run_worker(messages_limit=1, register_signals=[])


asyncio.run(main())
print("done")
"""


def test_a_library_user_without_logging_config_sees_nothing() -> None:
    """Python's last-resort handler would print Repid's warnings to stderr: the package's
    NullHandler keeps a program that configures no logging quiet."""
    done = subprocess.run(
        [sys.executable, "-c", QUIET_PROGRAM], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("done\n", "")
    configured = subprocess.run(
        [sys.executable, "-c", "import logging; logging.basicConfig()\n" + QUIET_PROGRAM],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "actor.payload_invalid" in configured.stderr  # configured: the records are there
