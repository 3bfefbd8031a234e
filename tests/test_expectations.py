"""GX suites on a small warehouse: good data passes, each broken rule is caught by its expectation.

Each failing case breaks one rule with one SQL statement on an otherwise valid warehouse
(`tests/_dq_support.py`) and checks that exactly the expected expectation(s) fail, with a
detail a data engineer can act on (the row's authority, the observed value). The results land
in `audit.dq_checks`, the night's one verdict, and are read back through
`ingest.warehouse.verdict`: a warning (severity warn) is named and counted, never a failure.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from _dq_support import execute, query, sha

from expectations import MART_SUITES, RAW_SUITES, Rules
from expectations.validate import WarehouseUnavailable, load_suite, validate_marts, validate_raw
from ingest.settings import PROJECT_ROOT, Settings
from ingest.warehouse.rules import RulesError, dq_thresholds


@pytest.fixture
def settings(dq_warehouse: Path, tmp_path: Path) -> Settings:
    return Settings.from_env({}).with_overrides(
        work_warehouse=dq_warehouse, report_dir=tmp_path / "report", data_dir=tmp_path,
        published_warehouse=tmp_path / "published" / "warehouse.duckdb",  # none yet: the first night
    )


@pytest.fixture
def suite_sizes(settings: Settings) -> dict[str, int]:
    """Expectations per suite, from the suites themselves and the project's thresholds."""
    rules = Rules(dq_thresholds(settings))
    return {
        name: len(load_suite(name).module.build_suite(rules).expectations)
        for name in RAW_SUITES + MART_SUITES
    }


def expectation(check: dict) -> str:
    """The GX expectation type of a verdict's check (`<suite>.<type>(<column>)`)."""
    return check["check"].split(".", 1)[1].split("(", 1)[0]


def failed(result: dict) -> set[tuple[str, str, str | None]]:
    return {(f["table"], expectation(f), f["column"]) for f in result["failures"]}


def detail(result: dict, expectation_type: str) -> str:
    return next(f["detail"] for f in result["failures"] if expectation(f) == expectation_type)


# --- good data --------------------------------------------------------------------------------

def test_good_data_passes_every_expectation(settings: Settings, suite_sizes: dict[str, int]) -> None:
    raw = validate_raw(settings, "good-night")
    marts = validate_marts(settings, "good-night")

    assert raw["failures"] == [] and raw["success"] is True and raw["failed"] == 0
    assert marts["failures"] == [] and marts["success"] is True and marts["failed"] == 0
    assert raw["warnings"] == marts["warnings"] == []
    assert raw["evaluated"] == raw["passed"] == sum(suite_sizes[s] for s in RAW_SUITES)
    # validate_marts returns the night's whole verdict so far: the raw checks and the marts'
    assert marts["evaluated"] == marts["passed"] == sum(suite_sizes[s] for s in RAW_SUITES + MART_SUITES)
    assert marts["final"] is True and marts["stages"] == ["raw", "marts"]
    json.dumps(raw), json.dumps(marts)  # XCom-safe


# --- raw.letters / raw.findings: the ingest contract --------------------------------------------

RAW_CASES = {
    "letter dated after the programme": (
        f"update raw.letters set letter_date = date '2016-03-01' where _sha256 = '{sha(2)}'",
        {("raw.letters", "expect_column_values_to_be_between", "letter_date")},
        "Dorset County Council",
    ),
    "inspection dated outside 2008-2014": (
        "update raw.letters set inspection_start_date = date '2019-05-01', inspection_end_date = date"
        f" '2019-05-02', letter_date = date '2019-05-20' where _sha256 = '{sha(4)}'",
        {("raw.letters", "expect_column_values_to_be_between", c)
         for c in ("inspection_start_date", "inspection_end_date", "letter_date")},
        "Royal Borough of Kingston upon Thames",
    ),
    "letter with too few findings": (
        f"delete from raw.findings where _sha256 = '{sha(4)}' and category <> 'strength'",
        {("raw.letters", "expect_column_values_to_be_between", "findings_loaded")},
        "Royal Borough of Kingston upon Thames",
    ),
    "no findings loaded at all": (
        "delete from raw.findings",
        {("raw.findings", "expect_table_row_count_to_be_between", None),
         ("raw.letters", "expect_column_values_to_be_between", "findings_loaded")},
        "5 of 5 rows unexpected",
    ),
}


