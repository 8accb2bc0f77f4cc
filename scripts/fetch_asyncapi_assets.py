#!/usr/bin/env python3
"""Fetch the pinned third-party AsyncAPI assets with `npm pack`, integrity-checked.

    python scripts/fetch_asyncapi_assets.py           # React component -> repid/asyncapi/static/
    python scripts/fetch_asyncapi_assets.py --specs   # also the official AsyncAPI JSON Schemas

The React component's standalone bundle and stylesheet go into `repid/asyncapi/static/`
(git-ignored) so the embedded docs server can serve them with no internet access. `--specs`
unpacks `@asyncapi/specs` (the official AsyncAPI JSON Schemas, used by the tests) into the cache
directory. Every tarball is checked against the sha512 integrity pinned here (the value npm's
registry publishes as `dist.integrity`) before anything is extracted; a mismatch is fatal.

Tarballs are cached in `$REPID_NPM_CACHE` (default `~/.cache/repid/npm`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SPECS_PACKAGE = "@asyncapi/specs"
SPECS_VERSION = "6.11.1"
SPECS_INTEGRITY = (
    "sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp"
    "/klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
)
# The bundled AsyncAPI 3.0.0 schema: every definition inline, keyed by its `$id`.
SPECS_FILES = {"asyncapi-3.0.0.json": "package/schemas/3.0.0.json"}


def cache_dir() -> Path:
    """Where tarballs and unpacked specs are kept between runs."""
    configured = os.environ.get("REPID_NPM_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "repid" / "npm"


def integrity_of(path: Path) -> str:
    """The npm-style `sha512-<base64>` integrity string of a file."""
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


def npm_pack(package: str, version: str, integrity: str) -> Path:
    """The verified tarball of `package@version` (downloaded with `npm pack` if not cached)."""
    target_dir = cache_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
    if target.is_file() and integrity_of(target) == integrity:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: it is needed to download the pinned assets")
    with tempfile.TemporaryDirectory() as tmp:
        completed = subprocess.run(
            [npm, "pack", f"{package}@{version}", "--json", "--pack-destination", tmp],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"npm pack {package}@{version} failed: {completed.stderr.strip()}")
        filename = json.loads(completed.stdout)[0]["filename"]
        downloaded = Path(tmp) / filename
        actual = integrity_of(downloaded)
        if actual != integrity:
            raise RuntimeError(
                f"{package}@{version}: integrity mismatch (expected {integrity}, got {actual}); "
                "refusing to use it"
            )
        shutil.move(str(downloaded), target)
    return target


def extract(tarball: Path, files: dict[str, str], destination: Path) -> list[Path]:
    """Copy the named members of `tarball` to `destination/<name>` (nothing else is unpacked)."""
    destination.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tarfile.open(tarball, "r:gz") as archive:
        for name, member_name in files.items():
            member = archive.getmember(member_name)
            source = archive.extractfile(member)
            if source is None:
                raise RuntimeError(f"{member_name} in {tarball.name} is not a regular file")
            out = destination / name
            tmp = out.with_suffix(out.suffix + ".part")
            tmp.write_bytes(source.read())
            tmp.replace(out)
            written.append(out)
    return written


def load_assets_module() -> Any:
    """`repid/asyncapi/assets.py`, loaded by path (it imports nothing but the standard library,
    so this works in a build environment where Repid's dependencies are not installed)."""
    path = ROOT / "repid" / "asyncapi" / "assets.py"
    spec = importlib.util.spec_from_file_location("_repid_asyncapi_assets", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fetch_react_component(destination: Path | None = None) -> list[Path]:
    """Put the pinned React component bundle into `destination` (default the package's
    `static/` directory), checked file by file against the pinned SHA-256.

    Files already there and intact are kept (no npm needed, as when building from an sdist);
    otherwise the tarball is fetched with `npm pack` (sha512-checked) and the files extracted.
    """
    assets = load_assets_module()
    target = destination or assets.STATIC_DIR
    if not assets.unverified_assets(target):
        return [target / name for name in assets.ASSET_FILES]
    tarball = npm_pack(
        assets.REACT_COMPONENT_PACKAGE,
        assets.REACT_COMPONENT_VERSION,
        assets.REACT_COMPONENT_INTEGRITY,
    )
    written = extract(tarball, assets.ASSET_FILES, target)
    bad = assets.unverified_assets(target)
    if bad:
        for path in written:
            path.unlink(missing_ok=True)
        raise RuntimeError(f"extracted files do not match their pinned SHA-256: {bad}")
    return written


def fetch_specs() -> Path:
    """Fetch the pinned official AsyncAPI schemas; return the bundled 3.0.0 schema's path."""
    tarball = npm_pack(SPECS_PACKAGE, SPECS_VERSION, SPECS_INTEGRITY)
    destination = cache_dir() / f"asyncapi-specs-{SPECS_VERSION}"
    target = destination / "asyncapi-3.0.0.json"
    if not target.is_file():
        extract(tarball, SPECS_FILES, destination)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", action="store_true", help="also fetch @asyncapi/specs")
    parser.add_argument(
        "--no-component", action="store_true", help="do not fetch the React component"
    )
    args = parser.parse_args()
    try:
        if not args.no_component:
            for path in fetch_react_component():
                print(f"ready: {path}")
        if args.specs:
            print(f"wrote {fetch_specs()}")
    except (RuntimeError, OSError, subprocess.SubprocessError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
