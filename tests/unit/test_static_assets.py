"""The dashboard's files: vendored libraries as pinned, catalogs that agree, pages that load
only the app's own files and nothing the Content-Security-Policy refuses."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from domain.definition import PRIORITIES
from services.api.ui import ALL_PAGES, ASSETS, PAGES, STATIC, Page, render_pages

VENDOR = STATIC / "vendor"
LANGUAGES = ("en", "fr")
# `$t('nav.queue')` in a page, `t("case.back")` or a panel's title "manager.by_status" in a script
KEY_USE = re.compile(r"""["'`]([a-z_]+\.[a-z_0-9]+)["'`]""")


def _vendored() -> dict[str, str]:
    """file -> sha256, from the table of VENDOR.md."""
    rows = re.findall(
        r"^\| (\S+\.js) \|.*\| ([0-9a-f]{64}) \|", (VENDOR / "VENDOR.md").read_text(), re.M
    )
    return dict(rows)


def _catalog(language: str) -> dict[str, str]:
    catalog: dict[str, str] = json.loads((STATIC / "i18n" / f"{language}.json").read_text())
    return catalog


def test_every_vendored_file_is_the_pinned_one() -> None:
    listed = _vendored()
    assert listed, "VENDOR.md lists no file"
    on_disk = {path.name for path in VENDOR.glob("*.js")}
    assert on_disk == set(listed), "every script in vendor/ is listed in VENDOR.md, and only those"
    for name, sha256 in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == sha256, name


def test_both_catalogs_have_the_same_keys_and_no_blank_text() -> None:
    english, french = _catalog("en"), _catalog("fr")
    assert set(english) - set(french) == set(), "keys missing in fr.json"
    assert set(french) - set(english) == set(), "keys missing in en.json"
    for language in LANGUAGES:
        assert [k for k, v in _catalog(language).items() if not v.strip()] == [], language


def _sources() -> list[Path]:
    return [*PAGES.glob("*.html"), *(STATIC / "js").glob("*.js")]


def test_every_text_the_pages_look_up_is_in_the_catalogs() -> None:
    namespaces = {key.split(".")[0] for key in _catalog("en")}
    texts = {text for path in _sources() for text in KEY_USE.findall(path.read_text())}
    used = {text for text in texts if text.split(".")[0] in namespaces}
    assert len(used) > 100, "the pattern no longer finds the lookups"
    used |= {f"priority.{priority}" for priority in PRIORITIES}  # looked up by value
    missing = sorted(used - set(_catalog("en")))
    assert missing == [], f"add these to static/i18n/en.json and fr.json: {missing}"


@pytest.mark.parametrize("page", ALL_PAGES, ids=lambda page: page.template)
def test_a_page_loads_only_the_apps_own_files_and_no_inline_script(page: Page) -> None:
    html = render_pages()[page]
    assert "http://" not in html and "https://" not in html, "no file from another origin"
    inline_script = re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert inline_script is None, "the CSP refuses inline scripts"
    inline_style_or_handler = re.search(r"\sstyle=|\son[a-z]+=", html)
    assert inline_style_or_handler is None, "the CSP refuses inline styles and handlers"
    referenced = re.findall(rf'(?:src|href)="{ASSETS}/([^"]+)"', html)
    assert referenced, "the page loads its script"
    for path in referenced:
        assert (STATIC / path).is_file(), f"{path} is referenced but not in static/"


def test_every_module_a_script_imports_is_there() -> None:
    for script in (STATIC / "js").glob("*.js"):
        for imported in re.findall(r'from "(\.{1,2}/[^"]+)"', script.read_text()):
            assert (script.parent / imported).resolve().is_file(), f"{script.name}: {imported}"