def test_an_undated_letter_is_a_warning_named_and_counted_not_a_failure(settings: Settings) -> None:
    execute(settings.work_warehouse, f"update raw.letters set letter_date = null where _sha256 = '{sha(5)}'")
    result = validate_raw(settings, "undated")
    assert result["success"] is True and result["failures"] == [] and result["failed"] == 0
    (warning,) = result["warnings"]
    assert (warning["check"], warning["table"], warning["count"], warning["severity"]) == (
        "raw_letters.expect_column_values_to_not_be_null(letter_date)", "raw.letters", 1, "warn")
    assert warning["sample"] == [{"_sha256": sha(5), "authority_name": "Dudley Metropolitan Borough Council",
                                  "letter_date": "null"}]
    assert "the parser found the letter's date" in warning["detail"]
    assert query(settings.work_warehouse, "select status, severity, failing_count from audit.dq_checks "
                 "where run_id = 'undated' and column_name = 'letter_date' and status <> 'pass'") == [
        ("warn", "warn", 1)]
    assert result["passed"] == result["evaluated"] - 1


def test_versions_and_the_letter_timing_rule_are_not_judged_on_raw(settings: Settings) -> None:
    """Which letter is first, current or superseded, and the 120-day rule, are dbt's (versions
    exist only there): a letter dated 300 days after its inspection - say a correction
    re-issued under the same file name, superseding the first - passes the raw contract."""
    execute(
        settings.work_warehouse,
        f"update raw.letters set letter_date = inspection_end_date + 300, _superseded_by = '{sha(1)}'"
        f" where _sha256 = '{sha(2)}'",
        f"update raw.letters set letter_date = inspection_end_date + 300 where _sha256 = '{sha(3)}'",
    )
    result = validate_raw(settings, "late-letters")
    assert result["failures"] == [] and result["warnings"] == []
    columns = {c for (c,) in query(settings.work_warehouse,
                                   "select distinct column_name from audit.dq_checks where stage = 'raw'")}
    assert not {c for c in columns if c and ("days" in c or "version" in c)}, columns


def test_a_quarantined_document_is_not_judged_and_a_release_brings_it_back(settings: Settings) -> None:
    """The data team's quarantine clears a raw-DQ failure at the next check; a release undoes it."""
    execute(settings.work_warehouse, RAW_CASES["letter dated after the programme"][0])
    expected = {("raw.letters", "expect_column_values_to_be_between", "letter_date")}
    assert failed(validate_raw(settings, "late")) == expected
    execute(settings.work_warehouse,
            f"insert into raw.quarantine values ('{sha(2)}', null, 'not the letter we want', 'quarantine',"
            " 'analyst', timestamptz '2026-12-01 09:00:00+00')")
    assert validate_raw(settings, "quarantined")["failures"] == []
    execute(settings.work_warehouse,
            f"insert into raw.quarantine values ('{sha(2)}', null, 'checked with Ofsted', 'release',"
            " 'analyst', timestamptz '2026-12-01 10:00:00+00')")
    assert failed(validate_raw(settings, "released")) == expected


def test_failure_detail_says_how_many_and_which(settings: Settings) -> None:
    execute(settings.work_warehouse, RAW_CASES["letter with too few findings"][0])
    result = validate_raw(settings, "few")
    text = detail(result, "expect_column_values_to_be_between")
    assert "between 3 and 40 findings" in text
    assert "1 of 5 rows unexpected" in text
    assert f"_sha256={sha(4)[:12]}..." in text and "Royal Borough of Kingston upon Thames" in text
    (failure,) = result["failures"]
    assert failure["count"] == 1
    kingston = "Royal Borough of Kingston upon Thames"
    assert failure["sample"] == [{"_sha256": sha(4), "authority_name": kingston, "findings_loaded": "2"}]


def test_the_volume_check_counts_every_mart_dbt_builds_from_the_manifest() -> None:
    from expectations import mart_volumes

    built = {f"marts.{p.stem}" for p in (PROJECT_ROOT / "dbt_project" / "models" / "marts").glob("*.sql")}
    assert set(mart_volumes.TABLES) == built
    assert {"marts.inspections_wide", "marts.authority_comparisons", "marts.fct_finding_changes",
            "marts.search_vocabulary", "marts.search_rules"} <= built
    assert [t for t, may in mart_volumes.project_marts().items() if may] == ["marts.fct_finding_changes"]


