"""The site builds with --strict and has no broken internal link."""

from __future__ import annotations

import re

from .conftest import BuiltSite
from .linkcheck import check_site


def test_mkdocs_build_strict(built_site: BuiltSite) -> None:
    # --strict turns every warning into a failure; the fixture already asserted success.
    assert not re.search(r"^WARNING", built_site.output, re.M), built_site.output
    for page in ("index.html", "guide/confirmation-modes.html", "reference/app.html"):
        assert (built_site.path / page).is_file(), page
    # The offline plugin ships the search index as a script (no fetch from file://).
    assert (built_site.path / "search" / "search_index.js").is_file()


def test_no_broken_internal_links(built_site: BuiltSite) -> None:
    report = check_site(built_site.path)
    assert report.pages >= 40, report.pages
    assert report.checked > 1000, report.checked
    assert not report.broken, "\n".join(report.broken)


def test_api_reference_rendered_from_docstrings(built_site: BuiltSite) -> None:
    page = (built_site.path / "reference" / "app.html").read_text(encoding="utf-8")
    # A signature and a docstring sentence of Repid.send_message_json.
    assert 'id="repid.app.Repid.send_message_json"' in page
    assert "Serialize" in page and "payload" in page
