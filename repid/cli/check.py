"""`repid check APP`: would a worker start? Imports the app and compiles every actor.

Prints the servers (no credentials), the channels with their actors, and the registered
operations; exits 0 when all is well and 1 otherwise (for CI and container start-up probes).
It does not connect to any broker.
"""

from __future__ import annotations

import argparse
from typing import Any

from repid.cli.describe import channel_actors, server_lines
from repid.cli.loading import load_app
from repid.cli.options import add_app_argument, add_server_argument
from repid.errors import RepidError

__all__ = ["register"]


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "check",
        help="import the app and compile its actors (exit code 0/1)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_app_argument(parser)
    add_server_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    problems: list[str] = []
    print(f"app: {app.title} {app.version}")
    servers = server_lines(app)
    print("servers:" if servers else "servers: none registered")
    for line in servers:
        print(f"  {line}")
    server_name: str | None = None
    try:
        server_name, _ = app.servers.resolve(args.server)
    except RepidError as exc:
        problems.append(str(exc))
    try:
        app.compile_actors(server_name)
    except RepidError as exc:
        problems.append(f"an actor does not compile: {exc}")
    except Exception as exc:  # what a worker would raise at start, whatever it is
        problems.append(f"an actor does not compile: {type(exc).__name__}: {exc}")
    finally:
        app.shutdown_executors()
    channels = channel_actors(app)
    print("channels:" if channels else "channels: none (no actors registered)")
    for channel, actors in channels.items():
        print(f"  {channel}: {', '.join(actors)}")
    operations = list(app.messages)
    if operations:
        print("operations:")
        for operation in operations:
            print(f"  {operation.operation_id}: sends to {operation.channel.address}")
    for problem in problems:
        print(f"error: {problem}")
    print("ok" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1