def test_an_unreadable_manifest_is_a_one_line_error(tmp_path: Path) -> None:
    from expectations.mart_volumes import mart_tables

    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(RuntimeError, match="cannot list the marts from the dbt manifest") as caught:
        mart_tables(tmp_path / "manifest.json")
    assert "\n" not in str(caught.value)


# --- marts: volumes and distributions -------------------------------------------------------------

MART_CASES = {
    "an inspection whose authority the register lacks": (
        "update marts.fct_inspections set authority_key = -1 where inspection_key = 4",
        {("marts.fct_inspections", "expect_column_mean_to_be_between", "has_unmatched_authority")},
        "observed 0.2 (expected 0..0.05)",
    ),
    "an authority key that matches nothing": (
        "update marts.fct_inspections set authority_key = null where inspection_key in (2, 3)",
        {("marts.fct_inspections", "expect_column_mean_to_be_between", "has_unmatched_authority")},
        "observed 0.4 (expected 0..0.05)",
    ),
    "first letters late on average": (
        "update marts.fct_inspections set days_from_inspection_to_first_letter = 90"
        " where inspection_key <= 3",
        {("marts.fct_inspections", "expect_column_median_to_be_between",
          "days_from_inspection_to_first_letter")},
        "observed 90 (expected 0..60)",
    ),
    "two thirds of findings without a theme": (
        "delete from marts.bridge_findings_themes where theme_key in (1, 2, 3)",
        {("marts.fct_findings", "expect_column_mean_to_be_between", "has_no_theme")},
        "observed 0.6667 (expected 0..0.3)",
    ),
    "an empty mart": (
        "delete from marts.dim_themes",
        {("marts.*", "expect_column_values_to_be_between", "row_count"),
         ("marts.*", "expect_column_pair_values_a_to_be_greater_than_b", "row_count,min_row_count")},
        "table_name=marts.dim_themes",
    ),
    "mart table missing": (
        "drop table marts.dim_inspectors",
        {("marts.*", "expect_table_row_count_to_be_between", None),
         ("marts.*", "expect_column_values_to_be_between", "row_count"),
         ("marts.*", "expect_column_pair_values_a_to_be_greater_than_b", "row_count,min_row_count")},
        "cannot read marts.*: Catalog Error: Table with name dim_inspectors does not exist",
    ),
    "mart column renamed": (
        "alter table marts.fct_findings rename column finding_key to finding_id",
        {("marts.fct_findings", "expect_column_mean_to_be_between", "has_no_theme")},
        "cannot read marts.fct_findings",
    ),
}


CASES = [("raw", name) for name in RAW_CASES] + [("marts", name) for name in MART_CASES]


@pytest.mark.parametrize(("layer", "case"), CASES, ids=[f"{layer}: {case}" for layer, case in CASES])
def test_rule_caught_by_its_expectation(settings: Settings, layer: str, case: str) -> None:
    sql, expected, named = (RAW_CASES if layer == "raw" else MART_CASES)[case]
    execute(settings.work_warehouse, sql)

    validate = validate_raw if layer == "raw" else validate_marts
    result = validate(settings, f"{layer}-{case}")

    assert result["success"] is False
    assert failed(result) == expected
    assert result["failed"] == len(expected)
    assert any(named in f["detail"] for f in result["failures"]), result["failures"]
    assert result["warnings"] == []


def test_a_mart_may_lose_a_few_rows_against_the_published_warehouse_but_not_many(settings: Settings) -> None:
    settings.published_warehouse.parent.mkdir(parents=True)
    shutil.copyfile(settings.work_warehouse, settings.published_warehouse)  # last night: 30 findings
    execute(settings.work_warehouse, "delete from marts.fct_findings where finding_key in (29, 30)")
    assert validate_marts(settings, "small-drop")["failures"] == []  # 28 of 30: within 10%

    execute(settings.work_warehouse, "delete from marts.fct_findings where finding_key > 24")
    result = validate_marts(settings, "big-drop")  # 24 of 30
    assert failed(result) == {
        ("marts.*", "expect_column_pair_values_a_to_be_greater_than_b", "row_count,min_row_count"),
    }
    text = result["failures"][0]["detail"]
    assert "no mart shrinks by more than 10% of its published rows" in text
    assert "table_name=marts.fct_findings, published_row_count=30" in text


