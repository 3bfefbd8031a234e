"""The report serves letters inert: whatever a source sent (a text letter named `*.html`, `*.svg`,
`*.xhtml`, `*.htm`, a "PDF" that is HTML) and whatever text a finding holds, no script of theirs
runs in any page of the report. Checked in Chromium: every page and every linked letter copy is
opened, the search box is used with the planted words, and the planted scripts' marks are looked
for (a global they set, a dialog, a title change). The report's own script still works."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from _analysts_support import build_real_warehouse
from _browser_support import chromium_or_skip, open_page

from ingest.report.render import write_report
from ingest.settings import Settings

pytestmark = pytest.mark.browser

SCRIPT = "<script>window.__pwned = (window.__pwned || 0) + 1; document.title = 'PWNED';</script>"
HANDLER = '<img src="x" onerror="window.__pwned = (window.__pwned || 0) + 1">'
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned = 1">'
       '<script>window.__pwned = (window.__pwned || 0) + 1</script></svg>')
# inspection number -> (archived extension, bytes): each a letter as a hostile source might name it
LETTERS = {
    1: (".html", f"<html><body>Ofsted letter {SCRIPT}{HANDLER}</body></html>".encode()),
    2: (".svg", SVG.encode()),
    3: (".xhtml", f'<html xmlns="http://www.w3.org/1999/xhtml"><body>{SCRIPT}</body></html>'.encode()),
    4: (".htm", f"Dear director {SCRIPT}".encode()),
    5: (".pdf", f"<html>{SCRIPT}</html>".encode()),  # HTML in a .pdf name
    6: (".txt", f"A text letter {SCRIPT}".encode()),
}
FINDING = f"Planted finding zzplanted {SCRIPT}{HANDLER}"


def _hostile_letters() -> dict[str, bytes]:
    """Three generated letters, the first with FINDING written into its first finding: the parser
    reads it as a finding's text, as it would from a source that sent it."""
    from devtools.synthetic import generate_letter

    out = {}
    for n, seed in enumerate((101, 202, 303)):
        letter = generate_letter(seed)
        text = letter.text
        if n == 0:
            first = letter.expected["findings"][0]["text"]
            opening = " ".join(first.split()[:3])
            at = text.find(opening)
            assert at > 0, opening
            text = text[:at] + FINDING + " " + text[at:]
        out[f"hostile_{n}.txt"] = text.encode()
    return out


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory) -> Path:
    """The report of a real night (the sample letters and three generated ones, one with a planted
    finding), its archive then replaced by what a hostile source might have left there: each
    inspection's archived letter one of LETTERS, under the name it came with."""
    root = tmp_path_factory.mktemp("inert")
    settings = build_real_warehouse(root, extra_letters=_hostile_letters())
    con = duckdb.connect(str(settings.published_warehouse), read_only=True)
    shas = [r[0] for r in con.execute(
        "select _sha256 from marts.fct_inspections order by _sha256").fetchall()]
    planted = con.execute("select count(*) from marts.fct_findings where finding_text like '%zzplanted%'"
                          ).fetchone()[0]
    con.close()
    assert len(shas) == len(LETTERS) and planted == 1, (shas, planted)
    archive = root / "archive"
    for sha, (ext, data) in zip(shas, LETTERS.values(), strict=True):
        (archive / sha[:2]).mkdir(parents=True, exist_ok=True)
        (archive / sha[:2] / f"{sha}{ext}").write_bytes(data)
    out = root / "report"
    write_report(settings.with_overrides(report_dir=out, archive_dir=archive), None)
    return out


def test_letter_copies_are_pdf_or_txt_copies_never_links_to_the_archive(hostile_report):
    copies = sorted((hostile_report / "letters").iterdir())
    assert sorted(p.suffix for p in copies) == [".pdf", ".txt", ".txt", ".txt", ".txt", ".txt"]
    archive = hostile_report.parent / "archive"
    for p in copies:
        assert p.is_file() and not p.is_symlink() and os.stat(p).st_nlink == 1, p
        sha = p.stem
        [archived] = (archive / sha[:2]).glob(f"{sha}.*")
        assert p.read_bytes() == archived.read_bytes()
    pages = "".join(p.read_text() for p in hostile_report.rglob("*.html"))
    assert "Letter (TXT, archived copy)" in pages and "(HTML, archived copy)" not in pages
    assert "(SVG, archived copy)" not in pages


def test_every_page_has_a_csp_with_no_inline_script(hostile_report):
    for page in hostile_report.rglob("*.html"):
        text = page.read_text()
        assert "Content-Security-Policy" in text and "script-src 'self';" in text, page
        assert "'unsafe-inline'" not in text.split("script-src", 1)[1].split(";", 1)[0]
        assert "<script>" not in text and " onsubmit=" not in text and " onclick=" not in text, page


def _no_script_ran(page, dialogs: list[str]) -> None:
    assert page.evaluate("() => window.__pwned === undefined"), page.url
    assert page.title() != "PWNED" and dialogs == [], page.url


def test_no_planted_script_runs_in_any_page_or_letter_copy_in_chromium(hostile_report):
    chromium_or_skip()
    index = hostile_report / "index.html"
    pages = sorted(hostile_report.rglob("*.html"))
    with open_page(index.as_uri()) as (page, problems):
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        # the report's own script works under its CSP: the search finds the planted finding as text
        page.fill("#q", "zzplanted")
        page.wait_for_function("() => document.querySelectorAll('#search-results li').length > 0")
        assert "zzplanted" in page.inner_text("#search-results")
        _no_script_ran(page, dialogs)
        links = set()
        for p in pages:
            page.goto(p.as_uri(), wait_until="load")
            _no_script_ran(page, dialogs)
            links |= set(page.eval_on_selector_all(
                "a.letter", "els => els.map(e => e.href).filter(h => h.startsWith('file:'))"))
        assert len(links) == len(LETTERS), links
        for href in sorted(links):
            try:
                page.goto(href, wait_until="load")
            except Exception as exc:  # noqa: BLE001 - a PDF that is not one is not shown at all
                assert "Download" in str(exc) or "ERR_ABORTED" in str(exc), (href, exc)
                continue
            _no_script_ran(page, dialogs)
        assert not [e for e in problems.page_errors], problems.as_dict()
        assert not [e for e in problems.console_errors if "Content Security Policy" in e], problems.as_dict()


def test_the_report_copy_is_served_the_same_over_http(hostile_report):
    """Served by a plain web server (the report's origin), a copy is text/plain or application/pdf."""
    import mimetypes

    for p in (hostile_report / "letters").iterdir():
        assert mimetypes.guess_type(p.name)[0] in ("text/plain", "application/pdf"), p.name


def test_gx_data_docs_throw_nothing_offline(dq_warehouse, tmp_path):
    """GX's pages load jQuery from a CDN; offline (as here) they threw `$ is not defined`."""
    chromium_or_skip()
    from expectations.validate import validate_raw

    settings = Settings.from_env({}).with_overrides(
        work_warehouse=dq_warehouse, report_dir=tmp_path / "report", data_dir=tmp_path,
        published_warehouse=tmp_path / "published" / "warehouse.duckdb")
    result = validate_raw(settings, "offline-docs")
    index = Path(result["data_docs"])
    pages = [index, *sorted((index.parent / "validations").rglob("*.html"))]
    assert len(pages) >= 2
    for page_path in pages:
        with open_page(page_path.as_uri()) as (page, problems):
            assert problems.page_errors == [], (page_path, problems.page_errors)
            assert "open it with a network connection" in page.inner_text("body"), page_path
