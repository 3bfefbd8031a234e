"""The analysts' tables: findings_wide, bridge_authority_successions, dim_dates with bank
holidays and working days, the full-text search, and the data-quality warnings.

The real sample letters are loaded with `ofsted load` and built with `ofsted build` once for
the session (conftest's `sample_build`; dbt builds take seconds: marked `slow`); the DQ
warnings get their own warehouse of letters made to trip them. Expected values are worked out
here from the letters, the seeds' CSV files and the calendar, not read back from the SQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from _dbt_support import PROJECT_ROOT, dbt_settings, query, real_letters, write_raw

from ingest.cli import main as ofsted
from ingest.warehouse.build import night_env, run_dbt
from ingest.warehouse.search import SearchError, search

pytestmark = pytest.mark.slow

SEEDS = PROJECT_ROOT / "dbt_project" / "seeds"
DERBYSHIRE_THRESHOLDS = "revising threshold guidance"  # the end of Derbyshire's finding


@pytest.fixture(scope="module")
def built(sample_build) -> Path:
    """The real letters, through `ofsted load` and `ofsted build` (the session's `sample_build`)."""
    return sample_build.work_warehouse


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
    settings = dbt_settings(built.parent, built)  # the build's own target dir: no parse
    # the night's date as the night gives it (environment), then by hand (--vars)
    assert run_dbt(settings, ["run", "--select", "dim_dates"], night_env("2030-06-30")) == 0
    assert query(built, "select max(date_day) from marts.dim_dates") == [(dt.date(2031, 12, 31),)]
    assert run_dbt(settings, ["run", "--select", "dim_dates", "--vars", "{run_date: '2029-01-01'}"]) == 0
    assert query(built, "select max(date_day) from marts.dim_dates") == [(dt.date(2030, 12, 31),)]
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


# --- analyses, run as the README tells an analyst -------------------------------------------

ANALYSES_DIR = PROJECT_ROOT / "dbt_project" / "analyses"


def analysis(warehouse: Path, capsys, name: str, *variables: str) -> list[dict]:
    """`ofsted analysis NAME --var ... --format json` on `warehouse`: its rows."""
    args = ["analysis", name, "--warehouse", str(warehouse), "--format", "json"]
    for v in variables:
        args += ["--var", v]
    capsys.readouterr()
    assert ofsted(args) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_every_analysis_runs_as_it_is_with_and_without_parameters(built, capsys):
    from ingest.warehouse.analyses import list_analyses

    listed = list_analyses(ANALYSES_DIR)
    assert sorted(a.name for a in listed) == sorted(p.stem for p in ANALYSES_DIR.glob("*.sql"))
    for a in listed:
        assert a.about and a.about[0], a.name  # says what it answers
        analysis(built, capsys, a.name)  # its defaults
        for p in a.parameters:  # every parameter it documents is one it reads
            assert f"{p} " in "\n".join(a.about), (a.name, p)
        # and runs through `ofsted sql -f`, the same file
        capsys.readouterr()
        assert ofsted(["sql", "-f", str(a.path), "--warehouse", str(built), "--format", "json"]) == 0
    # `ofsted analysis` alone lists them with their parameters
    capsys.readouterr()
    assert ofsted(["analysis", "--warehouse", str(built)]) == 0
    out = capsys.readouterr().out
    assert all(a.name in out for a in listed) and "--var la_code=..." in out


def test_predecessor_findings_follow_todays_authority_with_its_share(built, capsys):
    pops = split_populations()
    christchurch = pops[("E10000009", "E06000058")] / (pops[("E10000009", "E06000059")]
                                                       + pops[("E10000009", "E06000058")])
    default = analysis(built, capsys, "predecessor_findings_of_todays_authorities")
    by_la_code = analysis(built, capsys, "predecessor_findings_of_todays_authorities", "la_code=839")
    assert default == by_la_code and len(default) == 18  # Dorset 2010's findings, for BCP
    assert {(r["inspected_authority_name"], r["current_authority_name"]) for r in default} == {
        ("Dorset", "Bournemouth, Christchurch and Poole")}
    assert {r["share_of_inspected_area"] for r in default} == {round(christchurch, 3)}
    dorset_council = analysis(built, capsys, "predecessor_findings_of_todays_authorities", "la_code=838")
    assert len(dorset_council) == 18
    assert {r["share_of_inspected_area"] for r in dorset_council} == {round(1 - christchurch, 3)}
    assert analysis(built, capsys, "predecessor_findings_of_todays_authorities", "gss_code=E08000027")[0][
        "inspected_authority_name"] == "Dudley"


def test_theme_and_priority_analyses_filter_by_their_parameters(built, capsys):
    bridge = query(built, """
        select w.category, w.financial_year, count(*) from marts.findings_wide as w,
        unnest(w.theme_names) group by all""")
    for category, fy, n in bridge:
        rows = analysis(built, capsys, "themes_by_year", f"category={category}")
        assert {r["category"] for r in rows} == {category}
        assert sum(r["finding_count"] for r in rows if r["financial_year"] == fy) == n
    assert analysis(built, capsys, "themes_by_year", "region=Nowhere") == []
    south_west = analysis(built, capsys, "themes_by_year", "region=South West")
    assert south_west and sum(r["finding_count"] for r in south_west) == query(built, """
        select count(*) from marts.findings_wide, unnest(theme_names) where region = 'South West'""")[0][0]
    # none of the three real letters has a priority action
    assert analysis(built, capsys, "authorities_with_priority_action", "region=South West") == []
    assert analysis(built, capsys, "recurring_areas_for_development", "la_code=835") == []


def test_an_unknown_or_misspelt_parameter_is_one_line(built, capsys):
    for args, message in (
        (["analysis", "themes_by_year", "--var", "catgory=strength"], "has no parameter 'catgory'"),
        (["analysis", "no_such_analysis"], "no analysis 'no_such_analysis'"),
        (["analysis", "../themes_by_year"], "no analysis"),
        (["sql", "select 1", "--var", "x"], "give NAME=VALUE"),
        (["sql", "select getvariable('a')", "--var", "b=1"], "has no parameter 'b'"),
    ):
        capsys.readouterr()
        assert ofsted([*args, "--warehouse", str(built)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and err[-1].startswith("ofsted "), err


# --- what corrections changed, on letters re-issued by the generator -------------------------------

@pytest.fixture(scope="module")
def corrected(tmp_path_factory):
    from _analysts_support import corrections_warehouse

    return corrections_warehouse(tmp_path_factory)


def _inspection_key(warehouse: Path, letter) -> str:
    [(key,)] = query(warehouse, """
        select inspection_key from marts.fct_inspections
        where authority_name_as_written = ? and inspection_start_date = ?""",
                     [letter.expected["authority_name"], letter.expected["inspection_start_date"]])
    return key


def test_finding_changes_are_what_each_correction_changed(corrected):
    settings, pairs = corrected
    w = settings.published_warehouse
    for original, correction in pairs:
        record = correction.expected["correction"]
        key = _inspection_key(w, original)
        changes = query(w, """
            select change_type, category, old_ordinal, new_ordinal, old_finding_text, new_finding_text
            from marts.fct_finding_changes where inspection_key = ? order by all""", [key])
        counts = query(w, """
            select letter_version, letter_date::varchar, findings_added_count, findings_removed_count,
                   findings_reworded_count
            from marts.fct_letter_versions where inspection_key = ? order by letter_version""", [key])
        n = len(original.expected["findings"])
        first, second = original.expected["letter_date"], correction.expected["letter_date"]
        change = record["change"]
        if change == "reworded":
            assert changes == [("reworded", record["category"], record["old_ordinal"], record["new_ordinal"],
                                record["old_text"], record["new_text"])], change
            assert counts == [(1, first, n, 0, 0), (2, second, 0, 0, 1)]
        elif change == "removed":
            assert changes == [("removed", record["category"], record["old_ordinal"], None,
                                record["old_text"], None)], change
            assert counts == [(1, first, n, 0, 0), (2, second, 0, 1, 0)]
        else:  # moved within its section, or only re-dated: nothing changed
            assert changes == [], change
            assert counts == [(1, first, n, 0, 0), (2, second, 0, 0, 0)]
    assert {c.expected["correction"]["change"] for _, c in pairs} == {"reworded", "moved", "removed",
                                                                        "redated"}


# --- inspections_wide and authority_comparisons, checked against the letters themselves --------------

def _register() -> dict[str, dict[str, str]]:
    with (SEEDS / "local_authorities.csv").open(newline="") as fh:
        return {r["gss_code"]: r for r in csv.DictReader(fh)}


def test_inspections_wide_has_a_row_per_inspection_with_its_current_letter(corrected):
    settings, pairs = corrected
    w = settings.published_warehouse
    assert query(w, "select count(*) from marts.inspections_wide") == query(
        w, "select count(*) from marts.fct_inspections")
    for original, correction in pairs:
        e = correction.expected
        [row] = query(w, """
            select gss_code, region, financial_year, letter_version, first_published_date::varchar,
                   letter_date::varchar, finding_count, strength_count, priority_action_count,
                   working_days_from_inspection_to_first_letter, todays_authorities
            from marts.inspections_wide where inspection_key = ?""", [_inspection_key(w, original)])
        start = dt.date.fromisoformat(e["inspection_start_date"])
        fy = start.year if start.month >= 4 else start.year - 1
        assert row[:9] == (e["gss_code"], _register()[e["gss_code"]]["region"],
                           f"{fy}-{(fy + 1) % 100:02d}", 2,
                           original.expected["letter_date"], e["letter_date"], len(e["findings"]),
                           e["counts"]["strength"], e["counts"]["priority_action"])
        assert row[9] == working_days_after(dt.date.fromisoformat(e["inspection_end_date"]),
                                            dt.date.fromisoformat(original.expected["letter_date"]))
        assert abs(sum(t["weight"] for t in row[10]) - 1) < 1e-9
    # Dorset 2010: today's Dorset and BCP, largest share first
    [(todays,)] = query(w, "select todays_authorities from marts.inspections_wide "
                           "where gss_code = 'E10000009'")
    assert [t["gss_code"] for t in todays] == ["E06000059", "E06000058"]
    assert todays[0]["weight"] > todays[1]["weight"] and todays[1]["change_type"] == "partial_transfer"


def test_authority_comparisons_equal_figures_worked_out_from_the_letters(corrected):
    """Each authority, its region and England on the measures, recomputed here from the letters'
    expected parses and the register seed (not from the marts)."""
    settings, pairs = corrected
    w = settings.published_warehouse
    register = _register()
    current = {}  # (gss, start) -> expected parse of the current letter
    for original, correction in pairs:
        key = (original.expected["gss_code"], original.expected["inspection_start_date"])
        current[key] = correction.expected
    real = {r["gss_code"]: r for name, r in json.loads(
        (PROJECT_ROOT / "tests" / "fixtures" / "letters" / "real_expected.json").read_text()).items()
        if not name.startswith("_")}
    rows = query(w, """
        select gss_code, inspection_start_date::varchar, finding_count, area_for_development_count,
               priority_action_count from marts.fct_inspections where authority_key is not null""")
    assert len(rows) == len(current) + len(real)
    inspections = []
    for gss, start, *_ in rows:
        e = current.get((gss, start))
        if e is None:  # a real letter: its counts from its expected parse
            e = {"findings": [{"category": c} for c, n in real[gss]["counts"].items() for _ in range(n)]}
        cats = Counter(f["category"] for f in e["findings"])
        inspections.append((gss, register[gss]["region"], cats))

    def share_with_priority_action(subset):
        return sum(1 for _, _, c in subset if c["priority_action"]) / len(subset)

    def per_inspection(subset, category):
        return sum(c[category] for _, _, c in subset) / len(subset)

    got = {(r[0], r[1], r[2]): r[3:] for r in query(w, """
        select gss_code, measure, subject, authority_value, region_value, england_value,
               authority_inspection_count, region_inspection_count, england_inspection_count
        from marts.authority_comparisons
        where measure in ('share_with_priority_action', 'findings_per_inspection')""")}
    assert {g for g, *_ in got} == {g for g, _, _ in inspections}
    for gss, region, _ in inspections:
        mine = [i for i in inspections if i[0] == gss]
        theirs = [i for i in inspections if i[1] == region]
        want = share_with_priority_action(mine), share_with_priority_action(theirs), \
            share_with_priority_action(inspections)
        assert got[(gss, "share_with_priority_action", "all")][:3] == pytest.approx(want)
        counted = (len(mine), len(theirs), len(inspections))
        assert got[(gss, "share_with_priority_action", "all")][3:] == counted
        for category in ("strength", "satisfactory", "area_for_development", "priority_action"):
            want = per_inspection(mine, category), per_inspection(theirs, category), \
                per_inspection(inspections, category)
            assert got[(gss, "findings_per_inspection", category)][:3] == pytest.approx(want), (gss, category)
    # letter lag and theme shares: ratios of the marts' own sums, spot-checked for England
    [(lag,)] = query(w, "select distinct england_value from marts.authority_comparisons "
                        "where measure = 'working_days_to_first_letter'")
    lags = [working_days_after(end, first) for end, first in query(w, """
        select inspection_end_date, first_published_date from marts.fct_inspections
        where authority_key is not null""")]
    assert lag == pytest.approx(sum(lags) / len(lags))
    [(theme_share, findings)] = query(w, """
        select england_value, england_denominator from marts.authority_comparisons
        where measure = 'share_of_findings' and subject = 'supervision' limit 1""")
    themed = query(w, "select count(*) from marts.findings_wide where authority_key is not null "
                      "and list_contains(themes, 'supervision')")[0][0]
    assert findings == sum(sum(c.values()) for _, _, c in inspections)
    assert theme_share == pytest.approx(themed / findings)