def test_an_unreadable_published_warehouse_leaves_the_volume_check_without_a_baseline(
    settings: Settings, caplog: pytest.LogCaptureFixture,
) -> None:
    settings.published_warehouse.parent.mkdir(parents=True)
    settings.published_warehouse.write_bytes(b"not a database" * 100)
    result = validate_marts(settings, "no-baseline")
    assert result["failures"] == []
    assert f"volume checks without a baseline: cannot open {settings.published_warehouse}" in caplog.text


def test_thresholds_are_the_dbt_project_vars(settings: Settings, tmp_path: Path) -> None:
    """Changing a var in dbt_project.yml changes what GX accepts (one place for each threshold)."""
    project = tmp_path / "dbt_project"
    shutil.copytree(settings.dbt_project_dir, project, ignore=shutil.ignore_patterns("target", "logs"))
    config = yaml.safe_load((project / "dbt_project.yml").read_text())
    assert dq_thresholds(settings)["min_findings_per_letter"] == 3
    config["vars"]["min_findings_per_letter"] = 7
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config))
    strict = settings.with_overrides(dbt_project_dir=project)

    result = validate_raw(strict, "strict")  # every letter has 6 findings
    assert failed(result) == {("raw.letters", "expect_column_values_to_be_between", "findings_loaded")}
    assert "between 7 and 40 findings" in result["failures"][0]["detail"]

    del config["vars"]["max_share_findings_without_theme"]
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config))
    with pytest.raises(RulesError, match="vars: lacks max_share_findings_without_theme"):
        validate_marts(strict, "no-var")


# --- results in the warehouse -----------------------------------------------------------------

def test_one_audit_row_per_expectation_and_rerun_replaces(settings: Settings) -> None:
    execute(settings.work_warehouse, RAW_CASES["letter dated after the programme"][0])
    first = validate_raw(settings, "night-1")
    marts = validate_marts(settings, "night-1")
    again = validate_raw(settings, "night-1")
    other = validate_raw(settings, "night-2")

    rows = query(
        settings.work_warehouse,
        "select run_id, count(*), count(distinct suite), count(*) filter (where status = 'fail'),"
        " count(distinct check_name) from audit.dq_checks group by run_id order by run_id",
    )
    assert rows == [
        ("night-1", marts["evaluated"], len(RAW_SUITES + MART_SUITES), 1, marts["evaluated"]),
        ("night-2", other["evaluated"], len(RAW_SUITES), 1, other["evaluated"]),
    ]
    def timeless(verdict: dict) -> dict:
        return {k: timeless(v) if isinstance(v, dict) else v for k, v in verdict.items() if k != "checked_at"}

    assert timeless(again) == timeless(first)

    (bad,) = query(
        settings.work_warehouse,
        "select stage, suite, check_name, table_name, column_name, severity, failing_count, checked_count,"
        " failing_sample, details, failing_rows from audit.dq_checks"
        " where run_id = 'night-2' and status = 'fail'",
    )
    assert bad[:8] == (
        "raw", "raw_letters", "raw_letters.expect_column_values_to_be_between(letter_date)", "raw.letters",
        "letter_date", "error", 1, 5,
    )
    assert json.loads(bad[8]) == [{"_sha256": sha(2), "authority_name": "Dorset County Council",
                                   "letter_date": "2016-03-01"}]
    assert "letters were written 2008-2014" in bad[9] and "Dorset County Council" in bad[9]
    assert bad[10].endswith("data_docs/index.html")


def test_an_audit_table_of_another_shape_gives_its_own_error_in_one_line(settings: Settings) -> None:
    execute(settings.work_warehouse, "drop table audit.dq_checks",
            "create table audit.dq_checks (run_id varchar)")
    with pytest.raises(WarehouseUnavailable) as err:
        validate_raw(settings, "drifted")
    message = str(err.value)
    assert message.startswith(f"cannot write DQ results to {settings.work_warehouse}: ")
    assert 'Binder Error: Referenced column "suite" not found' in message  # not a failed rollback
    assert "transaction" not in message and "\n" not in message


