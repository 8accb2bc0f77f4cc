"""The AsyncAPI React component that renders the docs page: pinned version, local files, CDN.

The component (npm package `@asyncapi/react-component`, Apache-2.0) is third-party code and is
never committed to this repository. `python scripts/fetch_asyncapi_assets.py` downloads the
pinned version with `npm pack`, checks the tarball against the pinned sha512 integrity and
extracts the standalone browser bundle and its stylesheet into `repid/asyncapi/static/`
(git-ignored; a wheel build run after the script ships them as package data).

With the files present the docs page loads them by a relative URL from the embedded docs server,
so it works with no internet access. Without them the page falls back to the same pinned version
on the jsDelivr CDN (and unpkg if jsDelivr fails), and the docs server logs a warning at start.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ASSET_FILES",
    "CDN_FALLBACK_URLS",
    "REACT_COMPONENT_INTEGRITY",
    "REACT_COMPONENT_PACKAGE",
    "REACT_COMPONENT_VERSION",
    "STATIC_DIR",
    "local_assets_available",
    "read_asset",
]

REACT_COMPONENT_PACKAGE = "@asyncapi/react-component"
REACT_COMPONENT_VERSION = "3.2.1"
REACT_COMPONENT_INTEGRITY = (
    "sha512-k5ZqJd6+oxYaQ2o6F3rGWJ1MTIjXdpsUYB3NKQbVqr4"
    "yzrN0Ovj5c7eZx8NGd3wfKPhbOrLREtYl9K2OPfnSsA=="
)

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Served name -> path inside the npm tarball. The served names are what the page links to.
ASSET_FILES: dict[str, str] = {
    "asyncapi-react.js": "package/browser/standalone/index.js",
    "asyncapi-react.css": "package/styles/default.min.css",
    "asyncapi-react.js.LICENSE.txt": "package/browser/standalone/index.js.LICENSE.txt",
}

_CDN_PATHS = {
    "asyncapi-react.js": "browser/standalone/index.js",
    "asyncapi-react.css": "styles/default.min.css",
}

CDN_FALLBACK_URLS: dict[str, tuple[str, ...]] = {
    name: (
        f"https://cdn.jsdelivr.net/npm/{REACT_COMPONENT_PACKAGE}@{REACT_COMPONENT_VERSION}/{path}",
        f"https://unpkg.com/{REACT_COMPONENT_PACKAGE}@{REACT_COMPONENT_VERSION}/{path}",
    )
    for name, path in _CDN_PATHS.items()
}


def local_assets_available() -> bool:
    """True when the fetched bundle and stylesheet are in `STATIC_DIR`."""
    return all((STATIC_DIR / name).is_file() for name in _CDN_PATHS)


def read_asset(name: str) -> bytes | None:
    """The bytes of the served asset `name`, or None if it is unknown or not fetched."""
    if name not in ASSET_FILES:
        return None
    try:
        return (STATIC_DIR / name).read_bytes()
    except OSError:
        return None
