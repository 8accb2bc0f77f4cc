"""Build hooks: every wheel and sdist ships the pinned AsyncAPI React bundle.

The project's metadata lives in pyproject.toml; this file only adds one step to the build.
Before the package files are collected (`build_py`, which the wheel uses, and `sdist`), the
bundle in `repid/asyncapi/static/` is checked against the SHA-256 pinned in
`repid/asyncapi/assets.py`. When it is missing or stale (a fresh clone), it is fetched with
`npm pack`, checked against the pinned sha512 integrity, and extracted - see
`scripts/fetch_asyncapi_assets.py`. An sdist carries the verified files, so building a wheel
from it needs no npm. The files are never committed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent


def _fetch_script() -> Any:
    path = ROOT / "scripts" / "fetch_asyncapi_assets.py"
    spec = importlib.util.spec_from_file_location("_repid_fetch_asyncapi_assets", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_asyncapi_bundle() -> None:
    """Fetch (or keep) the verified bundle; a failure stops the build with the reason."""
    script = _fetch_script()
    try:
        script.fetch_react_component()
    except (RuntimeError, OSError) as exc:
        sys.exit(f"error: cannot ship the AsyncAPI React bundle: {exc}")


class BuildPyWithAssets(build_py):
    def run(self) -> None:
        ensure_asyncapi_bundle()
        super().run()


class SdistWithAssets(sdist):
    def run(self) -> None:
        ensure_asyncapi_bundle()
        super().run()


setup(cmdclass={"build_py": BuildPyWithAssets, "sdist": SdistWithAssets})