def test_validates_while_the_process_holds_another_connection(settings: Settings) -> None:
    """In an in-process Airflow run dbt-duckdb may still hold the file open (default config)."""
    import duckdb

    held = duckdb.connect(str(settings.work_warehouse))
    try:
        result = validate_marts(settings, "in-process")
        assert result["success"] is True
        (rows,) = held.execute("select count(*) from audit.dq_checks where run_id = 'in-process'").fetchone()
        assert rows == result["evaluated"]
    finally:
        held.close()


def test_unreadable_warehouse_raises_one_line(tmp_path: Path) -> None:
    missing = Settings.from_env({}).with_overrides(
        work_warehouse=tmp_path / "nope.duckdb", report_dir=tmp_path / "report"
    )
    with pytest.raises(WarehouseUnavailable, match="work warehouse not found: .*nope.duckdb"):
        validate_raw(missing, "r")
    assert not (tmp_path / "nope.duckdb").exists()

    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(WarehouseUnavailable, match="cannot open") as err:
        validate_marts(missing.with_overrides(work_warehouse=garbage), "r")
    assert "\n" not in str(err.value)


# --- data docs ----------------------------------------------------------------------------------

def test_data_docs_hold_raw_and_marts_of_the_run(settings: Settings, tmp_path: Path) -> None:
    staging = tmp_path / "staging" / "data_docs"
    validate_raw(settings, "docs-run", docs_dir=staging)
    validate_raw(settings, "docs-run", docs_dir=staging)  # re-run: replaced, not added
    result = validate_marts(settings, "docs-run", docs_dir=staging)

    index = Path(result["data_docs"])
    assert index == staging / "index.html" and index.is_file()
    html = index.read_text()
    for suite in RAW_SUITES + MART_SUITES:
        assert suite in html
        pages = list((staging / "validations" / suite).rglob("*.html"))
        assert len(pages) == 1, pages
    assert not (settings.report_dir / "data_docs").exists()


def test_data_docs_default_to_the_report_dir(settings: Settings) -> None:
    execute(settings.work_warehouse, RAW_CASES["letter with too few findings"][0])
    result = validate_raw(settings, "default-docs")
    index = settings.report_dir / "data_docs" / "index.html"
    assert result["data_docs"] == str(index) and index.is_file()
    (page,) = (settings.report_dir / "data_docs" / "validations" / "raw_letters").rglob("*.html")
    assert "findings_loaded" in page.read_text()


# --- the real thing: sample letters loaded and built by dbt --------------------------------------

@pytest.mark.slow
def test_suites_pass_on_the_real_dbt_build(real_night: Settings, tmp_path: Path) -> None:
    """The sample letters and 40 synthetic ones, loaded and built by dbt (the shared build,
    copied: this test changes a letter), against last night's published copy of itself."""
    settings = real_night.with_overrides(
        work_warehouse=tmp_path / "work.duckdb", report_dir=tmp_path / "report",
        published_warehouse=tmp_path / "published.duckdb",
    )
    shutil.copyfile(real_night.work_warehouse, settings.work_warehouse)
    shutil.copyfile(real_night.published_warehouse, settings.published_warehouse)

    raw = validate_raw(settings, "real-night")
    marts = validate_marts(settings, "real-night")
    assert raw["failures"] == [] and marts["failures"] == []
    (count,) = query(settings.work_warehouse,
                     "select count(*) from audit.dq_checks where run_id = 'real-night'")[0]
    assert count == marts["evaluated"] > raw["evaluated"]

    (name,) = query(settings.work_warehouse,
                    "select authority_name from raw.letters order by _sha256 limit 1")[0]
    execute(
        settings.work_warehouse,
        f"update raw.letters set letter_date = date '2019-01-01' where authority_name = '{name}'",
    )
    late = validate_raw(settings, "real-night")
    assert failed(late) == {("raw.letters", "expect_column_values_to_be_between", "letter_date")}
    assert f"authority_name={name}" in late["failures"][0]["detail"]


