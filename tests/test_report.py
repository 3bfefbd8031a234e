"""The static HTML report: figures equal the warehouse's, one page per authority, what is new,
the nights, an offline search; self-contained, atomic, printable, drawn in Chromium."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from _analysts_support import INSPECTIONS, UNMATCHED_NAME, make_marts_warehouse, real_warehouse
from _browser_support import chart_facts, open_page, screenshot

from ingest.cli import main
from ingest.report.charts import nice_scale
from ingest.report.render import REPORT_FILE, dq_status, write_report
from ingest.settings import Settings
from ingest.warehouse.publish import generate_dbt_docs

NOW = dt.datetime(2026, 11, 23, 6, 30, tzinfo=dt.UTC)


class Tables(HTMLParser):
    """Every <table> of a page as rows of cell text, keyed by the id of its <section>."""

    def __init__(self) -> None:
        super().__init__()
        self.by_section: dict[str, list[list[list[str]]]] = {}
        self.section: str | None = None
        self.table: list[list[str]] | None = None
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id")
        elif tag == "table":
            self.table = []
        elif tag == "tr" and self.table is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.table.append(self.row)
            self.row = None
        elif tag == "table" and self.table is not None:
            self.by_section.setdefault(self.section or "", []).append(self.table)
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables(page: str) -> dict[str, list[list[list[str]]]]:
    p = Tables()
    p.feed(page)
    return p.by_section


def settings_for(warehouse: Path, report_dir: Path) -> Settings:
    """The report of `warehouse` into `report_dir`; the night history (none) beside it."""
    return Settings.from_env({}).with_overrides(published_warehouse=warehouse, report_dir=report_dir,
                                                data_dir=report_dir.parent / f"{report_dir.name}-data")


def q(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return make_marts_warehouse(tmp_path_factory.mktemp("wh") / "ofsted.duckdb")


@pytest.fixture(scope="module", params=["synthetic", pytest.param("real", marks=pytest.mark.slow)])
def any_warehouse(request, warehouse, tmp_path_factory) -> Path:
    """The small hand-made marts, and (slow) the marts of a real build of letters."""
    if request.param == "synthetic":
        return warehouse
    return real_warehouse(tmp_path_factory).published_warehouse


@pytest.fixture
def any_report(any_warehouse, tmp_path) -> str:
    path = write_report(settings_for(any_warehouse, tmp_path / "report"), None, now=lambda: NOW)
    return path.read_text(encoding="utf-8")


@pytest.fixture
def report(warehouse, tmp_path) -> str:
    path = write_report(settings_for(warehouse, tmp_path / "report"), None, now=lambda: NOW)
    return path.read_text(encoding="utf-8")


def n(text: str) -> int:
    return int(text.replace(",", ""))


# --- figures ----------------------------------------------------------------------------------

def test_per_year_table_equals_the_warehouse(any_report, any_warehouse):
    [year_table] = tables(any_report)["years"]
    expected = q(any_warehouse, """
        select year(inspection_start_date), count(*), count(*) filter (where has_priority_action),
               sum(strength_count), sum(satisfactory_count), sum(area_for_development_count),
               sum(priority_action_count)
        from marts.fct_inspections group by 1 order by 1""")
    got = [(int(r[0]), *(n(c) for c in r[1:7])) for r in year_table[1:]]
    assert got == [tuple(int(v) for v in row) for row in expected]
    assert year_table[0][:3] == ["Year", "Inspections", "With priority action"]


def test_category_table_counts_the_findings(report):
    [cats] = tables(report)["categories"]
    assert [(r[0], n(r[1])) for r in cats[1:]] == [
        ("Strengths", 4), ("Satisfactory practice", 5), ("Areas for development", 5), ("Priority action", 4)]


def test_category_and_theme_tables_equal_the_warehouse(any_report, any_warehouse):
    labels = {"strength": "Strengths", "satisfactory": "Satisfactory practice",
              "area_for_development": "Areas for development", "priority_action": "Priority action"}
    [cats] = tables(any_report)["categories"]
    in_warehouse = dict(q(any_warehouse, "select category, count(*) from marts.fct_findings group by 1"))
    assert {r[0]: n(r[1]) for r in cats[1:]} == {labels[c]: in_warehouse.get(c, 0) for c in labels}
    [themes] = tables(any_report)["themes"]
    expected = dict(q(any_warehouse, "select theme_name, count(*) from marts.bridge_findings_themes "
                                     "join marts.dim_themes using (theme_key) group by 1"))
    assert {r[0]: n(r[1]) for r in themes[1:]} == expected
    counts = [n(r[1]) for r in themes[1:]]
    assert counts == sorted(counts, reverse=True)
    unthemed = q(any_warehouse, "select count(*) from marts.fct_findings where finding_key not in "
                                "(select finding_key from marts.bridge_findings_themes)")[0][0]
    assert re.search(rf"{unthemed:,} findings? matched no theme", any_report)


def test_authority_table_equals_the_warehouse(any_report, any_warehouse):
    expected = q(any_warehouse, """
        select a.authority_name, count(*), count(*) filter (where i.has_priority_action),
               sum(i.priority_action_count)
        from marts.fct_inspections i join marts.dim_authorities a using (authority_key)
        group by 1 having sum(i.priority_action_count) > 0
        order by 4 desc, 3 desc, 1""")
    found = tables(any_report).get("authorities", [])
    if not expected:
        assert not found
        assert "No inspection in the warehouse found anything needing priority action." in any_report
        return
    got = [(r[0], n(r[2]), n(r[3]), n(r[4])) for r in found[0][1:]]
    assert got == [tuple(int(v) if not isinstance(v, str) else v for v in row) for row in expected]


def test_authorities_with_priority_actions(report):
    [authorities, unmatched] = tables(report)["authorities"]
    assert [(r[0], n(r[2]), n(r[3]), n(r[4])) for r in authorities[1:]] == [
        ("Dudley", 2, 1, 2),  # two priority actions in one of its two inspections
        ("Dorset", 2, 1, 1),
    ]
    assert unmatched[1][:2] == [UNMATCHED_NAME, "1"]
    # the priority actions themselves, as written, newest inspection first
    quoted = re.findall(r"<li><span class=\"meta\">(.*?)</span>(.*?)</li>", report)
    assert [m[0].split(" · ")[0] for m in quoted] == [UNMATCHED_NAME, "Dorset", "Dudley", "Dudley"]
    assert quoted[0][1].startswith("Priority action finding 1 of inspection")


def test_summary_cards(report):
    cards = dict(re.findall(r'<div class="k">(.*?)</div><div class="v">(.*?)</div>', report))
    total_findings = sum(len(i[4]) for i in INSPECTIONS)
    assert cards == {
        "Inspections": str(len(INSPECTIONS)),
        "Authorities inspected": "3",
        "Findings": str(total_findings),
        "Priority actions": str(sum(1 for i in INSPECTIONS for f in i[4] if f[0] == "priority_action")),
        "Latest letter": "18 Oct 2011",
    }
    assert "Warehouse report built 23 Nov 2026 06:30 UTC" in report


# --- data quality -----------------------------------------------------------------------------

def test_data_quality_result_shown(warehouse, tmp_path):
    out = tmp_path / "r"
    (out / "data_docs").mkdir(parents=True)
    (out / "data_docs" / "index.html").write_text("<html></html>")
    failing = {"success": False, "evaluated": 42, "failed": 1,
               "failures": [{"table": "fct_inspections", "expectation": "expect_column_values_to_not_be_null",
                             "column": "authority_key", "detail": "1 unexpected null (Borsetshire)"}],
               "data_docs": str(out / "data_docs" / "index.html")}
    page = write_report(settings_for(warehouse, out), failing).read_text()
    assert "Data quality: 1 of 42 checks failed" in page
    [failures] = tables(page)["quality"]
    assert failures[1] == ["fct_inspections", "expect_column_values_to_not_be_null", "authority_key",
                           "1 unexpected null (Borsetshire)"]
    assert '<a href="data_docs/index.html">Open the data docs</a>' in page

    passing = {"success": True, "evaluated": 42, "failed": 0, "failures": []}
    page = write_report(settings_for(warehouse, out), passing).read_text()
    assert "Data quality: all 42 checks passed" in page and "quality" not in tables(page)


AUDIT_COLUMNS = ("run_id, checked_at, stage, suite, check_name, table_name, column_name, severity, status, "
                 "failing_count, failing_sample, failing_rows, details")


def audited_copy(warehouse: Path, path: Path, rows: str) -> Path:
    """A copy of `warehouse` whose verdict table (audit.dq_checks, from the raw schema) holds `rows`."""
    from ingest.raw.db import SCHEMA_SQL

    shutil.copy(warehouse, path)
    con = duckdb.connect(str(path))
    con.execute(SCHEMA_SQL.read_text())
    con.execute(f"insert into audit.dq_checks ({AUDIT_COLUMNS}) values {rows}")
    con.close()
    return path


def test_without_a_result_the_latest_recorded_run_is_shown(warehouse, tmp_path):
    page = write_report(settings_for(warehouse, tmp_path / "a")).read_text()
    assert "Data quality: not recorded for this report" in page

    audited = audited_copy(warehouse, tmp_path / "audited.duckdb", """
          ('old', '2026-11-22 02:00:00+00', 'marts', 'fct_inspections', 'fct_inspections.expect_x(a)',
           'fct_inspections', 'a', 'error', 'fail', 1, null, null, 'bad'),
          ('new', '2026-11-23 02:00:00+00', 'marts', 'fct_inspections', 'fct_inspections.expect_x(a)',
           'fct_inspections', 'a', 'error', 'pass', null, null, null, null),
          ('new', '2026-11-23 02:01:00+00', 'marts', 'fct_findings', 'fct_findings.expect_y(category)',
           'fct_findings', 'category', 'error', 'fail', 2, null, null, '2 unexpected values: [''other'']'),
          ('new', '2026-11-23 02:01:00+00', 'marts', 'fct_findings', 'fct_findings.expect_z()',
           'fct_findings', null, 'error', 'pass', null, null, null, null)""")
    page = write_report(settings_for(audited, tmp_path / "b")).read_text()
    assert "Data quality: 1 of 3 checks failed" in page
    assert "run new at 23 Nov 2026 02:01 UTC" in page
    failures, per_table = tables(page)["quality"]
    assert failures[1:] == [["fct_findings", "fct_findings.expect_y(category)", "category",
                             "2 unexpected values: ['other']"]]
    assert per_table[1:] == [["fct_findings", "2", "0", "1"], ["fct_inspections", "1", "0", "0"]]

    # the run hands over its verdict: the recorded run, saying the same and more, is shown
    given = {"success": False, "evaluated": 2, "failed": 1, "data_docs": "data_docs/index.html",
             "failures": [{"table": "fct_findings", "expectation": "fct_findings.expect_y(category)",
                           "column": "category", "detail": "2 unexpected values"}]}
    page = write_report(settings_for(audited, tmp_path / "c"), given).read_text()
    assert "Data quality: 1 of 3 checks failed" in page and 'href="data_docs/index.html"' in page
    # a result that the recorded run does not bear out is shown as given: never hidden
    for other in ({**given, "failures": [{"table": "fct_inspections", "expectation": "expect_q"}]},
                  {"success": True, "evaluated": 2, "failed": 0, "failures": []}):
        page = write_report(settings_for(audited, tmp_path / "d"), other).read_text()
        assert dq_status(other)[1] in page and "run new" not in page


def test_warnings_are_named_with_their_count_on_every_page_and_linked_to_their_rows(warehouse, tmp_path):
    """A night whose only findings are warnings passed: the badge says how many checks passed and
    names each warning with its count, linking to a table of its failing rows."""
    sample = '[{"inspection_key": "k1", "later_inspection_key": "k2", "days_apart": "40"}]'
    audited = audited_copy(warehouse, tmp_path / "warned.duckdb", f"""
          ('night', '2026-11-23 02:00:00+00', 'raw', 'raw_letters',
           'raw_letters.expect_column_values_to_not_be_null(letter_date)', 'raw.letters', 'letter_date',
           'warn', 'warn', 1, '[{{"_sha256": "abc", "letter_date": "null"}}]', '/x/data_docs/index.html',
           'the parser found the letter''s date'),
          ('night', '2026-11-23 02:01:00+00', 'dbt', 'dbt', 'dq_authority_inspected_again_within_min_days',
           'fct_inspections', null, 'warn', 'warn', 109, '{sample}',
           'dbt_test__audit.dq_authority_inspected_again_within_min_days', 'inspected again within 90 days'),
          ('night', '2026-11-23 02:01:00+00', 'dbt', 'dbt', 'not_null_fct_inspections_inspection_key',
           'fct_inspections', 'inspection_key', 'error', 'pass', 0, null, null, null),
          ('night', '2026-11-23 02:02:00+00', 'marts', 'fct_findings', 'fct_findings.expect_z()',
           'fct_findings', null, 'error', 'pass', null, null, null, null)""")
    out = tmp_path / "r"
    page = write_report(settings_for(audited, out)).read_text()
    badge = ("Data quality: 2 checks passed, 2 warnings (raw_letters.expect_column_values_to_not_be_null"
             "(letter_date): 1, dq_authority_inspected_again_within_min_days: 109)")
    assert f'<a class="badge warn" href="index.html#dq-warnings">{badge}</a>' in page  # the header's
    assert 'id="dq-warnings"' in page and 'id="dq-dq_authority_inspected_again_within_min_days"' in page
    quality = tables(page)["quality"]
    assert quality[1][:2] == [["inspection_key", "later_inspection_key", "days_apart"], ["k1", "k2", "40"]]
    assert ('ofsted sql "select * from dbt_test__audit.dq_authority_inspected_again_within_min_days"'
            in html.unescape(page))
    authority_page = next((out / "authorities").glob("*.html")).read_text()
    assert f'href="../index.html#dq-warnings">{badge}</a>' in authority_page


# --- the file ---------------------------------------------------------------------------------

REF = re.compile(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", re.I)


def test_self_contained_no_network(warehouse, tmp_path):
    """Every page refers only to files written beside it (or to anchors): nothing from the network."""
    out = tmp_path / "report"
    write_report(settings_for(warehouse, out), None, now=lambda: NOW)
    pages = sorted(out.rglob("*.html"))
    assert len(pages) == 1 + 4  # the overview and one page per authority inspected (one unmatched)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "@import" not in text and not re.search(r"url\((?!data:)", text)
        for ref in REF.findall(text):
            if ref.startswith(("#", "data:")):
                continue
            assert not re.match(r"^[a-z]+:|^//", ref, re.I), (page.name, ref)
            target = (page.parent / ref.split("#")[0]).resolve()
            assert target.is_file() and out.resolve() in target.parents, (page.name, ref)
    index = (out / REPORT_FILE).read_text()
    # years 2, financial years 2, regions, categories, themes, authorities: each drawn for wide
    # screens and again, narrower, for phones; no footer names a server path
    assert index.count('<div class="chart-wide"><svg') == index.count('<div class="chart-narrow"><svg') == 8
    assert index.count("<svg") == 16
    for page in pages:
        assert str(warehouse.parent) not in page.read_text(encoding="utf-8"), page.name


def test_text_from_the_warehouse_is_escaped(warehouse, tmp_path):
    evil = tmp_path / "evil.duckdb"
    shutil.copy(warehouse, evil)
    con = duckdb.connect(str(evil))
    con.execute("update marts.dim_authorities set authority_name = 'Dudley <script>alert(1)</script> & Co' "
                "where authority_name = 'Dudley'")
    con.close()
    page = write_report(settings_for(evil, tmp_path / "r")).read_text()
    assert "<script>" not in page
    assert "Dudley &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page


def test_written_atomically_and_rewritten_identically(warehouse, tmp_path):
    s = settings_for(warehouse, tmp_path / "report")
    first = write_report(s, None, now=lambda: NOW)
    assert first == tmp_path / "report" / REPORT_FILE
    assert "This is the first report written here" in first.read_text()
    second = write_report(s, None, now=lambda: NOW)
    inode, text = second.stat().st_ino, second.read_text()
    assert "0 new inspections" in text  # compared with the first
    third = write_report(s, None, now=lambda: NOW)
    assert third.read_text() == text  # same warehouse, same time, same previous report: same page
    assert third.stat().st_ino != inode  # replaced by a rename, never rewritten in place
    assert not [p for p in (tmp_path / "report").rglob("*") if p.name.endswith(".tmp")]
    assert {p.name for p in (tmp_path / "report").iterdir()} == {
        REPORT_FILE, "authorities", "report.css", "report.js", "search-index.js", "report-state.json"}
    explicit = write_report(s, None, out_dir=tmp_path / "elsewhere", now=lambda: NOW)
    assert explicit == tmp_path / "elsewhere" / REPORT_FILE and explicit.read_text() == text


def test_links_to_the_docs_published_beside_it(warehouse, tmp_path):
    out = tmp_path / "r"
    (out / "dbt_docs").mkdir(parents=True)
    (out / "dbt_docs" / "index.html").write_text("<html></html>")
    page = write_report(settings_for(warehouse, out)).read_text()
    assert '<a href="dbt_docs/index.html">dbt docs</a>' in page


def test_empty_marts_render_without_charts(tmp_path):
    empty = make_marts_warehouse(tmp_path / "empty.duckdb")
    con = duckdb.connect(str(empty))
    for t in ("bridge_findings_themes", "fct_findings", "fct_inspections"):
        con.execute(f"delete from marts.{t}")
    con.close()
    page = write_report(settings_for(empty, tmp_path / "r")).read_text()
    assert "<svg" not in page
    assert "No data for “Inspections per year” yet." in page
    assert '<div class="k">Inspections</div><div class="v">0</div>' in page


def test_cli_report(capsys, warehouse, tmp_path):
    rc = main(["report", "--warehouse", str(warehouse), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert out == f"wrote {tmp_path / 'out' / REPORT_FILE}\n"
    missing = tmp_path / "missing.duckdb"
    rc = main(["report", "--warehouse", str(missing), "--out", str(tmp_path / "out2")])
    assert rc == 1
    assert capsys.readouterr().err.splitlines()[-1] + "\n" == (
        f"ofsted report: error: no published warehouse at {missing}; run `make run` first\n")
    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()
    assert main(["report", "--warehouse", str(bare), "--out", str(tmp_path / "out3")]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        f"ofsted report: error: {bare} has no marts.fct_inspections")
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


# --- financial years, regions -----------------------------------------------------------------

def test_financial_year_table_equals_the_warehouse(any_report, any_warehouse):
    [fy] = tables(any_report)["financial-years"]
    expected = q(any_warehouse, """
        select d.financial_year, count(*), count(distinct i.authority_key),
               count(*) filter (where i.has_priority_action), sum(i.priority_action_count)
        from marts.fct_inspections i left join marts.dim_dates d on d.date_day = i.inspection_start_date
        group by 1 order by 1""")
    assert [(r[0], n(r[1]), n(r[2]), n(r[3]), n(r[8])) for r in fy[1:]] == [
        tuple(int(v) if not isinstance(v, str) else v for v in row) for row in expected]
    assert fy[0][0] == "Financial year"


def test_financial_years_and_regions_of_the_small_warehouse(report):
    [fy] = tables(report)["financial-years"]
    # 3 Nov 2009 -> 2009-10; May and Sep 2010, Feb 2011 -> 2010-11; Jun and Sep 2011 -> 2011-12
    assert [(r[0], r[1], r[4], r[9]) for r in fy[1:]] == [
        ("2009-10", "1", "0%", "0.00"), ("2010-11", "3", "67%", "1.00"), ("2011-12", "2", "50%", "0.50")]
    [regions] = tables(report)["regions"]
    assert [r[:5] for r in regions[1:]] == [
        ["London", "1", "1", "0", "0%"], ["South West", "1", "2", "1", "50%"],
        ["West Midlands", "1", "2", "1", "50%"], ["Authority not matched", "0", "1", "1", "100%"]]


# --- a page per authority ---------------------------------------------------------------------

def authority_page(out: Path, name: str) -> str:
    [page] = [p for p in (out / "authorities").glob("*.html") if f"<h1>{name}</h1>" in p.read_text()]
    return page.read_text()


def test_a_page_per_authority_with_every_finding(warehouse, tmp_path):
    out = tmp_path / "report"
    index = write_report(settings_for(warehouse, out), None, now=lambda: NOW).read_text()
    [directory] = tables(index)["directory"]
    assert [(r[0], r[2], r[5]) for r in directory[1:]] == [
        ("Dorset", "2", "8 Feb 2011"), ("Dudley", "2", "14 Jun 2011"),
        ("Kingston upon Thames", "1", "7 Sep 2010"), (UNMATCHED_NAME, "1", "20 Sep 2011")]
    assert directory[1][6] == "Dorset"  # today's authority, from dim_authorities.current_authority_names
    dudley = authority_page(out, "Dudley")
    findings = re.findall(r'<li id="inspection-[^"]*">(.*?)(?: <span class="themes">(.*?)</span>)?</li>',
                          dudley)
    expected = q(warehouse, """
        select f.finding_text from marts.fct_findings f join marts.dim_authorities a using (authority_key)
        where a.authority_name = 'Dudley' order by f.finding_text""")
    assert sorted(html.unescape(f[0]) for f in findings) == [r[0] for r in expected]
    themed = {html.unescape(f[0]): re.findall(r'<span class="theme">(.*?)</span>', f[1]) for f in findings}
    assert themed["Priority action finding 2 of inspection insp002."] == [
        "Management oversight", "Timeliness of assessments"]
    # inspections over time, linked to each other
    [over_time] = tables(dudley)["inspections"]
    assert [r[0] for r in over_time[1:]] == ["18 May 2010", "14 Jun 2011"]
    assert '<a class="next" href="#inspection-insp002">' not in dudley
    assert '<a class="next" href="#inspection-insp005">Next inspection: 14 Jun 2011 →</a>' in dudley
    assert '<a class="previous" href="#inspection-insp002">← Previous inspection: 18 May 2010</a>' in dudley
    assert 'id="inspection-insp002"' in dudley and 'id="inspection-insp005"' in dudley


def test_authority_pages_link_the_source_letters(warehouse, tmp_path):
    archive = tmp_path / "archive"
    sha = f"{2:064x}"  # Dudley 2010's letter
    (archive / sha[:2]).mkdir(parents=True)
    (archive / sha[:2] / f"{sha}.pdf").write_bytes(b"%PDF-1.4 the letter")
    web = tmp_path / "web.duckdb"
    shutil.copy(warehouse, web)
    con = duckdb.connect(str(web))
    con.execute("alter table marts.fct_inspections add column _source_uri varchar")
    con.execute("update marts.fct_inspections set _source_uri = 'https://www.ofsted.gov.uk/letters/' "
                "|| inspection_key || '.pdf'")
    con.close()
    out = tmp_path / "report"
    settings = settings_for(web, out).with_overrides(archive_dir=archive)
    write_report(settings, None, now=lambda: NOW)
    dudley = authority_page(out, "Dudley")
    assert f'<a class="letter" href="../letters/{sha}.pdf">Letter (PDF, archived copy)</a>' in dudley
    assert ('<a class="letter" href="https://www.ofsted.gov.uk/letters/insp002.pdf">Letter as published</a>'
            in dudley)
    assert (out / "letters" / f"{sha}.pdf").read_bytes() == b"%PDF-1.4 the letter"
    assert [p.name for p in (out / "letters").iterdir()] == [f"{sha}.pdf"]  # letters not archived: no copy


def test_corrections_and_successor_weights_when_the_warehouse_has_them(warehouse, tmp_path):
    newer = tmp_path / "newer.duckdb"
    shutil.copy(warehouse, newer)
    con = duckdb.connect(str(newer))
    con.execute("""
        alter table marts.fct_inspections add column letter_version integer default 1;
        alter table marts.fct_inspections add column is_corrected boolean default false;
        alter table marts.fct_inspections add column first_published_date date;
        update marts.fct_inspections set letter_version = 2, is_corrected = true,
            first_published_date = date '2009-11-25' where inspection_key = 'insp001';
        create table marts.bridge_authority_successions as
        select * from (values
            ('E10000009', 'E06000059', 'Dorset Council', 0.874, 'published', 'merge', date '2019-04-01'),
            ('E10000009', 'E06000058', 'Bournemouth, Christchurch and Poole', 0.126, 'published',
             'partial_transfer', date '2019-04-01'))
            t(gss_code, successor_gss_code, successor_authority_name, weight, weight_quality,
              change_type, change_date);
    """)
    con.close()
    out = tmp_path / "report"
    write_report(settings_for(newer, out), None, now=lambda: NOW)
    dorset = authority_page(out, "Dorset")
    assert "Letter 1 Dec 2009 · version 2, corrected; first published 25 Nov 2009" in dorset
    listed = dorset.split('class="successors"')[1].split("</ul>")[0]
    successors = [html.unescape(re.sub(r"<[^>]+>", "", li)).strip()
                  for li in re.findall(r"<li>(.*?)</li>", listed, re.S)]
    assert successors == [
        "Dorset Council (E06000059): 87.4% of it (published weight), merge on 1 Apr 2019",
        "Bournemouth, Christchurch and Poole (E06000058): 12.6% of it (published weight), "
        "partial transfer on 1 Apr 2019"]
    # the overview's directory lists them one a line with their shares, never joined with commas
    index = (out / REPORT_FILE).read_text()
    row = next(r for r in index.split('id="directory"')[1].split("<tr>") if ">Dorset</a>" in r)
    assert re.findall(r'<ul class="cell-list">(.*?)</ul>', row) == [
        "<li>Dorset Council (87.4%)</li><li>Bournemouth, Christchurch and Poole (12.6%)</li>"]


# --- what is new, and the nights ----------------------------------------------------------------

def test_new_since_the_last_report(warehouse, tmp_path):
    out = tmp_path / "report"
    changed = tmp_path / "changed.duckdb"
    shutil.copy(warehouse, changed)
    write_report(settings_for(changed, out), None, now=lambda: NOW)
    con = duckdb.connect(str(changed))
    con.execute("""
        insert into marts.fct_inspections
        select 'insp007', 4, 1, 'Kingston upon Thames', true, date '2012-03-01', date '2012-02-01',
               date '2012-02-02', 28, 1, 0, 0, 1, 2, true, 'insp003', repeat('7', 64);
        update marts.fct_inspections set _sha256 = repeat('a', 64) where inspection_key = 'insp001';
        delete from marts.fct_inspections where inspection_key = 'insp006';
    """)
    con.close()
    page = write_report(settings_for(changed, out), None, now=lambda: NOW).read_text()
    assert "3 new" not in page
    assert "Compared with the report of 23 Nov 2026 06:30 UTC:" in page
    assert re.search(r"1 new inspection,\s+1 corrected \(a new letter for an inspection already here\),"
                     r"\s+1 no longer in the warehouse", page)
    [new] = tables(page)["new"]
    assert [r[:4] for r in new[1:]] == [
        ["Kingston upon Thames", "new inspection", "1 Feb 2012", "1 Mar 2012"],
        ["Dorset", "new letter (correction)", "3 Nov 2009", "1 Dec 2009"]]
    assert 'href="authorities/kingston-upon-thames-e09000021.html#inspection-insp007"' in page
    assert not list((out / "authorities").glob("unmatched-*"))  # the unmatched letter's page went with it


def test_new_is_measured_against_the_published_report_in_a_night(warehouse, tmp_path):
    """The night writes into its staging folder, then publishes: the comparison is with the live report."""
    from ingest.warehouse.publish import publish_report, staging_settings

    changed = tmp_path / "changed.duckdb"
    shutil.copy(warehouse, changed)
    live = settings_for(changed, tmp_path / "report")
    write_report(staging_settings(live, "night1"), None, now=lambda: NOW)
    publish_report(live, "night1")
    con = duckdb.connect(str(changed))
    con.execute("update marts.fct_inspections set _sha256 = repeat('b', 64) where inspection_key = 'insp002'")
    con.close()
    page = write_report(staging_settings(live, "night2"), None, now=lambda: NOW).read_text()
    [new] = tables(page)["new"]
    assert [r[:2] for r in new[1:]] == [["Dudley", "new letter (correction)"]]
    publish_report(live, "night2")
    assert "1 corrected" in (live.report_dir / REPORT_FILE).read_text()


def test_the_night_writing_the_report_is_not_shown_as_running(warehouse, tmp_path):
    """The night's report task runs before the night is finished; a re-run after a failed night
    publishes: neither shows a "running" or "failed" banner on the report it publishes."""
    from ingest import nights
    from ingest.warehouse.publish import staging_settings

    live = settings_for(warehouse, tmp_path / "report")
    nights.start_night(live, "scheduled__1", "scheduled")
    nights.finish_night(live, "scheduled__1", "failed", failed_task="validate_marts", reason="1 expectation")
    nights.start_night(live, "rerun__2", "rerun")
    page = write_report(staging_settings(live, "rerun__2"), None, now=lambda: NOW).read_text()
    assert 'class="banner' not in page
    [history] = tables(page)["history"]
    assert [r[1] for r in history[1:]] == ["publishing", "failed"]
    # by hand (`ofsted report`) while that night runs: it is running
    page = write_report(live, None, now=lambda: NOW).read_text()
    assert "A night is running" in page


NIGHTS = [
    {"run_id": "scheduled__2026-11-23", "started_at": dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC),
     "finished_at": dt.datetime(2026, 11, 23, 2, 9, tzinfo=dt.UTC), "state": "failed",
     "failed_task": "validate_marts", "reason": "1 expectation", "counts": {},
     "dq": {"raw": {"evaluated": 30, "failed": 0, "success": True},
            "marts": {"evaluated": 27, "failed": 1, "success": False}},
     "published": False, "warehouse_run_id": "scheduled__2026-11-21"},
    {"run_id": "scheduled__2026-11-22", "started_at": "2026-11-22T02:00:00+00:00",
     "finished_at": "2026-11-22T02:03:00+00:00", "state": "failed", "failed_task": "dbt",
     "reason": "dbt build failed", "counts": {},
     "dq": {"raw": {"evaluated": 30, "failed": 0, "success": True}},
     "published": False, "warehouse_run_id": "scheduled__2026-11-21"},
    {"run_id": "scheduled__2026-11-21", "started_at": "2026-11-21T02:00:00+00:00",
     "finished_at": "2026-11-21T02:08:00+00:00", "state": "success", "failed_task": None, "reason": None,
     "counts": {}, "dq": {"raw": {"evaluated": 30, "failed": 0, "success": True},
                          "marts": {"evaluated": 27, "failed": 0, "success": True}},
     "published": True, "warehouse_run_id": "scheduled__2026-11-21"},
]


def test_a_failed_night_shows_on_the_report(warehouse, tmp_path):
    failing = {"success": False, "evaluated": 27, "failed": 1,
               "failures": [{"table": "fct_inspections", "expectation": "expect_x", "column": "a",
                             "detail": "d"}]}
    page = write_report(settings_for(warehouse, tmp_path / "r"), failing, now=lambda: NOW,
                        nights=NIGHTS, last_good=NIGHTS[2]).read_text()
    [banner] = re.findall(r'<p class="banner fail" role="alert">(.*?)</p>', page)
    assert html.unescape(banner) == (
        "Last night (23 Nov 2026 02:00 UTC) failed at validate_marts: 1 expectation; "
        "the warehouse below is from the night of 21 Nov 2026 02:00 UTC.")
    assert "Data quality: 1 of 27 checks failed" in page
    [history] = tables(page)["history"]
    assert history[1:] == [
        ["23 Nov 2026 02:00 UTC", "failed", "validate_marts", "1 expectation", "30 passed",
         "27 checks, 1 failed", "no", "scheduled__2026-11-23"],
        ["22 Nov 2026 02:00 UTC", "failed", "dbt", "dbt build failed", "30 passed", "–", "no",
         "scheduled__2026-11-22"],
        ["21 Nov 2026 02:00 UTC", "success", "–", "", "30 passed", "27 passed", "yes",
         "scheduled__2026-11-21"]]
    # a good night last: no banner, the history still there
    page = write_report(settings_for(warehouse, tmp_path / "r"), None, now=lambda: NOW,
                        nights=NIGHTS[2:], last_good=NIGHTS[2]).read_text()
    assert 'class="banner' not in page and len(tables(page)["history"][0]) == 2
    running = [{**NIGHTS[0], "state": "running", "failed_task": None, "reason": None}]
    page = write_report(settings_for(warehouse, tmp_path / "r"), None, now=lambda: NOW,
                        nights=running, last_good=None).read_text()
    assert ("A night is running (started 23 Nov 2026 02:00 UTC); no night has succeeded yet; "
            "the warehouse below is the last one published.") in html.unescape(page)


def test_the_night_history_of_the_data_directory_shows(warehouse, tmp_path):
    """Nights recorded by the night itself (ingest.nights): a good night, then one failing on marts DQ."""
    from ingest import nights

    out = tmp_path / "report"
    s = settings_for(warehouse, out)
    nights.start_night(s, "manual__1", "manual")
    nights.finish_night(s, "manual__1", "success", published=True,
                        dq={"raw": {"success": True, "evaluated": 30, "failed": 0}})
    nights.start_night(s, "manual__2", "manual")
    failed = {"success": False, "evaluated": 27, "failed": 1,
              "failures": [{"table": "fct_inspections", "expectation": "expect_column_values_to_be_between",
                            "detail": "3 letters more than 120 days after the inspection"}]}
    nights.finish_night(s, "manual__2", "failed", failed_task="validate_marts", reason="1 expectation",
                        dq={"raw": {"success": True, "evaluated": 30, "failed": 0}, "marts": failed})
    (out / "failed_night" / "data_docs").mkdir(parents=True)
    (out / "failed_night" / "data_docs" / "index.html").write_text("<html></html>")
    page = write_report(s, None, now=lambda: NOW).read_text()
    [banner] = re.findall(r'<p class="banner fail" role="alert">(.*?)</p>', page)
    assert re.fullmatch(r"Last night \(.* UTC\) failed at validate_marts: 1 expectation; "
                        r"the warehouse below is from the night of .* UTC\.", html.unescape(banner))
    assert "Data quality: 1 of 27 checks failed" in page
    [failures] = tables(page)["quality"]
    assert failures[1] == ["marts", "–", "–", "3 letters more than 120 days after the inspection"]
    assert '<a href="failed_night/data_docs/index.html">Open the data docs</a>' in page
    [history] = tables(page)["history"]
    assert [(r[1], r[2], r[4], r[5], r[6], r[7]) for r in history[1:]] == [
        ("failed", "validate_marts", "30 passed", "27 checks, 1 failed", "no", "manual__2"),
        ("success", "–", "30 passed", "–", "yes", "manual__1")]


# --- the search index: tests/test_search_parity.py (the box against ofsted search and SQL) -------

def test_search_index_says_when_the_warehouse_has_none(warehouse, tmp_path):
    out = tmp_path / "report"
    write_report(settings_for(warehouse, out), None, now=lambda: NOW)
    text = (out / "search-index.js").read_text()
    assert text.startswith("window.OFSTED_SEARCH = ")
    index = json.loads(text[len("window.OFSTED_SEARCH = "):].rstrip().rstrip(";"))
    assert index == {"missing": "this warehouse has no marts.findings_wide (built before the search index): "
                                "run the night again"}


@pytest.mark.parametrize(("value", "top", "step"), [
    (0, 1, 1), (1, 1, 1), (3, 3, 1), (7, 8, 2), (18, 20, 5), (99, 100, 20), (1234, 1250, 250),
])
def test_nice_scale(value, top, step):
    assert nice_scale(value) == (top, step)


# --- in a real browser ------------------------------------------------------------------------

def expected_chart_totals(warehouse: Path) -> dict[str, int]:
    """The total of every chart's bars, in the order the overview draws them."""
    [(inspections, findings, priority, priority_matched)] = q(warehouse, """
        select count(*), sum(strength_count + satisfactory_count + area_for_development_count
                             + priority_action_count),
               sum(priority_action_count),
               sum(priority_action_count) filter (where authority_key is not null)
        from marts.fct_inspections""")
    themed = q(warehouse, "select count(*) from marts.bridge_findings_themes")[0][0]
    totals = {"Inspections per year": inspections, "Findings per year, by category": findings,
              "Priority actions per financial year": priority,
              "Findings per financial year, by category": findings,
              "Inspections by region": inspections}
    if q(warehouse, "select count(*) from information_schema.tables "
                    "where table_name = 'authority_comparisons'")[0][0]:
        # areas for development per inspection in each region and in England, worked out here
        [(by_regions, england)] = q(warehouse, """
            with per_region as (
                select a.region, sum(i.area_for_development_count) / count(*) as per_inspection
                from marts.fct_inspections as i join marts.dim_authorities as a using (authority_key)
                group by a.region)
            select (select sum(per_inspection) from per_region),
                   (select sum(area_for_development_count) / count(*) from marts.fct_inspections
                    where authority_key is not null)""")
        totals["Areas for development per inspection, by region"] = by_regions + england
    return {**totals, "Findings by category": findings, "Findings by theme": themed,
            "Priority actions by authority": priority_matched}


