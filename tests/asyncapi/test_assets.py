"""The pinned-asset fetch script: integrity checking and extraction."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import pytest

from repid.asyncapi import assets

from .spec import fetch_script, require_or_skip


def test_integrity_string_matches_npm_format(tmp_path: Path) -> None:
    file = tmp_path / "x.tgz"
    file.write_bytes(b"hello")
    expected = "sha512-" + base64.b64encode(hashlib.sha512(b"hello").digest()).decode()
    assert fetch_script().integrity_of(file) == expected


def test_extract_writes_only_the_named_members(tmp_path: Path) -> None:
    tarball = tmp_path / "pkg.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name, data in (("package/a.js", b"A"), ("package/../../evil", b"E")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    out = tmp_path / "out"
    written = fetch_script().extract(tarball, {"served.js": "package/a.js"}, out)
    assert written == [out / "served.js"]
    assert (out / "served.js").read_bytes() == b"A"
    assert sorted(p.name for p in out.iterdir()) == ["served.js"]
    assert not (tmp_path.parent / "evil").exists()


def test_wrong_integrity_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("npm") is None:
        require_or_skip("npm is not installed")
    monkeypatch.setenv("REPID_NPM_CACHE", str(tmp_path))
    script = fetch_script()
    wrong = "sha512-" + base64.b64encode(b"\0" * 64).decode()
    with pytest.raises(RuntimeError, match="integrity mismatch"):
        script.npm_pack(script.SPECS_PACKAGE, script.SPECS_VERSION, wrong)
    assert not list(tmp_path.glob("*.tgz"))  # nothing unverified is kept


def test_served_asset_names_are_the_only_readable_ones() -> None:
    assert assets.read_asset("../__init__.py") is None
    assert assets.read_asset("asyncapi-react.js.map") is None
    for name in ("asyncapi-react.js", "asyncapi-react.css"):
        assert name in assets.ASSET_FILES
        assert all(url.endswith((".js", ".css")) for url in assets.CDN_FALLBACK_URLS[name])
