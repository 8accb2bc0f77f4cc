"""The README's complete examples run as written, and its set-up commands are the real ones."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PROGRAMS = [
    block for block in re.findall(r"```python\n(.*?)```", README, re.S) if "asyncio.run(" in block
]


@pytest.mark.parametrize("program", PROGRAMS, ids=["messages", "jobs"])
def test_quick_starts_run(program: str, tmp_path: Path) -> None:
    path = tmp_path / "example.py"
    path.write_text(program)
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    expected = re.findall(r"# (\S+)$", program, re.M)
    if "charging" in program:
        assert done.stdout == "charging 9.5 for order 1\n"
    else:
        assert done.stdout.split() == expected


def test_set_up_commands_and_links() -> None:
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/python examples/demo.py"
        in README
    )
    assert "bash scripts/test.sh" in README
    # Set up: exactly two commands (the demo, the whole suite); the docs build is documented
    # with the documentation.
    set_up = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    demo = (
        "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/python examples/demo.py"
    )
    assert re.findall(r"```bash\n(.*?)\n```", set_up, re.S) == [demo, "bash scripts/test.sh"]
    documentation = README.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    assert "--group docs && .venv/bin/mkdocs build --strict" in documentation
    for link in re.findall(r"\]\(((?:docs/|CONTRIBUTING)[^)]*)\)", README):
        assert (ROOT / link).is_file(), link