def assert_only_local_files(problems, out: Path) -> None:
    assert problems.as_dict() == {"console_errors": [], "page_errors": [], "failed_requests": []}
    for url in problems.requests:  # the pages, their stylesheet and scripts: nothing from the network
        assert url.startswith("file://") and out.resolve().as_uri() in url, url


def check_in_browser(path: Path, warehouse: Path, artefact: str) -> list[dict]:
    with open_page(path.as_uri()) as (page, problems):
        facts = chart_facts(page)
        assert page.title().startswith("Ofsted CRA letters")
        assert page.locator("table").count() >= 6
        shot = screenshot(page, artefact)
    assert_only_local_files(problems, path.parent)
    totals = {k: v for k, v in expected_chart_totals(warehouse).items() if v}
    assert [f["title"] for f in facts] == list(totals)  # every chart with data is drawn
    for f in facts:
        assert f["width"] > 200 and f["height"] > 60, f
        assert f["bars"] > 0 and f["drawn"] == f["bars"], f
        assert f["total"] == pytest.approx(totals[f["title"]]), f
    assert shot.stat().st_size > 10_000
    return facts


@pytest.mark.browser
def test_report_renders_in_chromium(warehouse, tmp_path):
    path = write_report(settings_for(warehouse, tmp_path / "report"), None, now=lambda: NOW)
    facts = check_in_browser(path, warehouse, "report-synthetic.png")
    by_title = {f["title"]: f for f in facts}
    assert by_title["Findings by category"]["bars"] == 4
    # on a phone-sized screen the page does not scroll sideways: charts shrink, wide tables scroll
    with open_page(path.as_uri(), width=400, height=800) as (page, problems):
        assert page.evaluate("document.documentElement.scrollWidth") == 400
        assert all(f["width"] <= 400 and f["drawn"] == f["bars"] > 0 for f in chart_facts(page))
    assert_only_local_files(problems, path.parent)


