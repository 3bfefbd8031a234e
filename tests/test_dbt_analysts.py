"""The analysts' tables: findings_wide, bridge_authority_successions, dim_dates with bank
holidays and working days, the full-text search, and the data-quality warnings.

The real sample letters are loaded with `ofsted load` and built with `ofsted build` once for
the module (dbt builds take seconds: marked `slow`); the DQ warnings get their own warehouse of
letters made to trip them. Expected values are worked out here from the letters, the seeds'
CSV files and the calendar, not read back from the SQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
from _dbt_support import PROJECT_ROOT, SAMPLE_LETTERS, dbt_settings, query, real_letters, write_raw

from ingest.cli import main as ofsted
from ingest.warehouse.build import run_dbt
from ingest.warehouse.search import SearchError, search

pytestmark = pytest.mark.slow

SEEDS = PROJECT_ROOT / "dbt_project" / "seeds"
DERBYSHIRE_THRESHOLDS = "revising threshold guidance"  # the end of Derbyshire's finding


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The real letters, through `ofsted load` and `ofsted build`, as the data team runs them."""
    tmp = tmp_path_factory.mktemp("analysts")
    warehouse = tmp / "work.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OFSTED_DATA_DIR", str(tmp))
        mp.setenv("OFSTED_DBT_TARGET_DIR", str(tmp / "dbt_target"))
        assert ofsted(["load", "--inbox", str(SAMPLE_LETTERS), "--warehouse", str(warehouse)]) == 0
        assert ofsted(["build", "--warehouse", str(warehouse)]) == 0
    return warehouse


def bank_holidays() -> set[dt.date]:
    with (SEEDS / "bank_holidays.csv").open(newline="") as fh:
        return {dt.date.fromisoformat(r["holiday_date"]) for r in csv.DictReader(fh)}


def working_days_after(start: dt.date, end: dt.date) -> int:
    """Weekdays that are not bank holidays in (start, end]."""
    holidays = bank_holidays()
    days = (start + dt.timedelta(d) for d in range(1, (end - start).days + 1))
    return sum(1 for d in days if d.weekday() < 5 and d not in holidays)


# --- findings_wide ---------------------------------------------------------------------------

def test_findings_wide_has_a_row_per_finding_with_its_authority_dates_and_themes(built):
    [(wide, facts)] = query(built, "select (select count(*) from marts.findings_wide), "
                                   "(select count(*) from marts.fct_findings)")
    assert wide == facts == 50
    rows = query(built, """
        select gss_code, dfe_la_code, authority_name, authority_name_as_written, region,
               authority_type, financial_year, academic_year, calendar_year, current_gss_codes,
               count(*), count(distinct source_uri)
        from marts.findings_wide group by all order by gss_code""")
    assert rows == [
        ("E08000027", "332", "Dudley", rows[0][3], "West Midlands", "Metropolitan Districts",
         "2010-11", "2009-10", 2010, ["E08000027"], 13, 1),
        ("E10000007", "830", "Derbyshire", rows[1][3], "East Midlands", "Counties",
         "2010-11", "2010-11", 2010, ["E10000007"], 19, 1),
        ("E10000009", "835", "Dorset", rows[2][3], "South West", "Counties",
         "2010-11", "2009-10", 2010, ["E06000058", "E06000059"], 18, 1),
    ]
    assert [r[3] for r in rows] == ["Dudley Metropolitan Borough Council",
                                    "Derbyshire County Council", "Dorset County Council"]
    # themes are a list column; every theme of the bridge is in it, and nothing else
    themes = dict(query(built, "select finding_key, themes from marts.findings_wide"))
    bridge: dict[str, list[str]] = {}
    for key, code in query(built, "select finding_key, theme_code from marts.bridge_findings_themes"):
        bridge.setdefault(key, []).append(code)
    assert themes == {k: sorted(bridge.get(k, [])) for k in themes}
    assert sum(1 for t in themes.values() if t) >= 45
    # the source URI is the letter's
    [(uri,)] = query(built, "select distinct source_uri from marts.findings_wide "
                            "where finding_text like ?", [f"%{DERBYSHIRE_THRESHOLDS}%"])
    assert uri.startswith("file://") and uri.endswith("003_9c1c04a8ac30f548.txt")


