"""One search: `ofsted search`, the SQL table macro `marts.search_findings` and the report's
search box (in headless Chromium, from file://) find the same findings in the same order with
the same scores, or refuse the same queries, on the sample letters and on a warehouse with
generated letters. The counts are written to test-artifacts/search-parity.json."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from _analysts_support import build_real_warehouse, real_warehouse
from _browser_support import ARTIFACTS, open_page, screenshot

from ingest.cli import main
from ingest.report.render import write_report
from ingest.settings import Settings
from ingest.warehouse.search import MAX_LIMIT

QUERIES = [
    "supervision",  # one word
    "thresholds",  # a form no real letter uses ("threshold" is): an inflection in the vocabulary
    "Supervising",  # upper case, another form of "supervision"
    "REFERRALS",
    "supervision unallocated",  # two words (issue #16's example)
    "social workers",
    "child protection plans",
    "assessment, planning; review!",  # punctuation
    '"child protection"',  # quotes are not phrases: two words
    "children's services",  # an apostrophe
    "the of and",  # only stop words
    "the supervision",  # a stop word and a word
    "zeppelin",  # a word no finding has
    "zeppelin supervision",  # ... with one they have: nothing unless any word
    "<script>alert(1)</script>",  # hostile
    "constructor __proto__ toString hasOwnProperty",  # JavaScript's own names
    "'; drop table marts.fct_findings; --",
    "SUPERV\u0130S\u0130ON \u212aent caf\u00e9 \U0001f600",  # İ (DuckDB: i), Kelvin sign, é, emoji
    "   ",  # blank: refused
    "!!! ???",  # no words: refused
    " ".join(["word"] * 40),  # too many words: refused
    "a" * 1_001,  # too long: refused
]

FINDING_KEYS_SQL = "select finding_key, finding_text from marts.findings_wide order by finding_key"


def cli(capsys, warehouse: Path, query: str, any_word: bool) -> dict:
    capsys.readouterr()  # what ran before (the build's output)
    rc = main(["search", "--warehouse", str(warehouse), "--format", "json", "--limit", str(MAX_LIMIT),
               *(["--any"] if any_word else []), "--", query])
    out, err = capsys.readouterr()
    if rc != 0:
        [line] = [e for e in err.splitlines() if ": error: " in e]
        return {"error": line.split(": error: ", 1)[1]}
    return {"hits": [(h["finding_key"], round(h["score"] * 1_000_000)) for h in json.loads(out)]}


def sql(con: duckdb.DuckDBPyConnection, query: str, any_word: bool) -> list[tuple[str, int]]:
    rows = con.execute("select finding_key, score from marts.search_findings(?, max_results := 1000000, "
                       "any_word := ?)", [query, any_word]).fetchall()
    return [(k, round(s * 1_000_000)) for k, s in rows]


def browser(page, keys: list[str], query: str, any_word: bool) -> dict:
    r = page.evaluate("([q, a]) => window.ofstedSearch(q, a)", [query, any_word])
    if "error" in r:
        return {"error": r["error"]}
    return {"hits": [(keys[doc], score) for doc, score in r["hits"]], "unknown": r["unknown"]}


def check_parity(capsys, settings: Settings, out: Path, name: str) -> dict:
    warehouse = settings.published_warehouse
    path = write_report(settings.with_overrides(report_dir=out), None)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        findings = con.execute(FINDING_KEYS_SQL).fetchall()
        keys = [k for k, _ in findings]
        counts = {}
        with open_page(path.as_uri()) as (page, problems):
            # the index's findings are the warehouse's, in finding_key order, with their texts
            texts = page.evaluate("() => { const i = window.OFSTED_SEARCH; "
                                  "return i.docs.map(d => i.texts[d[3]]); }")
            assert texts == [t for _, t in findings]
            for query in QUERIES:
                for any_word in (False, True):
                    from_cli = cli(capsys, warehouse, query, any_word)
                    in_browser = browser(page, keys, query, any_word)
                    label = f"{query[:40]!r} {'any' if any_word else 'every'}"
                    if "error" in from_cli:  # refused by both, for the same reason
                        assert "error" in in_browser, label
                        assert in_browser["error"].split(":")[0] == from_cli["error"].split(":")[0], label
                        counts[label] = from_cli["error"].split(":")[0]
                        continue
                    in_sql = sql(con, query, any_word)
                    assert from_cli["hits"] == in_sql[:MAX_LIMIT], label
                    assert in_browser["hits"] == in_sql, label
                    counts[label] = len(in_sql)
        assert problems.as_dict() == {"console_errors": [], "page_errors": [], "failed_requests": []}
    finally:
        con.close()
    ARTIFACTS.mkdir(exist_ok=True)
    report = ARTIFACTS / "search-parity.json"
    previous = json.loads(report.read_text()) if report.is_file() else {}
    report.write_text(json.dumps({**previous, name: counts}, indent=1, ensure_ascii=False) + "\n")
    return counts


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Settings:
    """The bundled sample letters (the three real ones) through load, dbt build and publish."""
    return build_real_warehouse(tmp_path_factory.mktemp("sample_night"))


@pytest.mark.slow
@pytest.mark.browser
def test_cli_sql_and_browser_agree_on_the_sample_letters(capsys, sample, tmp_path_factory):
    settings = sample
    counts = check_parity(capsys, settings, tmp_path_factory.mktemp("sample_report"), "sample letters")
    # the queries say something: stems, every word, any word, and words no finding has
    assert counts["'thresholds' every"] == counts["'thresholds' any"] >= 1
    assert counts["'the of and' every"] == counts["'zeppelin' every"] == 0
    assert counts["'zeppelin supervision' every"] == 0 < counts["'zeppelin supervision' any"]
    assert counts["'the supervision' every"] == counts["'supervision' every"] > 0


@pytest.mark.slow
@pytest.mark.browser
def test_cli_sql_and_browser_agree_on_generated_letters(capsys, tmp_path_factory):
    settings = real_warehouse(tmp_path_factory)  # the samples and generated letters (devtools/synthetic.py)
    counts = check_parity(capsys, settings, tmp_path_factory.mktemp("synthetic_report"), "generated letters")
    assert counts["'supervision unallocated' any"] > counts["'supervision unallocated' every"]
    assert counts["'Supervising' every"] == counts["'supervision' every"] > 0
    assert counts["'child protection plans' every"] > 0


# --- the search box as a reader uses it --------------------------------------------------------

DERBYSHIRE_THRESHOLDS = "revising threshold guidance"


def count_sql(con: duckdb.DuckDBPyConnection, query: str, any_word: bool, where: str = "true") -> int:
    return con.execute(f"select count(*) from marts.search_findings(?, max_results := 1000000, "
                       f"any_word := ?) where {where}", [query, any_word]).fetchone()[0]


def status(page) -> str:
    return page.inner_text("#search-status")


@pytest.mark.slow
@pytest.mark.browser
def test_search_box_counts_pages_highlights_and_filters(sample, tmp_path):
    warehouse = sample.published_warehouse
    out = tmp_path / "report"
    path = write_report(sample.with_overrides(report_dir=out), None)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        with open_page(path.as_uri()) as (page, problems):
            # one finding, its words highlighted, its link leading to it on the authority's page
            page.fill("#q", "thresholds")
            assert status(page) == "1 finding for “thresholds” (every word)."
            [hit] = page.locator("#search-results li").all()
            assert DERBYSHIRE_THRESHOLDS in hit.inner_text()
            assert page.locator("#search-results li mark").all_inner_texts() == ["threshold"]
            assert page.locator("#search-pager").is_hidden()
            # every word by default; any word on request; counts as SQL's
            page.fill("#q", "children's services")
            every = count_sql(con, "children's services", False)
            assert status(page) == f"{every} findings for “children's services” (every word)."
            page.check("#search-any")
            anyn = count_sql(con, "children's services", True)
            assert anyn > 20
            assert status(page) == f"{anyn} findings for “children's services” (any of the words)."
            # paging: 20 a page, numbered on
            assert page.locator("#search-results li").count() == 20
            assert page.inner_text("#search-where") == f"Findings 1–20 of {anyn} (page 1 of 2)"
            page.click("#search-next")
            assert page.locator("#search-results li").count() == anyn - 20
            assert page.get_attribute("#search-results", "start") == "21"
            assert page.is_disabled("#search-next") and not page.is_disabled("#search-prev")
            marks = page.locator("#search-results li mark").all_inner_texts()
            assert marks and {m.lower() for m in marks} <= {"children's", "childrens", "children", "services",
                                                            "service", "child"}
            screenshot(page, "report-search.png")
            # filters: category, region, year, each as SQL counts them
            page.select_option("#search-category", label="Strengths")
            strengths = count_sql(con, "children's services", True, "category = 'strength'")
            assert status(page).startswith(f"{strengths} finding")
            page.select_option("#search-category", label="all")
            [(region, year)] = con.execute(
                "select region, cast(calendar_year as varchar) from marts.findings_wide "
                "where finding_text ilike '%revising threshold guidance%'").fetchall()
            page.select_option("#search-region", label=region)
            page.select_option("#search-year", label=year)
            both = count_sql(con, "children's services", True,
                             f"region = '{region}' and calendar_year = {year}")
            assert status(page).startswith(f"{both} finding")
            # hostile input is text, never markup; words no finding has are named
            page.select_option("#search-region", label="all")
            page.select_option("#search-year", label="all")
            page.uncheck("#search-any")
            page.fill("#q", "<img src=x onerror=alert(1)> zeppelin")
            assert status(page) == ("0 findings for “<img src=x onerror=alert(1)> zeppelin” (every word); "
                                    "no finding has the words ‘1’, ‘img’, ‘onerror’, ‘src’, ‘x’, ‘zeppelin’.")
            assert page.locator("img[src=x]").count() == 0
            page.fill("#q", "the of")
            assert status(page).startswith("0 findings: “the of” has only common words")
            page.fill("#q", "!!!")
            assert status(page) == "Cannot search: empty search: give one or more words, e.g. thresholds."
        assert problems.as_dict() == {"console_errors": [], "page_errors": [], "failed_requests": []}
        assert all(u.startswith("file://") for u in problems.requests)
    finally:
        con.close()
