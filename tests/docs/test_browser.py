"""Headless Chromium opens the built site from files, offline: home page, search, API page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .cdp import Page, chromium_binary, open_chromium
from .conftest import ARTIFACTS, BuiltSite, require_or_skip

pytestmark = pytest.mark.slow


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    binary = chromium_binary()
    if binary is None:
        require_or_skip("chromium is not installed (apt-get install -y chromium)")
        raise AssertionError("unreachable")
    async with open_chromium(binary) as tab:
        yield tab


def offline_requests(page: Page) -> list[str]:
    """Requests that left the local files (there must be none)."""
    return [u for u in page.requests if not u.startswith(("file:", "data:", "blob:", "about:"))]


async def test_site_works_from_files_offline(built_site: BuiltSite, page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    home = (built_site.path / "index.html").as_uri()

    # The home page, styled by the theme (its stylesheet loaded from the site folder).
    await page.navigate(home)
    title = await page.wait_for("document.querySelector('article h1')?.textContent")
    assert "Repid" in title
    primary = await page.evaluate(
        "getComputedStyle(document.body).getPropertyValue('--md-primary-fg-color').trim()"
    )
    assert primary, "Material's stylesheet did not load"
    assert await page.evaluate("document.querySelectorAll('.md-nav__link').length") > 20
    await page.screenshot(ARTIFACTS / "docs-home.png")

    # Search: type a query; the search worker (through the iframe-worker shim, with the index
    # shipped as search_index.js) answers from file://.
    await page.evaluate("document.querySelector('.md-search__input').focus()")
    await page.send("Input.insertText", text="confirmation modes")
    links = await page.wait_for(
        "Array.from(document.querySelectorAll('.md-search-result__link'))"
        ".map(a => a.href).filter(h => h.includes('guide/confirmation-modes.html'))",
        timeout=30,
    )
    assert links, "the search did not find the confirmation-modes page"
    await page.screenshot(ARTIFACTS / "docs-search.png")

    # An API reference page, rendered from the docstrings by mkdocstrings.
    await page.navigate((built_site.path / "reference" / "app.html").as_uri())
    heading = await page.wait_for(
        "document.getElementById('repid.app.Repid.send_message_json')?.textContent"
    )
    assert "send_message_json" in heading
    await page.screenshot(ARTIFACTS / "docs-api-reference.png")

    assert not offline_requests(page), offline_requests(page)
    assert not page.console_errors, page.console_errors
