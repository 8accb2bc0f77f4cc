"""`repid docs serve|export APP`: the app's AsyncAPI 3.0 document, as a page or a file.

    repid docs serve myproject.tasks:app --address 127.0.0.1:8081
    repid docs export myproject.tasks:app --format yaml --output asyncapi.yaml

`serve` runs the docs server alone (no broker connection) until Ctrl-C or SIGTERM; the page
renders offline with the AsyncAPI React component shipped in the package. `export` writes JSON
(default) or YAML (block style with PyYAML installed, else JSON text, which is valid YAML) to
stdout or `--output`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from repid.cli.loading import load_app
from repid.cli.logs import setup_logging
from repid.cli.options import add_app_argument, parse_address

__all__ = ["register"]

logger = logging.getLogger("repid.cli")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "docs",
        help="serve or export the AsyncAPI document",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="docs_command", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "serve", help="serve the AsyncAPI page", description="Serve the AsyncAPI docs page."
    )
    add_app_argument(serve)
    serve.add_argument(
        "--address",
        metavar="HOST:PORT",
        type=parse_address,
        default=("127.0.0.1", 8081),
        help="where to listen (default 127.0.0.1:8081)",
    )
    serve.set_defaults(handler=handle_serve)
    export = actions.add_parser(
        "export", help="write the AsyncAPI document", description="Write the AsyncAPI document."
    )
    add_app_argument(export)
    export.add_argument("--format", choices=("json", "yaml"), default="json")
    export.add_argument(
        "--output", "-o", metavar="FILE", type=Path, help="write here instead of stdout"
    )
    export.set_defaults(handler=handle_export)


def handle_export(args: argparse.Namespace) -> int:
    from repid.asyncapi.server import document_yaml

    document = load_app(args.app).generate_asyncapi_schema()
    if args.format == "yaml":
        data = document_yaml(document)
    else:
        data = json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"
    if args.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        args.output.write_bytes(data)
    return 0


def handle_serve(args: argparse.Namespace) -> int:
    setup_logging("info")
    app = load_app(args.app)
    host, port = args.address

    async def serve() -> None:
        from repid.asyncapi.server import AsyncAPIServer
        from repid.asyncapi.settings import AsyncAPIServerSettings

        server = await AsyncAPIServer(AsyncAPIServerSettings(address=host, port=port), app).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logger.info(
            "docs.serving: the AsyncAPI page of %r is at http://%s:%d/",
            app.title,
            host if ":" not in host else f"[{host}]",
            server.port,
            extra={"title": app.title, "port": server.port},
        )
        try:
            await stop.wait()
        finally:
            await server.close()

    asyncio.run(serve())
    return 0
