"""The `repid` command (also `python -m repid`): run workers, serve docs, send, inspect.

    repid run myproject.tasks:app --workers 4 --health 0.0.0.0:8080
    repid check myproject.tasks:app
    repid docs serve myproject.tasks:app
    repid send myproject.tasks:app --channel orders --topic charge --json '{"order_id": 1}'
    repid dlq list myproject.tasks:app --channel orders
    repid stats myproject.tasks:app

Each subcommand lives in a module of its own; `repid <command> --help` describes it. The
command needs nothing beyond the core install (argparse): `--reload` needs the `reload` extra
and `--loop uvloop` the `uvloop` extra.
"""

from repid.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
