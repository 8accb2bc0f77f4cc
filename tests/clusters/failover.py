"""Counting messages end to end across a failover: what was confirmed, what arrived, when.

A `Tally` is shared by a producer (`produce`: numbered messages at a steady pace, each retried
until a publish returns, as an application would) and a worker's actor (`tally.processed`).
After the run `tally.report(...)` says how many confirmed messages never arrived (lost), how
many arrived more than once (duplicated), and how long after the kill the first message
published after it was processed (the time to resume, from the user's point of view).

Every report is also appended to test-artifacts/cluster-failover.jsonl, for the notes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Report:
    scenario: str
    confirmed: int
    processed_distinct: int
    lost: int
    duplicated: int
    publish_errors: int
    resume_s: float | None
    """Kill -> first processed message among those published after the kill."""
    first_delivery_after_kill_s: float | None
    outage_s: float | None
    """The longest gap between two processed messages after the kill."""

    def line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in asdict(self).items())


@dataclass
class Tally:
    started: dict[int, float] = field(default_factory=dict)
    confirmed: dict[int, float] = field(default_factory=dict)
    processed: dict[int, list[float]] = field(default_factory=dict)
    publish_errors: list[str] = field(default_factory=list)
    killed_at: float | None = None

    def seen(self, number: int) -> None:
        self.processed.setdefault(number, []).append(time.monotonic())

    def all_confirmed_arrived(self) -> bool:
        return all(n in self.processed for n in self.confirmed)

    def report(self, scenario: str) -> Report:
        killed = self.killed_at
        assert killed is not None
        after = [
            min(self.processed[n])
            for n, t in self.started.items()
            if t > killed and n in self.processed
        ]
        deliveries = sorted(t for times in self.processed.values() for t in times)
        later = [t for t in deliveries if t > killed]
        gaps = [b - a for a, b in zip([killed, *later], later)]
        report = Report(
            scenario=scenario,
            confirmed=len(self.confirmed),
            processed_distinct=len(self.processed),
            lost=sum(1 for n in self.confirmed if n not in self.processed),
            duplicated=sum(len(times) - 1 for times in self.processed.values()),
            publish_errors=len(self.publish_errors),
            resume_s=round(min(after) - killed, 2) if after else None,
            first_delivery_after_kill_s=round(later[0] - killed, 2) if later else None,
            outage_s=round(max(gaps), 2) if gaps else None,
        )
        ARTIFACTS.mkdir(exist_ok=True)
        with (ARTIFACTS / "cluster-failover.jsonl").open("a") as out:
            out.write(json.dumps({"at": time.time(), **asdict(report)}) + "\n")
        print(f"\nfailover: {report.line()}")
        return report


async def produce(
    tally: Tally,
    publish: Callable[[int], Awaitable[None]],
    count: int,
    per_second: float,
    *,
    offset: int = 0,
) -> None:
    """Publish `offset .. offset+count-1` at `per_second`, each retried until confirmed."""
    interval = 1.0 / per_second
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    for number in range(offset, offset + count):
        tally.started[number] = time.monotonic()
        while True:
            try:
                await publish(number)
            except Exception as exc:  # what an application sees; it sends again
                tally.publish_errors.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.2)
                continue
            tally.confirmed[number] = time.monotonic()
            break
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - loop.time()))


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
