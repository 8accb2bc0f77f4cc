"""`repid send APP --channel C [--topic T] --json '{...}'`: publish one message now.

The message goes through the app's producer middlewares, like `app.send_message_json`.
`--topic` sets the `topic` header (what topic routing matches on); `--header KEY=VALUE`
adds others. Without `--json` the payload is read from stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from repid.cli.connect import connected
from repid.cli.loading import load_app
from repid.cli.loop import run_on_loop
from repid.cli.options import add_app_argument, add_server_argument

__all__ = ["register"]


def _header(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "send",
        help="send one JSON message",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_app_argument(parser)
    parser.add_argument("--channel", required=True, help="the channel to send to")
    parser.add_argument("--topic", help="the topic header (the actor name, for topic routing)")
    parser.add_argument(
        "--json", dest="payload", metavar="JSON", help="the payload (default: read stdin)"
    )
    parser.add_argument(
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar="KEY=VALUE",
        help="an extra header (repeatable)",
    )
    add_server_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    text = args.payload if args.payload is not None else sys.stdin.read()
    try:
        payload = json.loads(text)
    except ValueError as exc:
        print(f"error: the payload is not JSON: {exc}", file=sys.stderr)
        return 2
    headers = dict(args.header)
    if args.topic is not None:
        headers["topic"] = args.topic
    app = load_app(args.app)

    async def send() -> None:
        async with connected(app, args.server):
            await app.send_message_json(
                channel=args.channel,
                payload=payload,
                headers=headers or None,
                server_name=args.server,
            )

    run_on_loop(send, "asyncio")
    print(f"sent to {args.channel!r}")
    return 0
