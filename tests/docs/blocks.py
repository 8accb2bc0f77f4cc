"""The code blocks of docs/*.md and the markers that say how the docs-examples test uses them.

A fenced ```python block runs as a test unless the HTML comment right before it (on the
previous non-blank line) says otherwise. The comment is `<!-- docs-test: OPTION ... -->`:

- `fragment`: not run (a piece of a larger program); its `repid` names are checked instead.
- `file=PATH`: written to PATH in the page's working folder (for later blocks to import);
  checked like a fragment.
- `copy=PATH`: copy the repository's file PATH (e.g. `examples/sqlite_server.py`) into the
  page's working folder first, as a reader copies it next to their app.
- `continue`: run in the namespace left by the previous block of the page.
- `pytest`: after running, call every `test_*` function the block defines (awaiting
  coroutines).
- `subprocess`: run as `python example.py` in its own process; with `stop-on=TEXT` the test
  sends SIGTERM once TEXT appears on stdout and expects a clean exit.
- `needs=redis|amqp|pubsub`: needs that broker (skipped without it, failed in CI).
- `queues=a,b`: (RabbitMQ) these quorum queues are created empty first.
- `topics=a,b`: (Pub/Sub) these topics, each with a subscription of the same name, are
  created empty first.

A ```text block marked `<!-- docs-test: output -->` is the expected stdout of the block before
it. A ```json block marked `<!-- docs-test: rabbitmq-definitions -->` is a RabbitMQ definitions
document: before the page's first `needs=amqp` block, its queues are deleted and the document
is loaded through the management API, so the topology a page tells readers to create is the
one its examples run against.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DOCS", "Block", "collect_blocks", "parse_options", "rabbitmq_definitions"]

DOCS = Path(__file__).resolve().parents[2] / "docs"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\n`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:(?P<options>.*?)-->\s*$")

FLAGS = frozenset(
    {"fragment", "continue", "pytest", "subprocess", "output", "rabbitmq-definitions"}
)
VALUED = frozenset({"file", "copy", "stop-on", "needs", "queues", "topics"})
BROKERS = frozenset({"redis", "amqp", "pubsub"})
PYTHON = frozenset({"python", "py", "python3"})


@dataclass
class Block:
    """One fenced code block of a page."""

    page: str  # relative to docs/, e.g. "guide/workers.md"
    line: int  # 1-based line of the opening fence
    language: str
    source: str
    options: dict[str, str] = field(default_factory=dict)
    expected_output: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.language in PYTHON

    @property
    def kind(self) -> str:
        """`fragment`, `file` or `run`."""
        if "fragment" in self.options:
            return "fragment"
        if "file" in self.options:
            return "file"
        return "run"


def parse_options(text: str, where: str) -> dict[str, str]:
    """`fragment needs=redis stop-on="ready"` -> {"fragment": "", "needs": "redis", ...}."""
    options: dict[str, str] = {}
    for word in shlex.split(text):
        name, sep, value = word.partition("=")
        if sep:
            if name not in VALUED:
                raise ValueError(f"{where}: unknown docs-test option {name!r}")
            options[name] = value
        else:
            if name not in FLAGS:
                raise ValueError(f"{where}: unknown docs-test flag {name!r}")
            options[name] = ""
    needs = options.get("needs")
    if needs is not None and needs not in BROKERS:
        raise ValueError(f"{where}: needs= must be one of {sorted(BROKERS)}, got {needs!r}")
    if "stop-on" in options and "subprocess" not in options:
        raise ValueError(f"{where}: stop-on= needs the subprocess flag")
    return options


def _dedent(lines: list[str], indent: str) -> str:
    out = []
    for line in lines:
        out.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
    return "\n".join(out) + "\n"


def blocks_of(path: Path) -> list[Block]:
    """Every fenced block of one page, with its marker options."""
    page = path.relative_to(DOCS).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence, indent = match["fence"], match["indent"]
        language = match["info"].strip().split(" ")[0].lstrip(".").lower() if match["info"] else ""
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines):
            closing = lines[index].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            body.append(lines[index])
            index += 1
        else:
            raise ValueError(f"{page}:{start + 1}: unclosed code fence")
        index += 1
        options: dict[str, str] = {}
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        if previous >= 0:
            marker = _MARKER.match(lines[previous])
            if marker is not None:
                options = parse_options(marker["options"], f"{page}:{previous + 1}")
        block = Block(page, start + 1, language, _dedent(body, indent), options)
        if "output" in options:
            if block.language != "text":
                raise ValueError(f"{block.id}: only a ```text block can be an output")
            runs = [b for b in blocks if b.is_python and b.kind == "run"]
            if not runs:
                raise ValueError(f"{block.id}: an output block needs a python block before it")
            runs[-1].expected_output = block.source
            continue
        blocks.append(block)
    return blocks


def collect_blocks() -> list[Block]:
    """The python blocks of every page of docs/, in page order then line order."""
    found: list[Block] = []
    for path in sorted(DOCS.rglob("*.md")):
        found.extend(b for b in blocks_of(path) if b.is_python)
    return found


def rabbitmq_definitions() -> dict[str, list[str]]:
    """Page -> the RabbitMQ definitions documents (JSON text) it shows."""
    found: dict[str, list[str]] = {}
    for path in sorted(DOCS.rglob("*.md")):
        for block in blocks_of(path):
            if "rabbitmq-definitions" in block.options:
                if block.language != "json":
                    raise ValueError(f"{block.id}: rabbitmq-definitions must be a ```json block")
                found.setdefault(block.page, []).append(block.source)
    return found
