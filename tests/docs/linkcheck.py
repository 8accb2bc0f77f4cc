"""A link check over a built static site: every internal href/src resolves to a file, and every
#fragment to an element id of the page it points at."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["LinkReport", "check_site"]

_LINK_ATTRIBUTES = {
    "a": ("href",),
    "link": ("href",),
    "img": ("src",),
    "script": ("src",),
    "source": ("src",),
    "iframe": ("src",),
}
# Resources that must come from the site itself: fetching them from the internet would break
# the site offline.
_RESOURCE_TAGS = frozenset({"link", "img", "script", "source", "iframe"})


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("id", "name"):
            value = values.get(name)
            if value and (name == "id" or tag == "a"):
                self.ids.add(value)
        for attribute in _LINK_ATTRIBUTES.get(tag, ()):
            url = values.get(attribute)
            if url is not None and not (tag == "link" and values.get("rel") == "preconnect"):
                self.links.append((tag, url))


@cache
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@dataclass
class LinkReport:
    pages: int = 0
    checked: int = 0
    external: set[str] = field(default_factory=set)
    broken: list[str] = field(default_factory=list)


def check_site(site: Path) -> LinkReport:
    report = LinkReport()
    for html in sorted(site.rglob("*.html")):
        if html.parent == site and html.name == "404.html":
            # Only a web server shows it (for any missing path), so MkDocs writes it with
            # root-absolute links; it is never opened from file://.
            continue
        report.pages += 1
        where = html.relative_to(site).as_posix()
        for tag, url in _parse(html).links:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https", "mailto"):
                if tag in _RESOURCE_TAGS:
                    report.broken.append(f"{where}: <{tag}> loads {url} from the network")
                else:
                    report.external.add(url)
                continue
            if parts.scheme in ("data", "javascript", "blob") or (not parts.path and not url):
                continue
            if parts.scheme or parts.netloc:
                report.broken.append(f"{where}: unexpected URL {url!r}")
                continue
            report.checked += 1
            if parts.path.startswith("/"):
                report.broken.append(f"{where}: absolute link {url!r} breaks from file://")
                continue
            target = html if not parts.path else (html.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                report.broken.append(f"{where}: {url!r} is a folder (no index.html from file://)")
                continue
            if not target.is_file():
                report.broken.append(f"{where}: {url!r} -> missing {target}")
                continue
            if parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _parse(target).ids:
                    report.broken.append(f"{where}: {url!r}: no #{parts.fragment} in the page")
    return report