@pytest.mark.slow
def test_dbt_warnings_reach_the_nights_verdict_history_status_and_a_warning_alert(
    real_night: Settings, tmp_path: Path,
) -> None:
    """The night's own steps (`orchestration.night`) on the real build (the samples and 40
    synthetic letters, where an authority is inspected twice within 90 days): validate_raw,
    `dbt build` under the night's run id, validate_marts. dbt's warning tests land in the same
    verdict as GX's; the night passes; the history, `ofsted status` and one WARNING alert name
    each warning with its count."""
    from ingest.controls import night_lines
    from ingest.nights import read_nights
    from orchestration.night import night_steps
    from orchestration.steps import Night, run_step

    settings = real_night.with_overrides(
        data_dir=tmp_path, work_warehouse=tmp_path / "work.duckdb", report_dir=tmp_path / "report",
        published_warehouse=tmp_path / "published.duckdb", dbt_target_dir=tmp_path / "dbt_target",
        alert_log=tmp_path / "alerts.jsonl", alert_channels=("log",),
    )
    shutil.copyfile(real_night.work_warehouse, settings.work_warehouse)
    shutil.copyfile(real_night.published_warehouse, settings.published_warehouse)
    # Dorset inspected again 30 days after its sample letter's inspection: the generator inspects an
    # authority at most once in 120 days, so the warning's case is planted here, not left to chance
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    dorset = (PROJECT_ROOT / "data" / "sample_letters" / "000_0d07fcbfe49cee7c.txt").read_text()
    assert "18 and 19 May 2010" in dorset and "17 June 2010" in dorset
    again = dorset.replace("18 and 19 May 2010", "17 and 18 June 2010")
    again = again.replace("17 June 2010", "16 July 2010")
    (inbox / "dorset_again.txt").write_text(again)
    from ingest.raw.pipeline import run_load

    loaded = run_load(settings.with_overrides(inbox_dir=inbox, archive_dir=tmp_path / "archive",
                                              runs_dir=tmp_path / "runs"))
    assert loaded["new"] == 1, loaded
    night = Night(settings, "warned-night", "2026-12-01", "manual", "validate_raw")
    steps = {step.name: step for step in night_steps(settings)}
    assert run_step(steps["validate_raw"], night, {"counts": {"new": 0}})["success"] is True
    built = run_step(steps["dbt"], night, {})  # the night's own dbt step: warnings do not fail it
    assert built["failed"] == [] and any("inspected_again" in w for w in built["warned"]), built
    verdict = run_step(steps["validate_marts"], night, {"counts": {"new": 0}})  # did not raise

    assert verdict["success"] is True and verdict["failed"] == 0 and verdict["final"] is True
    assert verdict["stages"] == ["raw", "dbt", "marts"]
    warnings = {w["check"]: w for w in verdict["warnings"]}
    close = warnings["dq_authority_inspected_again_within_min_days"]
    (pairs,) = query(settings.work_warehouse, """
        select count(*) from marts.fct_inspections as a join marts.fct_inspections as b
          on a.authority_key = b.authority_key and a.inspection_key < b.inspection_key
         and abs(b.inspection_start_date - a.inspection_start_date) < 90""")[0]
    assert close["count"] == pairs > 0 and close["stage"] == "dbt" and close["severity"] == "warn"
    assert close["failing_rows"] == "dbt_test__audit.dq_authority_inspected_again_within_min_days"
    assert "earlier_inspection_key" in close["sample"][0] and len(close["sample"]) == min(pairs, 5)
    for w in verdict["warnings"]:  # each names where every failing row is, and it holds them all
        if w["stage"] == "dbt":
            held = query(settings.work_warehouse, f"select count(*) from {w['failing_rows']}")
            assert held == [(w["count"],)]
    assert verdict["passed"] == verdict["evaluated"] - len(warnings) > 200

    (recorded,) = read_nights(settings, limit=1)  # one entry per stage
    assert set(recorded["dq"]) == {"raw", "dbt", "marts"}
    assert f"dq_authority_inspected_again_within_min_days: {pairs} rows" in recorded["dq"]["dbt"]["warnings"]
    lines = "\n".join(night_lines([{**recorded, "state": "success"}]))
    assert f"dbt ok ({recorded['dq']['dbt']['evaluated']}, {len(warnings)} warning" in lines
    assert f"warning (dbt): dq_authority_inspected_again_within_min_days: {pairs} rows" in lines

    (alert,) = [json.loads(line) for line in settings.alert_log.read_text().splitlines()]
    assert (alert["severity"], alert["failures"], alert["task_id"]) == ("warning", [], "validate_marts")
    assert {w["check"]: w["count"] for w in alert["warnings"]} == {k: w["count"] for k, w in warnings.items()}
