"""The AsyncAPI React component that renders the docs page: pinned version, local files, CDN.

The component (npm package `@asyncapi/react-component`, Apache-2.0) is third-party code and is
never committed to this repository. `python scripts/fetch_asyncapi_assets.py` downloads the
pinned version with `npm pack`, checks the tarball against the pinned sha512 integrity and
extracts the standalone browser bundle and its stylesheet into `repid/asyncapi/static/`
(git-ignored). The package build (`setup.py`) does the same when the files are missing, so
every wheel and sdist ships them; each file is checked against the SHA-256 pinned in
`ASSET_SHA256` before it is shipped or served, and the component's Apache-2.0 license text
(`LICENSE-asyncapi-react.txt`) and its bundled-code notices travel beside it.

With the files present the docs page loads them by a relative URL from the embedded docs server,
so it works with no internet access. Without them the page falls back to the same pinned version
on the jsDelivr CDN (and unpkg if jsDelivr fails), and the docs server logs a warning at start.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = [
    "ASSET_FILES",
    "ASSET_SHA256",
    "CDN_FALLBACK_URLS",
    "REACT_COMPONENT_INTEGRITY",
    "REACT_COMPONENT_PACKAGE",
    "REACT_COMPONENT_VERSION",
    "STATIC_DIR",
    "local_assets_available",
    "read_asset",
    "sha256_of",
    "unverified_assets",
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
    "LICENSE-asyncapi-react.txt": "package/LICENSE",
}

# The SHA-256 of each file as extracted from the pinned tarball: the build refuses anything
# else (a stale bundle from another version, a truncated download).
ASSET_SHA256: dict[str, str] = {
    "asyncapi-react.js": "719f29a62127c5c406af8b3b016167d69e43624200354966cc4997bdce5e4c54",
    "asyncapi-react.css": "c8093f9b6441559267845abc24611f7721d075e4f278a8143857bcdc348df410",
    "asyncapi-react.js.LICENSE.txt": (
        "d31d55d9a7c4009c45af4cd2d84e15e88518796c4c1f95cdc38acc605f3d6549"
    ),
    "LICENSE-asyncapi-react.txt": (
        "43070e2d4e532684de521b885f385d0841030efa2b1a20bafb76133a5e1379c1"
    ),
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


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unverified_assets(directory: Path | None = None) -> list[str]:
    """Names of the pinned files missing from `directory` (default `STATIC_DIR`) or not matching
    their pinned SHA-256; empty when the bundle there is complete and intact."""
    where = STATIC_DIR if directory is None else directory
    bad = []
    for name, expected in ASSET_SHA256.items():
        path = where / name
        if not path.is_file() or sha256_of(path) != expected:
            bad.append(name)
    return bad