# --- bridge_authority_successions ------------------------------------------------------------

def split_populations() -> dict[tuple[str, str], int]:
    with (SEEDS / "authority_split_populations.csv").open(newline="") as fh:
        return {(r["gss_code"], r["successor_gss_code"]): int(r["population"]) for r in csv.DictReader(fh)}


def test_dorset_2010_goes_to_dorset_council_and_bcp_by_population(built):
    rows = query(built, """
        select successor_gss_code, successor_authority_name, change_type, change_date, weight,
               weight_quality, population_source
        from marts.bridge_authority_successions where gss_code = 'E10000009'
        order by successor_gss_code""")
    pops = split_populations()
    dorset, christchurch = pops[("E10000009", "E06000059")], pops[("E10000009", "E06000058")]
    assert [r[:4] for r in rows] == [
        ("E06000058", "Bournemouth, Christchurch and Poole", "partial_transfer", dt.date(2019, 4, 1)),
        ("E06000059", "Dorset", "split", dt.date(2019, 4, 1)),
    ]
    assert rows[0][4] == pytest.approx(christchurch / (dorset + christchurch))
    assert 0.10 < rows[0][4] < 0.14  # Christchurch: about an eighth of Dorset
    assert rows[0][4] + rows[1][4] == pytest.approx(1.0, abs=1e-12)
    # the Christchurch figure could not be checked against ONS: the weights say so
    assert {r[5] for r in rows} == {"approximate"} and all("ONS" in r[6] for r in rows)


def test_every_historic_authority_is_shared_out_in_full(built):
    sums = query(built, "select gss_code, sum(weight), count(*) from marts.bridge_authority_successions "
                        "group by gss_code")
    [(register,)] = query(built, "select count(*) from marts.dim_authorities")
    assert len(sums) == register
    assert all(total == pytest.approx(1.0, abs=1e-9) for _, total, _ in sums)
    by_pair = {(r[0], r[1]): r[2:] for r in query(built, """
        select gss_code, successor_gss_code, change_type, weight, weight_quality, hops
        from marts.bridge_authority_successions""")}
    # unchanged, unitary then recode (two hops), merge, and a split weighted by published figures
    assert by_pair[("E10000007", "E10000007")] == ("unchanged", 1.0, "whole", 0)
    assert by_pair[("E10000022", "E06000057")] == ("unitary", 1.0, "whole", 2)
    assert by_pair[("E10000002", "E06000060")] == ("unitary", 1.0, "whole", 1)  # same area, not a merge
    assert by_pair[("E06000048", "E06000057")] == ("recode", 1.0, "whole", 1)
    assert by_pair[("E06000028", "E06000058")] == ("merge", 1.0, "whole", 1)
    pops = split_populations()
    north, west = pops[("E10000021", "E06000061")], pops[("E10000021", "E06000062")]
    assert by_pair[("E10000021", "E06000061")][:3] == ("split", pytest.approx(north / (north + west)),
                                                      "published")
    # today's codes on the facts, DfE codes as text
    assert query(built, "select current_gss_codes, current_dfe_la_codes from marts.fct_inspections "
                        "where gss_code = 'E10000009'") == [(["E06000058", "E06000059"], ["839", "838"])]


# --- dim_dates and working days -------------------------------------------------------------------

