"""The dbt warehouse: marts built from known raw letters hold what a user would check.

Full dbt builds take seconds each on a busy machine, so they are few and marked `slow`:
the three real letters loaded by the real loader (counts, authorities, reorganisations, themes,
docs, analyses); an unmatched authority (kept, flagged, named in dbt's output, build fails);
all 152 authorities matched, then incremental == full refresh (new, re-parsed, withdrawn, re-issued
letters).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from _dbt_support import (
    PROJECT_ROOT,
    SAMPLE_LETTERS,
    dbt_settings,
    letters_per_authority,
    mart_tables,
    query,
    real_letters,
    synthetic_letters,
    theme_quality,
    write_raw,
)

from ingest.warehouse.build import cli_build, run_dbt

EXPECTED = json.loads((PROJECT_ROOT / "tests" / "fixtures" / "letters" / "real_expected.json").read_text())
REAL = {k: v for k, v in EXPECTED.items() if not k.startswith("_")}
ANALYSES = sorted(p.stem for p in (PROJECT_ROOT / "dbt_project" / "analyses").glob("*.sql"))


def test_build_without_a_warehouse_is_a_one_line_error(tmp_path, capsys):
    settings = dbt_settings(tmp_path, tmp_path / "missing.duckdb")
    assert cli_build(settings) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no warehouse at" in err and "missing.duckdb" in err
    assert not (tmp_path / "missing.duckdb").exists()

    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    assert cli_build(dbt_settings(tmp_path, empty)) == 2
    assert capsys.readouterr().err.strip() == (
        f"ofsted build: error: {empty} has no raw tables (run `ofsted load` first)")



def test_build_of_a_warehouse_in_use_is_a_one_line_error(tmp_path, capsys):
    warehouse = tmp_path / "work.duckdb"
    write_raw(warehouse, [])
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(60)", str(warehouse)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        assert cli_build(dbt_settings(tmp_path, warehouse)) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "in use by another process" in err, err
    assert not (tmp_path / "dbt_target").exists()  # dbt was not started


def test_an_interrupted_dbt_command_is_an_interruption_not_a_failed_build(tmp_path, monkeypatch):
    """dbt's runner catches everything, ^C included, and hands it back as its result's exception:
    the night's build must stop as interrupted (the step-runner records it so, without an alert),
    not fail as "dbt build could not run", alerted, and remembered as a failed build."""
    from dbt.cli import main as dbt_main

    from ingest.warehouse.build import FAILED_STATE, build_night

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dbt_main.cli, "invoke", interrupted)
    settings = dbt_settings(tmp_path, tmp_path / "work.duckdb")
    with pytest.raises(KeyboardInterrupt):
        run_dbt(settings, ["build"])
    with pytest.raises(KeyboardInterrupt):
        build_night(settings)
    assert not (settings.dbt_target_dir / FAILED_STATE).exists()


@pytest.mark.slow
def test_build_on_the_real_letters(sample_build):
    # the session's sample night: the real loader and `ofsted build`, as the data team runs them
    warehouse = sample_build.work_warehouse
    assert query(warehouse, "select count(*) from raw.letters") == [(3,)]
    from conftest import SAMPLE_BUILD_RESULTS

    results = json.loads((sample_build.dbt_target_dir.parent / SAMPLE_BUILD_RESULTS).read_text())["results"]
    assert len(results) > 200 and {r["status"] for r in results} <= {"success", "pass"}
    # `ofsted build` runs dbt's unit tests (the night leaves them out: they never read its data)
    assert sum(r["unique_id"].startswith("unit_test.") for r in results) >= 8
    # the build has released the warehouse: another process can open it (read-only)
    probe = "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); " \
            "print(c.execute('select count(*) from marts.fct_inspections').fetchone()[0])"
    done = subprocess.run([sys.executable, "-c", probe, str(warehouse)], capture_output=True, text=True)
    assert done.stdout.strip() == "3", done.stderr

    rows = query(warehouse, """
        select i._sha256, a.gss_code, i.is_authority_matched, i.strength_count, i.satisfactory_count,
               i.area_for_development_count, i.priority_action_count, i.has_priority_action,
               i.inspection_start_date, i.letter_date, i.days_from_inspection_to_letter
        from marts.fct_inspections i join marts.dim_authorities a using (authority_key)""")
    assert len(rows) == 3
    by_file = {}
    for name, exp in REAL.items():
        sha = hashlib.sha256((SAMPLE_LETTERS / name).read_bytes()).hexdigest()
        by_file[name] = next(r for r in rows if r[0] == sha)
        row = by_file[name]
        c = exp["counts"]
        assert row[1:8] == (exp["gss_code"], True, c["strength"], c["satisfactory"],
                            c["area_for_development"], c["priority_action"], False), name
        assert str(row[8]) == exp["inspection_start_date"] and str(row[9]) == exp["letter_date"]
        assert row[10] == (dt.date.fromisoformat(exp["letter_date"])
                           - dt.date.fromisoformat(exp["inspection_end_date"])).days
    assert {r[1] for r in rows} == {"E10000009", "E10000007", "E08000027"}

    # findings: 18 / 19 / 13 rows, texts as the letters write them
    per_authority = dict(query(warehouse, """
        select a.gss_code, count(*) from marts.fct_findings f
        join marts.dim_authorities a using (authority_key) group by 1"""))
    assert per_authority == {"E10000009": 18, "E10000007": 19, "E08000027": 13}
    for exp in REAL.values():
        for category, texts in exp["texts"].items():
            for text in texts:
                assert query(warehouse, "select count(*) from marts.fct_findings where category = ? "
                             "and finding_text = ?", [category, text]) == [(1,)]

    # 2010 Dorset is covered today by Dorset and BCP; Dudley still exists
    assert query(warehouse, """
        select current_gss_codes, current_authority_names, has_successor from marts.dim_authorities
        where gss_code = 'E10000009'""") == [(["E06000058", "E06000059"],
                                              ["Bournemouth, Christchurch and Poole", "Dorset"], True)]
    assert query(warehouse, "select current_gss_codes, has_successor from marts.dim_authorities "
                 "where gss_code = 'E08000027'") == [(["E08000027"], False)]
    # the register: 152 of 2010 + 7 replaced in 2009 + 13 created since; today 152 - 12 + 13
    assert query(warehouse, "select count(*), count(*) filter (where is_current) "
                 "from marts.dim_authorities") == [(172, 153)]

    # themes: the warehouse assigns exactly what benchmarks/theme_quality.py measures
    themed = query(warehouse, """
        select f.finding_text, coalesce(list(b.theme_code order by b.theme_code)
                                        filter (where b.theme_code is not null), [])
        from marts.fct_findings f left join marts.bridge_findings_themes b using (finding_key)
        group by f.finding_text""")
    labelled = [r for r in theme_quality.read_labels() if r["source"].startswith("real:")]
    by_text = {r["finding_text"]: sorted(t) for r, t in
               zip(labelled, theme_quality.assign_themes(labelled).values(), strict=True)}
    assert {text: themes for text, themes in themed} == by_text
    assert sum(1 for _, themes in themed if themes) >= 45  # nearly every real finding has a theme
    # dates: financial and academic years
    assert query(warehouse, "select financial_year, academic_year from marts.dim_dates "
                 "where date_day = '2010-05-18'") == [("2010-11", "2009-10")]
    assert query(warehouse, "select count(*) from marts.dim_inspectors") == [(3,)]

    # docs generate works, and every analysis compiles and runs on the warehouse
    settings = sample_build  # the build's own target dir: no parse
    assert run_dbt(settings, ["docs", "generate"]) == 0
    catalog = json.loads((settings.dbt_target_dir / "catalog.json").read_text())
    manifest = json.loads((settings.dbt_target_dir / "manifest.json").read_text())
    for table in mart_tables():  # every mart and every one of its columns is described
        node = f"model.ofsted_letters.{table}"
        built = set(catalog["nodes"][node]["columns"])
        described = {c for c, v in manifest["nodes"][node]["columns"].items() if v["description"].strip()}
        assert manifest["nodes"][node]["description"].strip(), table
        assert built == described, (table, built ^ described)
    compiled = settings.dbt_target_dir / "compiled" / "ofsted_letters" / "analyses"
    results = {name: query(warehouse, (compiled / f"{name}.sql").read_text()) for name in ANALYSES}
    assert len(ANALYSES) >= 4
    assert results["authorities_with_priority_action"] == []  # none of the three has one
    bcp = results["predecessor_findings_of_todays_authorities"]
    assert len(bcp) == 18 and {r[3] for r in bcp} == {"Dorset"}  # Dorset 2010's findings, for BCP
    assert results["themes_by_year"] and {r[0] for r in results["themes_by_year"]} == {"2010-11"}


@pytest.mark.slow
def test_an_unmatched_authority_is_kept_flagged_and_named(tmp_path, capfd):
    warehouse = tmp_path / "work.duckdb"
    odd = synthetic_letters([11])[0]
    odd = replace(odd, letter=replace(odd.letter, authority_name="Borsetshire County Council"))
    write_raw(warehouse, [*real_letters(), odd])

    assert run_dbt(dbt_settings(tmp_path, warehouse), ["build"]) == 1
    out = capfd.readouterr().out
    assert "Unmatched authority: 'Borsetshire County Council'" in out
    assert "Failure in test assert_every_inspection_matches_an_authority" in out
    # the inspection is kept, flagged, with its findings; the others are unaffected
    assert query(warehouse, """
        select authority_name_as_written, authority_key, finding_count from marts.fct_inspections
        where not is_authority_matched""") == [("Borsetshire County Council", None, len(odd.letter.findings))]
    assert query(warehouse, "select count(*) from marts.fct_inspections where is_authority_matched") == [(3,)]
    assert query(warehouse, "select count(*) from marts.fct_findings f join marts.fct_inspections i "
                 "using (inspection_key) where not i.is_authority_matched") == [(len(odd.letter.findings),)]
    # the failing rows are kept for the data team
    stored = "dbt_test__audit.assert_every_inspection_matches_an_authority"
    assert query(warehouse, f"select authority_name_as_written, finding_count from {stored}") == [
        ("Borsetshire County Council", len(odd.letter.findings))]


def _snapshot(warehouse: Path, suffix: str) -> None:
    with_tables = "; ".join(f"create or replace table main.{t}_{suffix} as select * from marts.{t}"
                            for t in mart_tables())
    query(warehouse, with_tables)


def _differences(warehouse: Path, table: str, a: str, b: str) -> int:
    cols = ", ".join(c for (c,) in query(warehouse, f"""
        select column_name from information_schema.columns
        where table_schema = 'marts' and table_name = '{table}' order by ordinal_position"""))
    (n,) = query(warehouse, f"""
        select count(*) from (
            (select {cols} from main.{table}_{a} except all select {cols} from main.{table}_{b})
            union all
            (select {cols} from main.{table}_{b} except all select {cols} from main.{table}_{a}))""")[0]
    return n


@pytest.mark.slow
def test_authorities_matched_and_incremental_build_equals_full_refresh(tmp_path):
    warehouse = tmp_path / "work.duckdb"
    settings = dbt_settings(tmp_path, warehouse)
    day1 = dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC)
    per_authority = letters_per_authority(parsed_at=day1)
    first = [letter for letter, _ in per_authority]
    write_raw(warehouse, first)
    assert run_dbt(settings, ["build"]) == 0
    (before,) = query(warehouse, "select count(*) from marts.fct_findings")[0]
    # every authority of 2010, named as the letters name it, is matched to its GSS code
    matched = dict(query(warehouse, "select _sha256, gss_code from marts.fct_inspections"))
    assert {letter.sha256: matched[letter.sha256] for letter in first} == {
        letter.sha256: gss for letter, gss in per_authority}

    # the next night: 10 new letters, one letter re-parsed with a finding fewer, one replaced
    # at its URI by a letter about another inspection (withdrawn: left out of the marts), and
    # one re-issued with a later date (version 2 of the same inspection)
    day2 = day1 + dt.timedelta(days=1)
    new = synthetic_letters(range(40, 50), parsed_at=day2)
    reparsed, superseded, reissued = first[0], first[1], first[2]
    shorter = replace(reparsed.letter, findings=reparsed.letter.findings[:-1])
    later = reissued.letter.letter_date + dt.timedelta(days=7)
    redated = replace(reissued, sha256=hashlib.sha256(b"re-issued " + reissued.sha256.encode()).hexdigest(),
                      letter=replace(reissued.letter, letter_date=later),
                      source_uri=reissued.source_uri + ".reissued", parsed_at=day2)
    write_raw(warehouse, [*new, replace(reparsed, letter=shorter, parsed_at=day2), redated])
    query(warehouse, "update raw.letters set _superseded_by = ? where _sha256 = ?",
          [new[0].sha256, superseded.sha256])
    assert run_dbt(settings, ["build"]) == 0
    _snapshot(warehouse, "incremental")
    (after,) = query(warehouse, "select count(*) from marts.fct_findings")[0]
    assert after == before + sum(len(r.letter.findings) for r in new) - 1 - len(superseded.letter.findings)
    assert query(warehouse, "select count(*) from marts.fct_inspections") == [(len(first) + len(new) - 1,)]
    assert query(warehouse, "select count(*) from marts.bridge_findings_themes where _sha256 = ?",
                 [superseded.sha256]) == [(0,)]
    assert query(warehouse, "select letter_version, is_corrected from marts.fct_inspections "
                 "where _sha256 = ?", [redated.sha256]) == [(2, True)]

    assert run_dbt(settings, ["build", "--full-refresh"]) == 0
    _snapshot(warehouse, "full")
    for table in mart_tables():
        assert _differences(warehouse, table, "incremental", "full") == 0, table
    assert query(warehouse, "select count(*) from main.bridge_findings_themes_full")[0][0] > 0
