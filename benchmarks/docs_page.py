"""`compare.py --docs`: the results part of docs/benchmarks.md and the plots it shows.

The page keeps one generated block per broker between `<!-- results:BROKER -->` and
`<!-- /results:BROKER -->`; everything else on it is written by hand. The plots go to
docs/assets/benchmarks/BROKER-throughput.png and BROKER-latency.png (small PNGs, committed:
the docs build cannot rerun an hour of benchmarks). Ours at `--ref` revisions is left out: a
before/after check for us, not a figure for users (it stays in the results JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import compare
import plots

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "benchmarks.md"
ASSETS = ROOT / "docs" / "assets" / "benchmarks"
TITLES = {"redis": "Redis", "amqp": "RabbitMQ"}


def section(document: dict[str, Any], results_dir: Path) -> str:
    """The generated block of one broker: where the figures come from, tables, plots."""
    broker = document["broker"]
    machine = document["machine"]
    lines = [
        f"## {TITLES.get(broker, broker)}",
        "",
        f"Run of {document['started_utc'][:16].replace('T', ' ')} UTC to "
        f"{document.get('finished_utc', '?')[11:16]}, "
        f"`benchmarks/compare.py` at commit `{machine.get('git_commit')}`, "
        f"Python {_python(document)}, {machine['cores']} cores ({machine['cpu']}), "
        f"load average {machine['loadavg_at_start'][0]:.1f} at the start and "
        f"{document.get('loadavg_at_end', [float('nan')])[0]:.1f} at the end. "
        f"Raw results: `benchmarks/results/{document.get('stem', '')}.json`.",
        "",
        *compare.markdown(document)[2:],
        "",
    ]
    for kind in ("throughput", "latency"):
        if (ASSETS / f"{broker}-{kind}.png").exists():
            lines += [f"![{broker} {kind}](assets/benchmarks/{broker}-{kind}.png)", ""]
    return "\n".join(lines).rstrip() + "\n"


def _python(document: dict[str, Any]) -> str:
    ours = document["subjects"].get("ours", {})
    return str((ours.get("versions") or {}).get("python", "?"))


def update(documents: list[dict[str, Any]], results_dir: Path) -> list[Path]:
    """Write the plots and replace each broker's block on the page; the paths written."""
    ASSETS.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if not PAGE.exists():
        raise SystemExit(f"--docs: {PAGE} does not exist (it holds the hand-written text)")
    text = PAGE.read_text()
    for full in documents:
        document = compare.without_refs(full)
        broker = document["broker"]
        for stale in ASSETS.glob(f"{broker}-*.png"):
            stale.unlink()
        written += plots.compare_plots(document, ASSETS / broker)
        start, end = f"<!-- results:{broker} -->", f"<!-- /results:{broker} -->"
        if start not in text or end not in text:
            raise SystemExit(f"{PAGE} has no {start} ... {end} block")
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = f"{before}{start}\n{section(document, results_dir)}{end}{after}"
    PAGE.write_text(text)
    written.append(PAGE)
    return written