def test_dim_dates_runs_to_the_end_of_the_year_after_the_run_date_with_bank_holidays(built, tmp_path):
    # default run date: the day dbt ran (UTC)
    [(first, last)] = query(built, "select min(date_day), max(date_day) from marts.dim_dates")
    assert first == dt.date(2010, 1, 1)  # the first letter's year
    assert last == dt.date(dt.datetime.now(dt.UTC).year + 1, 12, 31)
    days = {r[0]: r[1:] for r in query(built, "select date_day, is_bank_holiday, is_working_day, "
                                               "bank_holiday_name from marts.dim_dates")}
    assert days[dt.date(2010, 5, 31)][:2] == (True, False)   # spring bank holiday, a Monday
    assert days[dt.date(2011, 4, 29)] == (True, False, "Wedding of William and Catherine")
    assert days[dt.date(2019, 4, 1)][:2] == (False, True)   # the BCP reorganisation, a Monday
    assert days[dt.date(2010, 6, 5)][:2] == (False, False)  # a Saturday
    # the day off, not the weekend date: Christmas 2010 was a Saturday, taken on Monday 27th
    assert days[dt.date(2010, 12, 25)] == (False, False, "Christmas Day")
    assert days[dt.date(2010, 12, 27)] == (True, False, "Christmas Day (observed)")
    per_year = dict(query(built, "select calendar_year, count(*) filter (where is_bank_holiday) "
                                 "from marts.dim_dates where calendar_year between 2010 and 2012 group by 1"))
    assert per_year == {2010: 8, 2011: 9, 2012: 9}  # as gov.uk lists them
    # working days unchanged: weekdays less the holidays the seed lists (261 - 8 in 2010)
    working = dict(query(built, "select calendar_year, count(*) filter (where is_working_day) "
                                "from marts.dim_dates where calendar_year between 2010 and 2012 group by 1"))
    assert working == {y: working_days_after(dt.date(y - 1, 12, 31), dt.date(y, 12, 31))
                       for y in (2010, 2011, 2012)}
    assert working[2010] == 253
    # the night passes its logical date: the calendar follows it, whatever day the build runs
    settings = dbt_settings(tmp_path, built)
    assert run_dbt(settings, ["run", "--select", "dim_dates", "--vars", "{run_date: '2030-06-30'}"]) == 0
    assert query(built, "select max(date_day) from marts.dim_dates") == [(dt.date(2031, 12, 31),)]
    assert run_dbt(settings, ["run", "--select", "dim_dates"]) == 0  # back to the default


def test_working_days_from_inspection_to_letter(built):
    rows = query(built, "select inspection_end_date, letter_date, first_published_date, "
                        "working_days_from_inspection_to_letter, "
                        "working_days_from_inspection_to_first_letter from marts.fct_inspections")
    assert len(rows) == 3
    for end, letter, first, to_letter, to_first in rows:
        assert to_letter == working_days_after(end, letter)
        assert to_first == working_days_after(end, first)
    # Dorset: 19 May to 17 June 2010 is 21 weekdays, less the spring bank holiday (31 May)
    assert query(built, "select working_days_from_inspection_to_letter from marts.fct_inspections "
                        "where gss_code = 'E10000009'") == [(20,)]


# --- search ----------------------------------------------------------------------------------

def test_search_finds_derbyshires_threshold_guidance_with_stemming(built):
    for words in ("thresholds", "threshold", "THRESHOLDS"):
        hits = search(built, words, limit=5)
        assert [h["authority_name"] for h in hits] == ["Derbyshire"], words
        assert DERBYSHIRE_THRESHOLDS in hits[0]["finding_text"]
        assert hits[0]["matched_terms"] == ["threshold"] and hits[0]["rank"] == 1
    # every word must match (the default): only Derbyshire's finding has all three
    hits = search(built, "revised threshold guidance", limit=5)
    assert [h["authority_name"] for h in hits] == ["Derbyshire"]
    # any of the words: the finding with more of them, and the rarer ones, ranks first
    hits = search(built, "revised threshold guidance", limit=3, any_word=True)
    assert DERBYSHIRE_THRESHOLDS in hits[0]["finding_text"]
    assert hits[0]["score"] > hits[1]["score"] >= hits[2]["score"]
    assert search(built, "zeppelin", limit=5) == []
    assert search(built, "zeppelin thresholds", limit=5) == []  # a word no finding has matches nothing
    assert len(search(built, "zeppelin thresholds", limit=5, any_word=True)) == 1
    # the same ranking from SQL, as an analyst calls it
    sql = query(built, "select finding_key from marts.search_findings('revised threshold guidance', "
                       "any_word := true) limit 3")
    assert [r[0] for r in sql] == [h["finding_key"] for h in hits]