@pytest.mark.browser
def test_authority_page_in_chromium_links_inspections_and_letters(warehouse, tmp_path):
    archive = tmp_path / "archive"
    sha = f"{2:064x}"
    (archive / sha[:2]).mkdir(parents=True)
    (archive / sha[:2] / f"{sha}.html").write_text("<html><body><h1>Dudley letter</h1></body></html>")
    out = tmp_path / "report"
    write_report(settings_for(warehouse, out).with_overrides(archive_dir=archive), None, now=lambda: NOW)
    with open_page((out / REPORT_FILE).as_uri()) as (page, problems):
        page.click("#directory a:text-is('Dudley')")
        page.wait_for_load_state("load")
        assert page.locator("h1").inner_text() == "Dudley"
        assert page.locator("section.inspection").count() == 2
        assert page.locator("ol.findings li").count() == q(
            warehouse, "select count(*) from marts.fct_findings where authority_key = 3")[0][0]
        [chart] = chart_facts(page)
        assert chart["drawn"] == chart["bars"] > 0
        screenshot(page, "report-authority.png")
        page.click("#inspection-insp002 a.next")
        assert page.url.endswith("#inspection-insp005")
        assert page.locator("#inspection-insp005 h2").is_visible()
        page.click("#inspection-insp005 a.previous")
        assert page.url.endswith("#inspection-insp002")
        page.click("#inspection-insp002 a.letter")
        page.wait_for_load_state("load")  # a letter archived as .html is served as text: shown, inert
        assert "<h1>Dudley letter</h1>" in page.locator("body").inner_text()
    assert_only_local_files(problems, out)


