"""`AsyncAPIServer`: the docs page and the raw AsyncAPI document, served beside the worker.

Routes, for `endpoint_name="/"` (a name without a trailing slash also answers with the page):

* `/` - the HTML page rendered by the AsyncAPI React component;
* `/asyncapi.json` - the document as JSON; `/asyncapi.yaml` - as YAML (block style with PyYAML
  installed; otherwise the JSON text, which is valid YAML 1.2);
* `/static/asyncapi-react.js`, `/static/asyncapi-react.css` - the component, from the package
  directory, when `scripts/fetch_asyncapi_assets.py` has fetched it. Without it the page falls
  back to the pinned version on a CDN and a warning is logged at start.

The document is generated once at start: actors and operations do not change while a worker
runs. See `repid.http` for the HTTP limits.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from repid.asyncapi import assets
from repid.asyncapi.html import render_html
from repid.http import HttpLimits, HttpServer, Request, Response

if TYPE_CHECKING:
    from repid.asyncapi.settings import AsyncAPIServerSettings

__all__ = ["AsyncAPIServer", "AsyncAPISource", "document_yaml"]


class AsyncAPISource(Protocol):
    """Where the served document comes from: a `Repid` app, or anything that makes one."""

    def generate_asyncapi_schema(self) -> dict[str, Any]: ...


logger = logging.getLogger("repid.asyncapi")

_ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def document_yaml(document: object) -> bytes:
    """`document` as YAML: PyYAML's block style if installed, else JSON (valid YAML 1.2)."""
    try:
        import yaml
    except ImportError:
        return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"

    class _PlainDumper(yaml.SafeDumper):
        # Anchors and aliases are valid YAML but confuse some AsyncAPI tools: write each
        # repeated object out in full.
        def ignore_aliases(self, data: object) -> bool:
            return True

    text: str = yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)
    return text.encode()


class AsyncAPIServer:
    """Serves an app's AsyncAPI page and document while the worker runs."""

    def __init__(self, settings: AsyncAPIServerSettings, app: AsyncAPISource) -> None:
        self.settings = settings
        self.app = app
        endpoint = settings.endpoint_name or "/"
        if not endpoint.startswith("/"):
            endpoint = "/" + endpoint
        self.base = endpoint if endpoint.endswith("/") else endpoint + "/"
        self._page_paths = {endpoint, self.base}
        self._routes: dict[str, Response] = {}
        self._assets: dict[str, Response] = {}
        self._http = HttpServer(
            self._handle,
            address=settings.address,
            port=settings.port,
            limits=HttpLimits(
                read_timeout=settings.read_timeout,
                write_timeout=settings.write_timeout,
                max_connections=settings.max_connections,
            ),
            name="asyncapi_server",
        )

    @property
    def port(self) -> int:
        """The bound port (useful with `port=0`)."""
        return self._http.port

    def _build(self) -> None:
        document = self.app.generate_asyncapi_schema()
        settings = self.settings
        page = render_html(
            document,
            sidebar=settings.sidebar,
            info=settings.info,
            servers=settings.servers,
            operations=settings.operations,
            messages=settings.messages,
            schemas=settings.schemas,
            errors=settings.errors,
            expand_message_examples=settings.expand_message_examples,
            assets_url=self.base + "static/",
        ).encode()
        self._routes = {
            self.base + "asyncapi.json": Response(
                200, json.dumps(document, indent=2).encode(), "application/json"
            ),
            self.base + "asyncapi.yaml": Response(
                200, document_yaml(document), "application/yaml; charset=utf-8"
            ),
        }
        for path in self._page_paths:
            self._routes[path] = Response(200, page, "text/html; charset=utf-8")

    async def start(self) -> AsyncAPIServer:
        """Generate the document, then bind and serve."""
        self._build()
        if not assets.local_assets_available():
            logger.warning(
                "asyncapi_server.assets_missing: the AsyncAPI React component is not in %s; the "
                "docs page will load it from a CDN (run scripts/fetch_asyncapi_assets.py to "
                "serve it locally)",
                assets.STATIC_DIR,
                extra={"path": str(assets.STATIC_DIR)},
            )
        await self._http.start()
        return self

    async def stop(self) -> None:
        """repid 2.x's name of `close`."""
        await self.close()

    async def close(self) -> None:
        """Stop serving."""
        await self._http.close()

    def refresh(self) -> None:
        """Generate the document again (from `self.app`) and serve the new one."""
        self._build()

    async def _handle(self, request: Request) -> Response | None:
        response = self._routes.get(request.path)
        if response is not None:
            return response
        prefix = self.base + "static/"
        if request.path.startswith(prefix):
            return self._asset(request.path[len(prefix) :])
        return None

    def _asset(self, name: str) -> Response | None:
        cached = self._assets.get(name)
        if cached is not None:
            return cached
        body = assets.read_asset(name)  # only names in assets.ASSET_FILES are ever read
        if body is None:
            return None
        suffix = name[name.rfind(".") :]
        response = Response(
            200,
            body,
            _ASSET_TYPES.get(suffix, "application/octet-stream"),
            # The files belong to one pinned version: browsers may keep them for a day.
            (("Cache-Control", "public, max-age=86400"),),
        )
        self._assets[name] = response
        return response