def test_search_terms_are_porter_stems(built):
    # examples from Porter's paper (1980)
    words = "caresses ponies relational conditional generalizations oscillators hopping filing"
    terms = dict(query(built, "select word, stem from marts.porter_stems(?)", [words]))
    assert terms == {"caresses": "caress", "ponies": "poni", "relational": "relat",
                     "conditional": "condit", "generalizations": "gener",
                     "oscillators": "oscil", "hopping": "hop", "filing": "file"}
    assert query(built, "select count(*) from marts.search_terms('the of and')") == [(0,)]
    # a query word's term comes from the vocabulary: a finding's word, or an inflection of one
    sql = "select word, term from marts.search_terms('thresholds guidance zeppelin')"
    assert dict(query(built, sql)) == {
        "thresholds": "threshold", "guidance": "guidanc", "zeppelin": None}


def test_search_refuses_bad_input_in_one_line(built):
    for bad, limit, message in (("", 5, "empty search"), ("  ", 5, "empty search"),
                                ("x " * 40, 5, "at most 32"), ("thresholds", 0, "limit must be")):
        with pytest.raises(SearchError, match=message):
            search(built, bad, limit=limit)


# --- data-quality warnings -------------------------------------------------------------------

def test_dq_warnings_name_close_overlapping_and_mismatched_inspections(tmp_path, capfd):
    base = {r.letter.authority_name: r for r in real_letters()}
    dorset = next(r for name, r in base.items() if "Dorset" in name)

    def copy(tag: str, start: dt.date, end: dt.date, letter: dt.date, previous: str | None):
        return replace(dorset, sha256=f"{tag:0<64}", source_uri=f"file:///dq/{tag}.txt",
                       letter=replace(dorset.letter, inspection_start_date=start,
                                      inspection_end_date=end, letter_date=letter,
                                      previous_inspection=previous))

    letters = [
        dorset,                                                                    # 18-19 May 2010
        copy("b", dt.date(2010, 5, 19), dt.date(2010, 5, 20), dt.date(2010, 6, 18), None),  # overlaps
        copy("c", dt.date(2010, 7, 6), dt.date(2010, 7, 7), dt.date(2010, 8, 4), None),     # 49 days on
        copy("d", dt.date(2011, 9, 6), dt.date(2011, 9, 7), dt.date(2011, 10, 5), "October 2009"),
        copy("e", dt.date(2012, 9, 4), dt.date(2012, 9, 5), dt.date(2012, 10, 3), "September 2011"),
    ]
    warehouse = tmp_path / "work.duckdb"
    write_raw(warehouse, letters)
    settings = dbt_settings(tmp_path, warehouse)
    assert run_dbt(settings, ["build"]) == 0  # warnings do not fail the build
    results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["results"]
    warned = {r["unique_id"].split(".")[2]: r["failures"] for r in results if r["status"] == "warn"}
    assert warned == {
        # 18 May -> 19 May, 19 May -> 6 July, 18 May -> 6 July: three pairs under 90 days
        "dq_authority_inspected_again_within_min_days": 3,
        "dq_overlapping_inspections": 1,
        # 2011 states "October 2009" but follows the July 2010 inspection; 2012's is right
        "dq_stated_previous_inspection_matches_linked": 1,
    }
    assert "WARN" in capfd.readouterr().out
