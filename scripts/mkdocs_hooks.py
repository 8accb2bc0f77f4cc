"""MkDocs hooks (see `hooks:` in mkdocs.yml): the pinned third-party asset the site needs.

Material's offline plugin makes search work from file:// with a small Web Worker shim
(`iframe-worker`), which it would load from a CDN. The site ships its own copy instead: before
the build, the pinned, integrity-checked npm tarball (cached like the AsyncAPI assets, see
scripts/fetch_asyncapi_assets.py) is unpacked into docs/assets/vendor/ (git-ignored), and
mkdocs.yml lists that file as the polyfill, so nothing is fetched when the site is viewed.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
SHIM_PACKAGE = "iframe-worker"
SHIM_VERSION = "1.0.4"
SHIM_INTEGRITY = (
    "sha512-roeaaI+Lg1LJNfgpCjoRe/+WzEjy9+Z08LoEvu85MCPbBj"
    "wm+qXz8Ag5U05lHa6V1CysZyGzE0SOkAtSUA5q7Q=="
)
SHIM_FILES = {"shim.js": "package/shim/index.js", "LICENSE": "package/LICENSE"}
VENDOR = ROOT / "docs" / "assets" / "vendor" / "iframe-worker"


def _fetch_script() -> ModuleType:
    path = ROOT / "scripts" / "fetch_asyncapi_assets.py"
    spec = importlib.util.spec_from_file_location("fetch_asyncapi_assets", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vendor_assets() -> list[Path]:
    """Unpack the pinned shim into docs/assets/vendor/ unless it is already there."""
    if all((VENDOR / name).is_file() for name in SHIM_FILES):
        return []
    fetch = _fetch_script()
    tarball = fetch.npm_pack(SHIM_PACKAGE, SHIM_VERSION, SHIM_INTEGRITY)
    written: list[Path] = fetch.extract(tarball, SHIM_FILES, VENDOR)
    return written


def on_config(config: Any) -> Any:
    polyfills = config.extra.get("polyfills", [])
    if not any("iframe-worker" in str(p) for p in polyfills):
        raise PluginError("mkdocs.yml: extra.polyfills must name the vendored iframe-worker shim")
    try:
        vendor_assets()
    except (RuntimeError, OSError, subprocess.SubprocessError, KeyError) as exc:
        raise PluginError(
            f"could not fetch {SHIM_PACKAGE}@{SHIM_VERSION} for offline search: {exc} "
            "(npm must reach its registry once; the tarball is cached afterwards)"
        ) from exc
    return config
