"""The static HTML report: figures equal the warehouse's, self-contained, atomic, drawn in Chromium."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from _analysts_support import INSPECTIONS, UNMATCHED_NAME, make_marts_warehouse, real_warehouse
from _browser_support import chart_facts, open_page, screenshot

from ingest.cli import main
from ingest.report.render import REPORT_FILE, dq_status, nice_scale, write_report
from ingest.settings import Settings

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
    return Settings.from_env({}).with_overrides(published_warehouse=warehouse, report_dir=report_dir)


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


def test_without_a_result_the_latest_recorded_run_is_shown(warehouse, tmp_path):
    page = write_report(settings_for(warehouse, tmp_path / "a")).read_text()
    assert "Data quality: not recorded for this report" in page

    audited = tmp_path / "audited.duckdb"
    shutil.copy(warehouse, audited)
    con = duckdb.connect(str(audited))
    con.execute("""
        create schema audit;
        create table audit.dq_results (run_id varchar, validated_at timestamptz, suite varchar,
            table_name varchar, expectation_type varchar, column_name varchar, success boolean,
            observed_value varchar, details varchar);
        insert into audit.dq_results values
          ('old', '2026-11-22 02:00:00+00', 'fct_inspections', 'fct_inspections', 'expect_x', 'a',
           false, null, 'bad'),
          ('new', '2026-11-23 02:00:00+00', 'fct_inspections', 'fct_inspections', 'expect_x', 'a',
           true, null, null),
          ('new', '2026-11-23 02:01:00+00', 'fct_findings', 'fct_findings', 'expect_y', 'category',
           false, null, '2 unexpected values: [''other'']'),
          ('new', '2026-11-23 02:01:00+00', 'fct_findings', 'fct_findings', 'expect_z', null,
           true, null, null);
    """)
    con.close()
    page = write_report(settings_for(audited, tmp_path / "b")).read_text()
    assert "Data quality: 1 of 3 checks failed" in page
    assert "run new at 23 Nov 2026 02:01 UTC" in page
    failures, per_table = tables(page)["quality"]
    assert failures[1:] == [["fct_findings", "expect_y", "category", "2 unexpected values: ['other']"]]
    assert per_table[1:] == [["fct_findings", "2", "1"], ["fct_inspections", "1", "0"]]

    # the run hands over its marts result: the recorded run, saying the same and more, is shown
    given = {"success": False, "evaluated": 2, "failed": 1, "data_docs": "data_docs/index.html",
             "failures": [{"table": "fct_findings", "expectation": "expect_y", "column": "category",
                           "detail": "2 unexpected values"}]}
    page = write_report(settings_for(audited, tmp_path / "c"), given).read_text()
    assert "Data quality: 1 of 3 checks failed" in page and 'href="data_docs/index.html"' in page
    # a result that the recorded run does not bear out is shown as given: never hidden
    for other in ({**given, "failures": [{"table": "fct_inspections", "expectation": "expect_q"}]},
                  {"success": True, "evaluated": 2, "failed": 0, "failures": []}):
        page = write_report(settings_for(audited, tmp_path / "d"), other).read_text()
        assert dq_status(other)[1] in page and "run new" not in page


# --- the file ---------------------------------------------------------------------------------

def test_self_contained_no_script_no_network(report):
    assert "<script" not in report.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report, re.I)
    assert "@import" not in report and not re.search(r"url\((?!data:)", report)
    assert report.count("<svg") == 5


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
    inode, text = first.stat().st_ino, first.read_text()
    second = write_report(s, None, now=lambda: NOW)
    assert second.read_text() == text  # same warehouse, same time: same page
    assert second.stat().st_ino != inode  # replaced by a rename, never rewritten in place
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [REPORT_FILE]
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
    assert capsys.readouterr().err == (
        f"ofsted report: error: no published warehouse at {missing}; run `make run` first\n")
    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()
    assert main(["report", "--warehouse", str(bare), "--out", str(tmp_path / "out3")]) == 1
    assert capsys.readouterr().err.startswith(f"ofsted report: error: {bare} has no marts.fct_inspections")
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


@pytest.mark.parametrize(("value", "top", "step"), [
    (0, 1, 1), (1, 1, 1), (3, 3, 1), (7, 8, 2), (18, 20, 5), (99, 100, 20), (1234, 1250, 250),
])
def test_nice_scale(value, top, step):
    assert nice_scale(value) == (top, step)


# --- in a real browser ------------------------------------------------------------------------

def expected_chart_totals(warehouse: Path) -> dict[str, int]:
    [(inspections, findings, priority)] = q(warehouse, """
        select count(*), sum(strength_count + satisfactory_count + area_for_development_count
                             + priority_action_count),
               sum(priority_action_count) filter (where authority_key is not null)
        from marts.fct_inspections""")
    themed = q(warehouse, "select count(*) from marts.bridge_findings_themes")[0][0]
    return {"Inspections per year": inspections, "Findings per year, by category": findings,
            "Findings by category": findings, "Findings by theme": themed,
            "Priority actions by authority": priority}


def check_in_browser(path: Path, warehouse: Path, artefact: str) -> list[dict]:
    with open_page(path.as_uri()) as (page, problems):
        facts = chart_facts(page)
        assert page.title().startswith("Ofsted CRA letters")
        assert page.locator("table").count() >= 4  # per year, categories, themes, authorities
        shot = screenshot(page, artefact)
    assert problems.as_dict() == {"console_errors": [], "page_errors": [], "failed_requests": []}
    assert problems.requests == [path.as_uri()]  # the page itself and nothing else
    totals = {k: v for k, v in expected_chart_totals(warehouse).items() if v}
    assert [f["title"] for f in facts] == list(totals)  # every chart with data is drawn
    for f in facts:
        assert f["width"] > 200 and f["height"] > 60, f
        assert f["bars"] > 0 and f["drawn"] == f["bars"], f
        assert f["total"] == totals[f["title"]], f
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
    assert problems.as_dict() == {"console_errors": [], "page_errors": [], "failed_requests": []}


@pytest.mark.slow
@pytest.mark.browser
def test_report_of_a_real_build_renders_in_chromium(tmp_path_factory, tmp_path):
    settings = real_warehouse(tmp_path_factory)
    dq = {"success": True, "evaluated": 57, "failed": 0, "failures": []}
    path = write_report(settings, dq, out_dir=tmp_path / "report")
    check_in_browser(path, settings.published_warehouse, "report.png")