PRINT_CHECK_JS = """
() => {
  const clipped = Array.from(document.querySelectorAll('body *')).filter(el => {
    const s = getComputedStyle(el);
    return ['auto', 'scroll', 'hidden'].includes(s.overflowY) && el.scrollHeight > el.clientHeight + 1;
  }).map(el => el.tagName + '.' + el.className);
  const rows = Array.from(document.querySelectorAll('tbody tr'));
  return {clipped, rows: rows.length,
          shown: rows.filter(r => r.getBoundingClientRect().height > 0).length};
}
"""


@pytest.mark.browser
def test_tables_print_in_full(warehouse, tmp_path):
    out = tmp_path / "report"
    path = write_report(settings_for(warehouse, out), None, now=lambda: NOW)
    pages = [path, *sorted((out / "authorities").glob("*.html"))[:1]]
    for p in pages:
        with open_page(p.as_uri()) as (page, problems):
            page.emulate_media(media="print")
            facts = page.evaluate(PRINT_CHECK_JS)
            assert facts["clipped"] == [], p.name
            assert facts["rows"] == facts["shown"] > 0
            assert not page.locator("nav").is_visible()
            if p == path:
                screenshot(page, "report-print.png")
                pdf = page.pdf()
                assert pdf.startswith(b"%PDF")
        assert_only_local_files(problems, out)


