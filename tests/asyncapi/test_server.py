"""The docs page, the embedded docs server in a real worker run, and the page in Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repid import AsyncAPIServerSettings, InMemoryServer, Repid, Router
from repid.asyncapi import assets
from repid.asyncapi.html import render_html
from repid.asyncapi.server import AsyncAPIServer, document_yaml

from ..health.http_client import RawResponse, free_port, get
from .spec import assert_valid_asyncapi, require_or_skip

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


class Item(pydantic.BaseModel):
    sku: str
    quantity: int


def docs_app() -> tuple[Repid, InMemoryServer]:
    app = Repid(title="Docs demo", version="1.0.0", description="Rendered </script> safely.")
    broker = InMemoryServer()
    app.servers.register_server("default", broker, is_default=True)
    router = Router()

    @router.actor(channel="orders", title="Process an order")
    async def process_order(item: Item) -> None:
        return None

    @router.actor(channel="emails")
    async def send_welcome_email(to: str) -> None:
        return None

    app.include_router(router)
    app.messages.register_operation("orders.submit", "orders", title="Submit an order")
    return app, broker


def embedded(page: str, element_id: str) -> object:
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', page, re.S
    )
    assert match, element_id
    return json.loads(match.group(1))


# The page ----------------------------------------------------------------------------------


def test_render_html_embeds_document_and_flags() -> None:
    app, _ = docs_app()
    document = app.generate_asyncapi_schema()
    page = app.asyncapi_html(sidebar=False, schemas=False, expand_message_examples=False)
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Docs demo</title>" in page
    assert embedded(page, "asyncapi-document") == document
    config = embedded(page, "asyncapi-config")
    assert isinstance(config, dict)
    assert config["show"]["sidebar"] is False and config["show"]["schemas"] is False
    assert config["show"]["info"] is True and config["show"]["errors"] is True
    assert config["expand"] == {"messageExamples": False}
    # The description's "</script>" cannot close the script element early.
    assert page.count("</script>") == 3
    assert "AsyncApiStandalone.render" in page


def test_render_html_asset_urls() -> None:
    document = {"asyncapi": "3.0.0", "info": {"title": "<T&>", "version": "1"}}
    page = render_html(document, assets_url="/docs/static/")
    assert "<title>&lt;T&amp;&gt;</title>" in page
    version = assets.REACT_COMPONENT_VERSION
    cdn = f"https://cdn.jsdelivr.net/npm/@asyncapi/react-component@{version}/"
    assert cdn + "browser/standalone/index.js" in page
    assert cdn + "styles/default.min.css" in page
    if assets.local_assets_available():
        # Local first, then the CDNs.
        assert page.index("/docs/static/asyncapi-react.js") < page.index(cdn)
    cdn_only = render_html(document, assets_url=None)
    assert "asyncapi-react.js" not in cdn_only and cdn in cdn_only


@settings(max_examples=60)
@given(st.text(), st.text())
def test_any_text_stays_inside_the_page_json(title: str, description: str) -> None:
    document = {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": "1", "description": description},
    }
    page = render_html(document)
    assert page.lower().count("</script") == 3
    assert "<!--" not in page.split('id="asyncapi-document"', 1)[1].split("</script>", 1)[0]
    assert embedded(page, "asyncapi-document") == document


def test_yaml_matches_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    yaml = pytest.importorskip("yaml")
    document = docs_app()[0].generate_asyncapi_schema()
    text = document_yaml(document)
    assert yaml.safe_load(text) == document
    assert text.startswith(b"asyncapi: 3.0.0\n")  # block style
    # Without PyYAML the JSON text is served: JSON is valid YAML 1.2.
    monkeypatch.setitem(sys.modules, "yaml", None)
    fallback = document_yaml(document)
    assert json.loads(fallback) == document
    assert yaml.safe_load(fallback) == document


# The server --------------------------------------------------------------------------------


@pytest.fixture
async def docs_worker() -> AsyncIterator[int]:
    """A worker running with the docs server on a free port; yields the port."""
    app, broker = docs_app()
    port = free_port()
    async with broker.connection():
        worker = asyncio.create_task(
            app.run_worker(
                asyncapi_server=AsyncAPIServerSettings(port=port),
                messages_limit=1,
                register_signals=[],
            )
        )
        try:
            for _ in range(250):
                try:
                    await get(port, "/asyncapi.json")
                    break
                except OSError:
                    await asyncio.sleep(0.02)
            yield port
            # One message reaches the limit: the worker stops, and the docs server with it.
            await app.send_message_json(
                payload={"to": "a@b.c"}, channel="emails", headers={"topic": "send_welcome_email"}
            )
            info = await asyncio.wait_for(worker, 10)
            assert info.processed == 1
        finally:
            if not worker.done():
                worker.cancel()
    with pytest.raises(OSError):
        await get(port, "/")


async def test_docs_server_serves_page_json_yaml(docs_worker: int) -> None:
    port = docs_worker
    page = await get(port, "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    document = (await get(port, "/asyncapi.json")).json()
    assert_valid_asyncapi(document)
    assert set(document["operations"]) == {"process_order", "send_welcome_email", "orders.submit"}
    assert embedded(page.body.decode(), "asyncapi-document") == document
    yaml = pytest.importorskip("yaml")
    yaml_answer = await get(port, "/asyncapi.yaml")
    assert yaml_answer.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(yaml_answer.body) == document
    assert (await get(port, "/nope")).status == 404
    assert (await get(port, "/static/../../etc/passwd")).status == 404
    assert (await get(port, "/static/nothing.js")).status == 404
    head = await get(port, "/asyncapi.json", method="HEAD")
    assert head.status == 200 and head.body == b""


async def test_docs_server_serves_the_component(docs_worker: int) -> None:
    if not assets.local_assets_available():
        require_or_skip("run scripts/fetch_asyncapi_assets.py to fetch the React component")
    script = await get(docs_worker, "/static/asyncapi-react.js")
    assert script.status == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"AsyncApiStandalone" in script.body
    css = await get(docs_worker, "/static/asyncapi-react.css")
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")


async def test_endpoint_prefix() -> None:
    app, _ = docs_app()
    server = await AsyncAPIServer(
        AsyncAPIServerSettings(port=0, endpoint_name="/docs"), app
    ).start()
    try:
        page: RawResponse = await get(server.port, "/docs")
        assert page.status == 200
        assert (await get(server.port, "/docs/")).status == 200
        assert (await get(server.port, "/docs/asyncapi.json")).status == 200
        assert (await get(server.port, "/asyncapi.json")).status == 404
        if assets.local_assets_available():
            assert "/docs/static/asyncapi-react.js" in page.body.decode()
            assert (await get(server.port, "/docs/static/asyncapi-react.css")).status == 200
    finally:
        await server.close()


async def test_missing_assets_fall_back_to_cdn_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(assets, "STATIC_DIR", tmp_path)  # nothing fetched there
    app, _ = docs_app()
    with caplog.at_level("WARNING", logger="repid.asyncapi"):
        server = await AsyncAPIServer(AsyncAPIServerSettings(port=0), app).start()
    try:
        assert any("assets_missing" in r.getMessage() for r in caplog.records)
        page = (await get(server.port, "/")).body.decode()
        assert "static/asyncapi-react.js" not in page
        assert "https://cdn.jsdelivr.net/npm/@asyncapi/react-component@" in page
        assert "https://unpkg.com/@asyncapi/react-component@" in page
        assert (await get(server.port, "/static/asyncapi-react.js")).status == 404
    finally:
        await server.close()


# Chromium ----------------------------------------------------------------------------------


def chromium_or_skip() -> str:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    require_or_skip("chromium is not installed (apt-get install -y chromium)")
    raise AssertionError("unreachable")


async def run_chromium(binary: str, url: str, *extra: str) -> bytes:
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            # No internet: every host name fails to resolve except the docs server's address,
            # so the page can only render if the component is served locally.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}",
            "--window-size=1280,2000",
            "--virtual-time-budget=10000",
            *extra,
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            stdout, _ = await asyncio.wait_for(process.communicate(), 90)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise
    assert process.returncode == 0, process.returncode
    return stdout


@pytest.mark.slow
async def test_page_renders_in_headless_chromium(docs_worker: int) -> None:
    binary = chromium_or_skip()
    if not assets.local_assets_available():
        require_or_skip("run scripts/fetch_asyncapi_assets.py to fetch the React component")
    url = f"http://127.0.0.1:{docs_worker}/"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "asyncapi-docs.png"
    shot.unlink(missing_ok=True)
    # One browser run gives both the rendered DOM and the screenshot artifact.
    dom = (await run_chromium(binary, url, "--dump-dom", f"--screenshot={shot}")).decode()
    (ARTIFACTS / "asyncapi-docs-dom.html").write_text(dom)
    # Look only at what React rendered, not at the JSON embedded in the page.
    rendered = re.sub(r"<script\b[^>]*>.*?</script>", "", dom, flags=re.S)
    assert 'class="aui-root"' in rendered
    for name in ("process_order", "send_welcome_email", "orders.submit", "Docs demo"):
        assert name in rendered, name
    assert "Process an order" in rendered
    assert "Could not load the AsyncAPI React component" not in rendered
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
