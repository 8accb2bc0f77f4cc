"""The argument parser and the dispatch to each subcommand; errors become exit codes.

Exit codes: 0 success, 1 a Repid error (printed as one `error: ...` line, no traceback),
2 a usage error (argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from repid.cli import check, dlq, docs, run, send, stats
from repid.errors import RepidError

__all__ = ["build_parser", "main"]

_COMMANDS = (run, check, docs, send, dlq, stats)


def build_parser() -> argparse.ArgumentParser:
    """The `repid` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="repid",
        description="Repid: run workers, serve the AsyncAPI docs, send and inspect messages.",
        epilog="APP is an import path to a Repid app: 'package.module:app', or "
        "'package.module:factory()' for a function that returns one.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default `sys.argv[1:]`); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except RepidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def _version() -> str:
    from repid import __version__

    return __version__