@pytest.mark.slow
@pytest.mark.browser
def test_report_of_a_real_build_renders_in_chromium(tmp_path_factory, tmp_path):
    settings = real_warehouse(tmp_path_factory)
    dq = {"success": True, "evaluated": 57, "failed": 0, "failures": []}
    docs = generate_dbt_docs(settings, tmp_path / "report" / "dbt_docs")
    path = write_report(settings, dq, out_dir=tmp_path / "report")
    check_in_browser(path, settings.published_warehouse, "report.png")
    # dbt docs open on the project's overview, not dbt's stock "Welcome!"
    assert '<a href="dbt_docs/index.html">dbt docs</a>' in path.read_text()
    assert "Where to start" in (docs / "index.html").read_text(encoding="utf-8")
    pages = sorted((tmp_path / "report" / "authorities").glob("*.html"))
    matched = q(settings.published_warehouse, """
        select count(distinct authority_key) + count(distinct authority_name_as_written)
            filter (where authority_key is null) from marts.fct_inspections""")[0][0]
    assert len(pages) == matched
    letters = list((tmp_path / "report" / "letters").iterdir())  # every version of every letter
    assert len(letters) == q(settings.published_warehouse,
                             "select count(*) from marts.fct_letter_versions")[0][0]
    # Dorset 2010 is covered today by Dorset Council and BCP, with population weights summing to 1
    [dorset] = [p for p in pages if "<h1>Dorset</h1>" in p.read_text()]
    listed = dorset.read_text().split('class="successors"')[1].split("</ul>")[0]
    shares = {html.unescape(name): float(pct) for name, pct in
              re.findall(r"<li>(.*?) \(E\d{8}\): ([\d.]+)% of it", listed)}
    assert set(shares) == {"Dorset", "Bournemouth, Christchurch and Poole"}, shares  # Dorset: E06000059
    assert abs(sum(shares.values()) - 100) < 0.2 and 0 < shares["Bournemouth, Christchurch and Poole"] < 50
    with open_page(pages[0].as_uri()) as (page, problems):
        href = page.locator("a.letter").first.get_attribute("href")
        assert (pages[0].parent / href).resolve().is_file()
        screenshot(page, "report-authority-real.png")
    assert_only_local_files(problems, tmp_path / "report")


