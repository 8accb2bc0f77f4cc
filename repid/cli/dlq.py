"""`repid dlq list|replay|purge APP --channel C`: the dead letters of a channel.

    repid dlq list myproject.tasks:app --channel orders
    repid dlq replay myproject.tasks:app --channel orders --limit 10
    repid dlq purge myproject.tasks:app --channel orders --yes

Redis keeps a channel's dead letters in its own stream; on RabbitMQ they are in the
dead-letter queue of the channel's queue (`--dead-letter-queue NAME`, or found from the queue's
`x-dead-letter-routing-key` when it dead-letters to a queue by name). Servers without
inspectable dead letters (Pub/Sub: a dead-letter topic) say so.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from repid.cli.connect import connected
from repid.cli.loading import load_app
from repid.cli.loop import run_on_loop
from repid.cli.options import add_app_argument, add_server_argument, positive_int
from repid.connections.abc import DeadLetter, DeadLetterStoreT, ServerT
from repid.errors import NotSupportedByServerError

__all__ = ["register"]


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "dlq",
        help="list, replay or purge a channel's dead letters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    for name, help_text in (
        ("list", "show dead letters (they stay where they are)"),
        ("replay", "move dead letters back to their channel"),
        ("purge", "delete every dead letter of the channel"),
    ):
        action = actions.add_parser(name, help=help_text, description=help_text)
        add_app_argument(action)
        action.add_argument("--channel", required=True, help="the channel")
        action.add_argument(
            "--dead-letter-queue",
            metavar="NAME",
            help="RabbitMQ: the channel's dead-letter queue (default: from the queue's "
            "x-dead-letter-routing-key)",
        )
        add_server_argument(action)
        if name == "list":
            action.add_argument(
                "--limit", type=positive_int, default=20, help="how many (default 20)"
            )
            action.add_argument("--json", action="store_true", help="one JSON object per line")
        elif name == "replay":
            action.add_argument(
                "--limit", type=positive_int, default=None, help="how many (default all)"
            )
        else:
            action.add_argument("--yes", action="store_true", help="really delete them")
        action.set_defaults(handler=handle)


def _store(server: ServerT, name: str) -> DeadLetterStoreT:
    if not isinstance(server, DeadLetterStoreT):
        raise NotSupportedByServerError(
            f"server {name!r} ({type(server).__name__}) does not support reading dead letters"
        )
    return server


def _text(letter: DeadLetter) -> str:
    payload = letter.payload.decode("utf-8", "replace")
    if len(payload) > 200:
        payload = payload[:200] + "..."
    return (
        f"{letter.message_id}  reason={letter.reason or '-'}  headers={letter.headers or {}}  "
        f"content_type={letter.content_type or '-'}  payload={payload}"
    )


def handle(args: argparse.Namespace) -> int:
    if args.dlq_command == "purge" and not args.yes:
        print("error: purge deletes the dead letters for good: add --yes", file=sys.stderr)
        return 2
    app = load_app(args.app)

    async def act() -> int:
        async with connected(app, args.server) as (name, server):
            store = _store(server, name)
            queue = args.dead_letter_queue
            if args.dlq_command == "list":
                letters = await store.read_dead_letters(
                    args.channel, limit=args.limit, dead_letter_queue=queue
                )
                for letter in letters:
                    if args.json:
                        print(
                            json.dumps(
                                {
                                    "message_id": letter.message_id,
                                    "channel": letter.channel,
                                    "reason": letter.reason,
                                    "headers": letter.headers,
                                    "content_type": letter.content_type,
                                    "payload": letter.payload.decode("utf-8", "replace"),
                                }
                            )
                        )
                    else:
                        print(_text(letter))
                if not args.json:
                    print(f"{len(letters)} dead letter(s) on {args.channel!r}")
                return 0
            if args.dlq_command == "replay":
                moved = await store.replay_dead_letters(
                    args.channel, limit=args.limit, dead_letter_queue=queue
                )
                print(f"replayed {moved} dead letter(s) onto {args.channel!r}")
                return 0
            purged = await store.purge_dead_letters(args.channel, dead_letter_queue=queue)
            print(f"purged {purged} dead letter(s) of {args.channel!r}")
            return 0

    return run_on_loop(act, "asyncio")
