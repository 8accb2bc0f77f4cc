"""PNG plots of benchmark results (matplotlib: `pip install --group bench`).

Used by `compare.py --plot`, `run.py --plot` and `cli_workers.py --plot`; the docs'
benchmarks page shows the files these write. matplotlib is imported only here, only when a
plot is asked for, with the non-interactive Agg backend.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit("--plot needs matplotlib: .venv/bin/pip install --group bench") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def throughput(
    title: str,
    groups: list[str],
    series: dict[str, list[float | None]],
    path: Path,
    *,
    ylabel: str = "messages per second",
    highlight: str | None = "ours",
) -> Path:
    """Grouped horizontal bars: one group per workload/broker, one bar per subject."""
    plt = _pyplot()
    subjects = list(series)
    height = 0.8 / max(1, len(subjects))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.35 * len(groups) * len(subjects)))
    colors = plt.get_cmap("tab10").colors
    for k, subject in enumerate(subjects):
        ys = [g - 0.4 + height * (k + 0.5) for g in range(len(groups))]
        values = [v or 0.0 for v in series[subject]]
        bars = ax.barh(
            ys,
            values,
            height=height * 0.9,
            label=subject,
            color=colors[k % len(colors)],
            edgecolor="black" if subject == highlight else None,
            linewidth=1.2 if subject == highlight else 0,
        )
        for bar, value in zip(bars, series[subject], strict=True):
            text = "n/a" if value is None else f"{value:,.0f}"
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {text}",
                va="center",
                fontsize=7,
            )
    ax.set_yticks(range(len(groups)))
    ax.set_yticklabels(groups)
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    ax.set_title(textwrap.fill(title, 100), fontsize=9)
    # Beside the axes: inside, it hides the bars of the last group.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def latency(title: str, rows: list[dict[str, Any]], path: Path) -> Path:
    """Latency distributions: per rate, a CDF line per subject (log-scaled milliseconds)."""
    plt = _pyplot()
    rates = sorted({row["rate"] for row in rows})
    fig, axes = plt.subplots(1, len(rates), figsize=(5.5 * len(rates), 4.2), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    labels = list(dict.fromkeys(row["subject"] for row in rows))
    for ax, rate in zip(axes[0], rates, strict=True):
        for row in (r for r in rows if r["rate"] == rate):
            hist = row["histogram_ms"]
            total = sum(count for _, count in hist) or 1
            xs, ys, seen = [], [], 0
            for edge, count in hist:
                seen += count
                xs.append(edge)
                ys.append(100.0 * seen / total)
            color = colors[labels.index(row["subject"]) % len(colors)]
            ax.step(
                xs,
                ys,
                where="post",
                color=color,
                linewidth=2.2 if row["subject"] == "ours" else 1.2,
                label=f"{row['subject']} (p99 {row['p99_ms']:.1f} ms)",
            )
        ax.axvline(5.0, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("send_message to actor start, ms (log)")
        ax.set_ylabel("% of messages")
        ax.set_title(f"{rate:,.0f} msg/s", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def compare_plots(document: dict[str, Any], stem: Path) -> list[Path]:
    """The plots of one `compare.py` run: throughput per workload, latency CDFs."""
    broker = document["broker"]
    subjects = document["subjects"]
    workloads = [
        ("send_per_s", "send (100 coroutines)"),
        ("consume_per_s", "consume (1 worker)"),
        ("batch_per_s", "batch API"),
    ]
    present = [
        (key, label)
        for key, label in workloads
        if any(data["summary"].get(key) is not None for data in subjects.values())
    ]
    written = []
    if present:
        series = {
            label: [data["summary"].get(key) for key, _ in present]
            for label, data in subjects.items()
            if any(data["summary"].get(key) is not None for key, _ in present)
        }
        title = (
            f"{broker}: throughput, N={document['n']}, medians of {document['reps']} "
            f"({document['started_utc'][:10]}, {document['broker_setup']})"
        )
        written.append(
            throughput(
                title,
                [label for _, label in present],
                series,
                stem.with_name(stem.name + "-throughput.png"),
            )
        )
    rows = [
        {"subject": label, **run}
        for label, data in subjects.items()
        for run in data.get("latency", [])
        if run.get("histogram_ms")
    ]
    if rows:
        title = (
            f"{broker}: latency at a steady rate, worker in its own process "
            f"({document['started_utc'][:10]})"
        )
        written.append(latency(title, rows, stem.with_name(stem.name + "-latency.png")))
    return written