# --- corrections, comparisons, and the report on a phone ------------------------------------------

PHONE_FACTS_JS = """
() => {
  const charts = Array.from(document.querySelectorAll('svg.chart')).filter(s => s.getClientRects().length);
  const smallest = charts.map(svg => {
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    const sizes = Array.from(svg.querySelectorAll('text')).map(t => parseFloat(getComputedStyle(t).fontSize));
    return Math.min(...sizes) * scale;
  });
  const wraps = Array.from(document.querySelectorAll('.table-wrap')).filter(w => w.getClientRects().length);
  return {
    page_width: document.documentElement.scrollWidth,
    smallest_chart_text: Math.min(...smallest),
    charts: charts.length,
    wide_tables: wraps.filter(w => w.scrollWidth > w.clientWidth + 1).length,
    marked: wraps.filter(w => w.scrollWidth > w.clientWidth + 1 && w.classList.contains('scrolls')
                              && getComputedStyle(w).overflowX === 'auto').length,
  };
}
"""


@pytest.mark.slow
@pytest.mark.browser
def test_corrections_and_comparisons_on_a_phone_and_a_desktop(tmp_path_factory):
    from _analysts_support import corrections_warehouse

    settings, pairs = corrections_warehouse(tmp_path_factory)
    out = tmp_path_factory.mktemp("corrections_report") / "report"
    path = write_report(settings, None, out_dir=out, now=lambda: NOW)
    w = settings.published_warehouse
    # each re-issued letter on its authority page: its versions, their copies, what changed
    [(original, correction)] = [p for p in pairs if p[1].expected["correction"]["change"] == "reworded"][:1]
    record = correction.expected["correction"]
    [page] = [p for p in (out / "authorities").glob("*.html")
              if correction.authority.la_name in p.read_text().split("</h1>")[0]]
    text = page.read_text()
    versions = text.split('<ol class="version-list">')[1].split("</ol>")[0]
    assert "<span class=\"change\">Reworded</span>" in versions
    assert f"<del>{html.escape(record['old_text'], quote=False)}</del>" in versions.replace("&#39;", "'")
    assert f"<ins>{html.escape(record['new_text'], quote=False)}</ins>" in versions.replace("&#39;", "'")
    hrefs = re.findall(r'<a class="letter" href="([^"]+)"', versions)
    assert len(hrefs) == 2 and len(set(hrefs)) == 2  # both versions' archived copies
    assert all((page.parent / h).resolve().is_file() for h in hrefs)
    # the authority beside its region and England, its bar highlighted
    [compare] = tables(text)["comparison"][:1]
    assert compare[0] == ["Measure", correction.authority.la_name, compare[0][2], "England"]
    assert text.count('fill="#c05621"') == 2  # one highlighted bar, in the wide and the phone chart
    # on a phone: nothing wider than the screen but the tables, which say they scroll; chart text
    # no smaller than 9 px; on a desktop the same pages; screenshots of both
    for width in (375, 1280):
        for url, name in ((path, "report"), (page, "report-authority")):
            with open_page(url.as_uri(), width=width, height=900) as (browser_page, problems):
                facts = browser_page.evaluate(PHONE_FACTS_JS)
                screenshot(browser_page, f"{name}-{width}.png")
            assert_only_local_files(problems, out)
            assert facts["page_width"] == width, (name, width, facts)
            assert facts["charts"] >= 2 and facts["smallest_chart_text"] >= 9, (name, width, facts)
            assert facts["marked"] == facts["wide_tables"], (name, width, facts)
            if width == 375:
                assert facts["wide_tables"] >= 1, (name, facts)
    assert q(w, "select count(*) from marts.fct_finding_changes") == [(
        sum(1 for _, c in pairs if c.expected["correction"]["change"] in ("reworded", "removed")),)]
