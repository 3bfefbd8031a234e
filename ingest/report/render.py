"""The static HTML report the data team opens in the morning: a folder of plain files.

`index.html` (the overview), one page per authority under `authorities/`, a stylesheet, a
small script for the search box and the search index it reads (`search-index.js`, built
here), copies of the source letters under `letters/` (served inert, below), and
`report-state.json` (what this report showed, so the next one can say what is new). No server
and no network: every chart is an inline SVG drawn in Python (`charts.py`), every figure is
also in a table, and the pages open from a file share, an e-mail attachment or an artefact
store exactly as written.

Figures come from the published warehouse (`queries.py`) through the same locked, read-only
connection as `ofsted sql`; what each page says is arranged in `pages.py`; the HTML is in
Jinja2 templates (`templates/`). Each file is written to a temporary name and renamed;
`index.html` last, once everything it links to is on disk.

**Served inert.** A letter is whatever a source sent: a text letter named `*.html` or `*.svg`
would run its script if served under that name. The archived copy in the report is only ever
`<sha256>.pdf` or `<sha256>.txt` (text of any other extension is served as `.txt`), a copy made
with `ingest.files` (never a hard link: editing the report's copy cannot edit the archive), and
every page carries a Content-Security-Policy `<meta>` allowing the report's own script files
and no inline script at all (`templates/_base.html.j2`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jinja2

from ingest import nights as nights_history
from ingest.files import UnsafeFile, copy_file, make_durable, read_file, remove_file, write_file
from ingest.letters.models import CATEGORIES
from ingest.report import pages
from ingest.report.formats import esc, fmt_date, fmt_int, fmt_pct
from ingest.report.queries import ReportData, choose_dq, read_report_data
from ingest.report.search import index_script
from ingest.settings import Settings
from ingest.warehouse.publish import staging_report_dir
from ingest.warehouse.query import with_one_line_errors

log = logging.getLogger(__name__)

REPORT_FILE = "index.html"
STATE_FILE = "report-state.json"
SEARCH_INDEX_FILE = "search-index.js"
LETTERS_DIR = "letters"
HERE = Path(__file__).parent
STATIC_FILES = ("report.css", "report.js")

# Pages the night publishes beside the report (dbt docs by the DAG, data docs by the GX suites);
# linked only when present.
SIBLING_PAGES = (
    ("dbt docs", "dbt_docs/index.html"),
    ("Great Expectations data docs", "data_docs/index.html"),
)

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(int=fmt_int, date=fmt_date)
ENV.globals.update(pct=fmt_pct, zip=zip, category_label=pages.label, categories=CATEGORIES)


def dq_status(dq: dict | None) -> tuple[str, str]:
    """(css class, one-line text) for the data-quality badge."""
    if not dq:
        return "unknown", "Data quality: not recorded for this report"
    evaluated, failed = int(dq.get("evaluated") or 0), int(dq.get("failed") or 0)
    warnings = [w for w in dq.get("warnings") or [] if isinstance(w, dict)]
    named = ", ".join(f"{w.get('check')}: {'?' if w.get('count') is None else w['count']}" for w in warnings)
    if dq.get("success") and warnings:  # a warning never fails a night and is never hidden
        passed = int(dq.get("passed") or evaluated - len(warnings))
        plural = "s" if len(warnings) != 1 else ""
        return "warn", f"Data quality: {passed:,} checks passed, {len(warnings)} warning{plural} ({named})"
    if dq.get("success"):
        return "pass", f"Data quality: all {evaluated:,} checks passed"
    also = f"; {len(warnings)} warning{'s' if len(warnings) != 1 else ''} ({named})" if warnings else ""
    return "fail", f"Data quality: {failed:,} of {evaluated:,} checks failed{also}"


def _href(target: str | Path, out_dir: Path) -> str:
    p = Path(target)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return p.as_uri()


def sibling_links(out_dir: Path) -> list[tuple[str, str]]:
    return [(name, rel) for name, rel in SIBLING_PAGES if (out_dir / rel).is_file()]


# --- the night history (the controls engineer's ingest.nights) ---------------------------------

def read_night_history(settings: Settings, out_dir: Path, limit: int = 30) -> tuple[list[dict], dict | None]:
    """(the last `limit` nights newest first, the last good night) from the data directory.

    A running night that is writing this report into its own staging folder has passed its
    checks and published (the report comes last): it is shown as "publishing", not running."""
    nights = nights_history.read_nights(settings, limit=limit)
    if (nights and nights[0].get("state") == "running" and live_report_dir(out_dir) is not None
            and out_dir.name == staging_report_dir(settings, str(nights[0].get("run_id"))).name):
        nights = [{**nights[0], "state": "publishing"}, *nights[1:]]
    return nights, nights_history.last_good_night(settings)


FAILED_NIGHT_DOCS = "failed_night/data_docs/index.html"  # where publish_failed_night puts its data docs


def failed_night_dq(nights: Sequence[dict], out_dir: Path) -> dict | None:
    """The latest night's failed suite as a DQ result for the report, when that night failed on DQ."""
    if not nights or nights[0].get("state") != "failed":
        return None
    night = nights[0]
    for suite in ("marts", "raw"):
        result = (night.get("dq") or {}).get(suite)
        if result and not result.get("success"):
            docs = out_dir / FAILED_NIGHT_DOCS
            return {"success": False, "evaluated": result.get("evaluated"), "failed": result.get("failed"),
                    "failures": [{"table": suite, "detail": f} for f in result.get("failures") or []],
                    "data_docs": str(docs) if docs.is_file() else None,
                    "source": f"The {suite} checks of night {night.get('run_id')}, which failed; "
                              "the warehouse below is the last good one."}
    return None


