"""`repid run APP`: connect the app's servers, run the worker, disconnect.

    repid run myproject.tasks:app
    repid run myproject.tasks:app --workers 4 --health 0.0.0.0:8080 --log-format json
    repid run myproject.tasks:app --reload            # development: restart on code changes
    repid run myproject.tasks:app --scheduler         # also enqueue periodic jobs

One process by default. `--workers N` (or `--reload`, or `--max-messages-per-worker`) runs
the workers as processes under a supervisor that restarts them when they die and serves the
health endpoint and docs page once for all (see `repid.cli.supervisor`).

Stopping: SIGTERM or Ctrl-C drains gracefully (no new messages; running actors get
`--graceful-shutdown-time` seconds; the rest are cancelled and their messages go back to the
queue); a second Ctrl-C stops at once, still giving unfinished messages back.

Logs go to stderr: a start line, a progress line every 10 s (REPID_PROGRESS_INTERVAL), one
line per message with `--log-level debug`, the shutdown steps; `--log-format json` writes one
JSON object per line (keys: ts, level, logger, event, message, pid, then the event's fields).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from repid.cli.logs import setup_logging
from repid.cli.loop import run_on_loop
from repid.cli.options import (
    add_app_argument,
    add_server_argument,
    non_negative_float,
    parse_address,
    positive_int,
)
from repid.cli.status import StatusLink
from repid.errors import (
    ActorDeclarationError,
    AppLoadError,
    NoServerRegisteredError,
    RepidError,
    ServerNotFoundError,
)

__all__ = ["register"]

logger = logging.getLogger("repid.cli")

# A supervised worker exits with EXIT_CONFIG for these: restarting it would not help.
_CONFIG_ERRORS = (AppLoadError, ActorDeclarationError, NoServerRegisteredError, ServerNotFoundError)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run the worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_app_argument(parser)
    add_server_argument(parser)
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="worker processes under a supervisor (default 1: no supervisor)",
    )
    parser.add_argument(
        "--tasks-limit",
        type=positive_int,
        default=1000,
        metavar="N",
        help="messages processed concurrently per process (default 1000)",
    )
    parser.add_argument(
        "--graceful-shutdown-time",
        type=non_negative_float,
        default=25.0,
        metavar="SECONDS",
        help="how long running actors may finish after a stop signal (default 25)",
    )
    parser.add_argument(
        "--messages-limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="stop each process after N messages (default: never)",
    )
    parser.add_argument(
        "--health",
        type=parse_address,
        default=None,
        metavar="HOST:PORT",
        help="serve /healthz, /livez and /readyz here",
    )
    parser.add_argument(
        "--metrics",
        type=parse_address,
        default=None,
        metavar="HOST:PORT",
        help="serve Prometheus metrics at /metrics here, for all workers (needs repid[prometheus])",
    )
    parser.add_argument(
        "--docs",
        type=parse_address,
        default=None,
        metavar="HOST:PORT",
        help="serve the AsyncAPI docs page here",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error", "critical"),
        default="info",
        help="default info; debug adds one line per message",
    )
    parser.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="default text"
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="restart the workers when a Python file changes (development; needs repid[reload])",
    )
    parser.add_argument(
        "--max-messages-per-worker",
        type=positive_int,
        default=None,
        metavar="N",
        help="replace a worker process with a fresh one after N messages",
    )
    parser.add_argument(
        "--scheduler",
        action="store_true",
        help="also run the app's Schedulers (periodic jobs) in each worker process; an app "
        "without servers runs only them (see repid.cli.scheduling)",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop (default auto: uvloop when installed, see repid[uvloop])",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
    link = StatusLink.from_environment()
    if link is not None:
        return _run_supervised_worker(args, link)
    if args.workers > 1 or args.reload or args.max_messages_per_worker is not None:
        return _run_supervisor(args)
    return _run_worker(args, None)


def _worker_options(args: argparse.Namespace, *, supervised: bool) -> Any:
    from repid.cli.worker import WorkerOptions

    return WorkerOptions(
        app=args.app,
        server=args.server,
        tasks_limit=args.tasks_limit,
        graceful_shutdown_time=args.graceful_shutdown_time,
        messages_limit=args.messages_limit,
        health=None if supervised else args.health,
        docs=None if supervised else args.docs,
        metrics=None if supervised else args.metrics,
        scheduler=args.scheduler,
    )


def _run_worker(args: argparse.Namespace, link: StatusLink | None) -> int:
    from repid.cli.worker import serve_worker

    options = _worker_options(args, supervised=link is not None)
    return run_on_loop(lambda: serve_worker(options, link), args.loop)


def _run_supervised_worker(args: argparse.Namespace, link: StatusLink) -> int:
    try:
        return _run_worker(args, link)
    except _CONFIG_ERRORS as exc:
        logger.error("worker.cannot_start: %s", exc, extra={"error": type(exc).__name__})
        from repid.cli.supervisor import EXIT_CONFIG

        return EXIT_CONFIG
    except RepidError as exc:
        logger.error("worker.failed: %s", exc, extra={"error": type(exc).__name__})
        return 1


def _run_supervisor(args: argparse.Namespace) -> int:
    from repid.cli.loop import resolve_loop
    from repid.cli.supervisor import Supervisor, SupervisorOptions

    if args.reload:
        from repid.cli.reload import require_watchfiles

        require_watchfiles()
    resolve_loop(args.loop)  # a missing uvloop is reported here, not once per worker
    worker_args = [
        args.app,
        "--tasks-limit",
        str(args.tasks_limit),
        "--graceful-shutdown-time",
        repr(args.graceful_shutdown_time),
        "--log-level",
        args.log_level,
        "--log-format",
        args.log_format,
        "--loop",
        args.loop,
    ]
    if args.server is not None:
        worker_args += ["--server", args.server]
    if args.scheduler:
        worker_args.append("--scheduler")
    options = SupervisorOptions(
        workers=args.workers,
        worker_args=worker_args,
        graceful_shutdown_time=args.graceful_shutdown_time,
        messages_limit=args.messages_limit,
        max_messages_per_worker=args.max_messages_per_worker,
        reload=args.reload,
        health=args.health,
        docs=args.docs,
        metrics=args.metrics,
    )
    # The supervisor's own loop is plain asyncio: it only waits on processes and sockets.
    return run_on_loop(lambda: Supervisor(options).run(), "asyncio")
