"""`repid stats APP`: per channel, queue depth, in flight, dead letters and consumers.

    repid stats myproject.tasks:app
    repid stats myproject.tasks:app --channel orders --json

By default every channel of the app (its actors' and its registered operations'). A `-`
means the broker cannot tell. RabbitMQ reports no in-flight count through its management
node; Pub/Sub's counts are in Cloud Monitoring, not in its API.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from repid.cli.connect import connected
from repid.cli.describe import all_channels
from repid.cli.loading import load_app
from repid.cli.loop import run_on_loop
from repid.cli.options import add_app_argument, add_server_argument
from repid.connections.abc import ChannelStats, ChannelStatsT
from repid.errors import NotSupportedByServerError

__all__ = ["register"]

_COLUMNS = ("channel", "depth", "in_flight", "dead_letters", "consumers")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "stats",
        help="queue depth, in flight, dead letters and consumers per channel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_app_argument(parser)
    add_server_argument(parser)
    parser.add_argument(
        "--channel", action="append", default=None, help="only this channel (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per channel")
    parser.set_defaults(handler=handle)


def _cell(value: int | str | None) -> str:
    return "-" if value is None else str(value)


def handle(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    channels = args.channel or all_channels(app)

    async def collect() -> list[ChannelStats]:
        async with connected(app, args.server) as (name, server):
            if not isinstance(server, ChannelStatsT):
                raise NotSupportedByServerError(
                    f"server {name!r} ({type(server).__name__}) does not report channel statistics"
                )
            return [await server.channel_stats(channel) for channel in channels]

    rows = run_on_loop(collect, "asyncio")
    if args.json:
        for row in rows:
            print(json.dumps({column: getattr(row, column) for column in _COLUMNS}))
        return 0
    table = [list(_COLUMNS)] + [[_cell(getattr(row, c)) for c in _COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    return 0