# --- the source letters -----------------------------------------------------------------------

SERVED_SUFFIXES = (".pdf", ".txt")  # the only names a letter is served under: inert in any browser
LETTER_MAX_BYTES = 1 << 30
STATE_MAX_BYTES = 64 * 2**20


def served_name(archived: Path) -> str:
    """The name a letter's copy has in the report: `<sha>.pdf`, or `<sha>.txt` for any other kind."""
    sha = archived.name.split(".", 1)[0]
    suffix = archived.suffix.lower()
    return f"{sha}{suffix if suffix in SERVED_SUFFIXES else '.txt'}"


class LetterCopies:
    """Links to each inspection's letter: a copy published in the report, and the source when on the web."""

    def __init__(self, archive_dir: Path | None, out_dir: Path, max_bytes: int = LETTER_MAX_BYTES):
        self.archive_dir = archive_dir
        self.out_dir = out_dir
        self.max_bytes = max_bytes
        self.published: set[str] = set()
        self.written: list[Path] = []  # copied without an fsync each (`write_report` syncs them once)
        self.listing: dict[str, dict[str, Path]] = {}

    def _archived(self, sha256: str) -> Path | None:
        """The archived file `<archive>/<sha[:2]>/<sha>.<ext>` (each folder listed once)."""
        if not self.archive_dir or not sha256:
            return None
        folder = sha256[:2]
        if folder not in self.listing:
            path = self.archive_dir / folder
            self.listing[folder] = {f.name.split(".", 1)[0]: f for f in sorted(path.iterdir(), reverse=True)
                                    if not f.name.startswith(".")} if path.is_dir() else {}
        return self.listing[folder].get(sha256)

    def links(self, inspection: dict[str, Any], depth: int = 1) -> list[pages.Link]:
        out = []
        sha = inspection.get("_sha256")
        src = self._archived(sha) if sha else None
        if src is not None:
            name = served_name(src)
            rel = f"{LETTERS_DIR}/{name}"
            if rel not in self.published:
                try:
                    copy_file(src, self.out_dir / rel, self.max_bytes, durable=False)  # a copy, never a link
                    self.written.append(self.out_dir / rel)
                except (OSError, ValueError) as exc:  # a link planted in the archive, say: no copy
                    log.warning("letter %s not copied into the report: %s", src.name, exc)
                    src = None
                else:
                    self.published.add(rel)
        if src is not None:
            out.append(pages.Link(f"Letter ({Path(name).suffix.lstrip('.').upper()}, archived copy)",
                                  "../" * depth + rel))
        uri = inspection.get("_source_uri") or ""
        if uri.startswith(("http://", "https://")):
            out.append(pages.Link("Letter as published", uri))
        return out

    def remove_unused(self) -> None:
        folder = self.out_dir / LETTERS_DIR
        if folder.is_dir() and not folder.is_symlink():
            for f in folder.iterdir():
                if f"{LETTERS_DIR}/{f.name}" not in self.published:
                    with contextlib.suppress(UnsafeFile):  # not a file this report wrote: left alone
                        remove_file(f)


# --- writing ----------------------------------------------------------------------------------

def write_atomically(path: Path, text: str, durable: bool = True) -> None:
    """`ingest.files.write_file`: a new file beside `path`, renamed over it (never through a link)."""
    write_file(path, text, durable=durable)


def live_report_dir(out_dir: Path) -> Path | None:
    """The published report folder that a night's staging folder belongs to, if `out_dir` is one.

    A night writes its report into `.<report>.staging/<run>` beside the published folder
    (`ingest.warehouse.publish.staging_report_dir`) and publishes it after; what is "new" is
    measured against the report published now, which is the folder this returns."""
    m = re.fullmatch(r"\.(.+)\.staging", out_dir.parent.name)
    return out_dir.parent.parent / m.group(1) if m else None


def previous_state(settings: Settings, out_dir: Path) -> dict | None:
    """What the report published now showed (else the last one written to `out_dir`)."""
    for folder in (live_report_dir(out_dir), settings.report_dir, out_dir):
        if folder is None:
            continue
        try:
            return json.loads(read_file(folder / STATE_FILE, STATE_MAX_BYTES))  # never through a link
        except (OSError, ValueError):
            continue
    return None


def render_site(d: ReportData, dq: dict | None, built_at: dt.datetime, out_dir: Path,
                nights: Sequence[dict] = (), last_good: dict | None = None,
                previous: dict | None = None, archive_dir: Path | None = None,
                copied: list[Path] | None = None) -> dict[str, str]:
    """Every file of the report as {relative path: text}, except the letter copies (made as it
    goes, without an fsync each: their paths are added to `copied`, for the caller to sync)."""
    letters = LetterCopies(archive_dir, out_dir)
    authority_pages = pages.authority_pages(d, letters.links)
    page_of_inspection = {i["inspection_key"]: f"{p.href}#{i['anchor']}"
                          for p in authority_pages for i in p.inspections}
    page_of_name = {p.name: p.href for p in authority_pages if p.matched}
    current = {i["inspection_key"]: i.get("_sha256") or "" for i in d.inspections}
    cls, text = dq_status(dq)
    common = {
        "built": f"{built_at:%d %b %Y %H:%M} UTC",
        "published": f"{d.published_at:%d %b %Y %H:%M} UTC" if d.published_at else "–",
        "badge": {"cls": cls, "text": text, "href": "index.html#dq-warnings" if cls == "warn" else None},
        "banner": pages.night_banner(nights, last_good),
        "siblings": sibling_links(out_dir),
        "warehouse": str(d.warehouse),
    }
    data_docs = _href(dq["data_docs"], out_dir) if dq and dq.get("data_docs") else None
    if dq:
        dq = {"run_id": None, "validated_at": None, "failures": [], "warnings": [], "tables": [],
              "source": None, **dq}
    files: dict[str, str] = {}
    index = ENV.get_template("index.html.j2")
    files[REPORT_FILE] = index.render(
        root="", d=d, dq=dq, data_docs=data_docs,
        cards=pages.summary_cards(d),
        years=pages.years_view(d),
        fys=pages.financial_years_view(d) if d.financial_years else None,
        regions=pages.regions_view(d) if d.regions else None,
        compare=pages.regions_comparison_view(d),
        categories=pages.categories_view(d),
        themes=pages.themes_view(d),
        priority=pages.priority_view(d, page_of_name),
        directory=pages.directory_table(authority_pages),
        changes=pages.changes_since(previous, current, d.inspections, page_of_inspection),
        history=pages.history_table(nights) if nights else None,
        **common)
    authority = ENV.get_template("authority.html.j2")
    for p in authority_pages:
        files[p.href] = authority.render(root="../", page=p, trend=pages.authority_trend(p),
                                         comparison=pages.comparison_view(p, d), **common)
    files[SEARCH_INDEX_FILE] = index_script(pages.search_index(authority_pages, d.search))
    for name in STATIC_FILES:
        files[name] = (HERE / "static" / name).read_text(encoding="utf-8")
    files[STATE_FILE] = json.dumps({"built_at": built_at.isoformat(), "inspections": current},
                                   indent=0, sort_keys=True) + "\n"
    letters.remove_unused()
    if copied is not None:
        copied.extend(letters.written)
    return files


def write_report(settings: Settings, dq: dict | None = None, out_dir: Path | None = None,
                 now: Callable[[], dt.datetime] | None = None,
                 nights: Sequence[dict] | None = None, last_good: dict | None = None) -> Path:
    """Write the report for the published warehouse into `out_dir` (default `report_dir`).

    `nights` (newest first) and `last_good` default to the night history in the data directory.
    Returns the path of `index.html`.
    """
    out_dir = Path(out_dir or settings.report_dir)
    data = read_report_data(settings.published_warehouse)
    if nights is None:
        nights, last_good = read_night_history(settings, out_dir)
    if dq is None:
        dq = failed_night_dq(nights, out_dir)
    dq = choose_dq(dq, data.recorded_dq)
    built_at = (now or (lambda: dt.datetime.now(dt.UTC)))()
    written: list[Path] = []
    files = render_site(data, dq, built_at, out_dir, nights, last_good,
                        previous_state(settings, out_dir), settings.archive_dir, written)
    index = files.pop(REPORT_FILE)
    for rel, text in files.items():
        write_atomically(out_dir / rel, text, durable=False)
        written.append(out_dir / rel)
    # every page and letter copy on disk at once (one syncfs, not two fsyncs a file: 1,000
    # letters took 6.5 s of fsyncs), then the index that links to them
    make_durable(out_dir, written)
    folder = out_dir / pages.AUTHORITY_DIR
    for stale in set(folder.glob("*.html")) - {out_dir / rel for rel in files}:
        with contextlib.suppress(UnsafeFile):  # an authority no longer in the warehouse (a quarantined
            remove_file(stale)                # letter); anything but a file there is not ours: left
    write_atomically(out_dir / REPORT_FILE, index)
    return out_dir / REPORT_FILE


def cli_report(settings: Settings, out_dir: Path | None = None) -> int:
    """`ofsted report [--out DIR]`: write the report and print where it is."""

    def action() -> int:
        print(f"wrote {write_report(settings, None, out_dir)}")
        return 0

    return with_one_line_errors("report", action)


__all__ = ["REPORT_FILE", "dq_status", "esc", "write_report", "cli_report"]


def render_latest(settings: Settings) -> Path:
    """The report of `settings.published_warehouse` and the night history, without a night's own
    DQ result (what `publish_failed_night` re-renders beside the last good warehouse)."""
    return write_report(settings, None)
