"""GX suites on a small warehouse: good data passes, each broken rule is caught by its expectation.

Each failing case breaks one rule with one SQL statement on an otherwise valid warehouse
(`tests/_dq_support.py`) and checks that exactly the expected expectation(s) fail, with a
detail a data engineer can act on (the row's authority, the observed value).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _dq_support import execute, make_warehouse, query, sha

from expectations import MART_SUITES, RAW_SUITES
from expectations.validate import WarehouseUnavailable, suite_module, validate_marts, validate_raw
from ingest.settings import Settings


@pytest.fixture(scope="module")
def suite_sizes() -> dict[str, int]:
    """Expectations per suite, from the suites themselves (imports GX once per module)."""
    return {name: len(suite_module(name).build_suite().expectations) for name in RAW_SUITES + MART_SUITES}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    warehouse = make_warehouse(tmp_path / "warehouse" / "work.duckdb")
    return Settings.from_env({}).with_overrides(
        work_warehouse=warehouse, report_dir=tmp_path / "report", data_dir=tmp_path
    )


def failed(result: dict) -> set[tuple[str, str, str | None]]:
    return {(f["table"], f["expectation"], f["column"]) for f in result["failures"]}


def detail(result: dict, expectation: str) -> str:
    return next(f["detail"] for f in result["failures"] if f["expectation"] == expectation)


# --- good data --------------------------------------------------------------------------------

def test_good_data_passes_every_expectation(settings: Settings, suite_sizes: dict[str, int]) -> None:
    raw = validate_raw(settings, "good-night")
    marts = validate_marts(settings, "good-night")

    assert raw["failures"] == [] and raw["success"] is True and raw["failed"] == 0
    assert marts["failures"] == [] and marts["success"] is True and marts["failed"] == 0
    assert raw["evaluated"] == sum(suite_sizes[s] for s in RAW_SUITES)
    assert marts["evaluated"] == sum(suite_sizes[s] for s in MART_SUITES)
    json.dumps(raw), json.dumps(marts)  # XCom-safe


# --- raw.letters / raw.findings ---------------------------------------------------------------

RAW_CASES = {
    "letter 200 days after the inspection": (
        f"update raw.letters set letter_date = inspection_end_date + 200 where _sha256 = '{sha(2)}'",
        {("raw.letters", "expect_column_values_to_be_between", "days_end_to_letter")},
        "Dorset County Council",
    ),
    "inspection ends before it starts": (
        f"update raw.letters set inspection_end_date = inspection_start_date - 2 where _sha256 = '{sha(3)}'",
        {("raw.letters", "expect_column_pair_values_a_to_be_greater_than_b",
          "inspection_end_date,inspection_start_date")},
        "City of York Council",
    ),
    "unknown finding category": (
        f"update raw.findings set category = 'recommendation' where _sha256 = '{sha(1)}'"
        " and category = 'satisfactory'",
        {("raw.findings", "expect_column_values_to_be_in_set", "category")},
        "recommendation",
    ),
    "letter without a date": (
        f"update raw.letters set letter_date = null where _sha256 = '{sha(5)}'",
        {("raw.letters", "expect_column_values_to_not_be_null", "letter_date")},
        "Dudley Metropolitan Borough Council",
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
        {("raw.letters", "expect_column_values_to_be_between", "findings_loaded"),
         ("raw.letters", "expect_column_pair_values_to_be_equal", "finding_count,findings_loaded")},
        "Royal Borough of Kingston upon Thames",
    ),
    "finding of a letter that is not loaded": (
        "insert into raw.findings (_sha256, category, heading, ordinal, finding_text)"
        " values ('ffff', 'strength', 'Strengths', 1, 'An orphan finding.')",
        {("raw.findings", "expect_column_values_to_not_be_null", "letter_sha256")},
        "ffff",
    ),
}


def test_superseded_letters_are_not_judged(settings: Settings) -> None:
    """An old version replaced by a corrected letter from the same URI stays in raw but is history."""
    execute(
        settings.work_warehouse,
        f"update raw.letters set letter_date = inspection_end_date + 300, _superseded_by = '{sha(1)}'"
        f" where _sha256 = '{sha(2)}'",
        f"update raw.findings set category = 'recommendation' where _sha256 = '{sha(2)}'"
        " and category = 'satisfactory'",
    )
    result = validate_raw(settings, "superseded")
    assert result["failures"] == []


def test_late_letter_detail_says_how_many_and_which(settings: Settings) -> None:
    execute(settings.work_warehouse, RAW_CASES["letter 200 days after the inspection"][0])
    text = detail(validate_raw(settings, "late"), "expect_column_values_to_be_between")
    assert "0-120 days" in text
    assert "1 of 5 rows unexpected" in text
    assert f"_sha256={sha(2)[:12]}..." in text and "days_end_to_letter=200" in text


# --- marts --------------------------------------------------------------------------------------

MART_CASES = {
    "duplicate authority and start date": (
        "update marts.fct_inspections as i set inspection_start_date = o.inspection_start_date,"
        " inspection_end_date = o.inspection_end_date from marts.fct_inspections as o"
        " where i.inspection_key = 5 and o.inspection_key = 1",
        {("marts.fct_inspections", "expect_compound_columns_to_be_unique",
          "authority_key,inspection_start_date")},
        "Dudley Metropolitan Borough Council",
    ),
    "counts on fct_inspections disagree with fct_findings": (
        "update marts.fct_inspections set strength_count = 3 where inspection_key = 2",
        {("marts.fct_inspections", "expect_column_pair_values_to_be_equal",
          "strength_count,fct_findings_strength_count")},
        "Dorset County Council",
    ),
    "inspection with no GSS code": (
        "update marts.fct_inspections set authority_key = -1 where inspection_key = 4",
        {("marts.fct_inspections", "expect_column_values_to_not_be_null", "authority_gss_code")},
        "Royal Borough of Kingston upon Thames",
    ),
    "inspection whose authority key matches nothing": (
        "update marts.fct_inspections set authority_key = null where inspection_key = 3",
        {("marts.fct_inspections", "expect_column_values_to_not_be_null", "authority_gss_code")},
        "City of York Council",
    ),
    "letter more than 120 days after the inspection": (
        "update marts.fct_inspections set days_from_inspection_to_letter = 200 where inspection_key = 1",
        {("marts.fct_inspections", "expect_column_values_to_be_between", "days_from_inspection_to_letter")},
        "Dudley Metropolitan Borough Council",
    ),
    "theme coverage below 70%": (
        "delete from marts.bridge_findings_themes where theme_key in (1, 2, 3)",
        {("marts.fct_findings", "expect_column_mean_to_be_between", "has_theme")},
        "observed 0.3333 (expected 0.7..1)",
    ),
    "duplicate finding key": (
        "update marts.fct_findings set finding_key = 1 where finding_key = 2",
        {("marts.fct_findings", "expect_column_values_to_be_unique", "finding_key"),
         # the bridge now links finding 1 twice to its theme and finding 2 to nothing
         ("marts.bridge_findings_themes", "expect_compound_columns_to_be_unique", "finding_key,theme_key"),
         ("marts.bridge_findings_themes", "expect_column_values_to_not_be_null", "finding_found")},
        "finding_key=",
    ),
    "bridge row pointing at no theme": (
        "insert into marts.bridge_findings_themes values (1, 99)",
        {("marts.bridge_findings_themes", "expect_column_values_to_not_be_null", "theme_found")},
        "theme_key=99",
    ),
    "mart table missing": (
        "drop table marts.dim_inspectors",
        {("marts.dim_inspectors", "expect_table_row_count_to_be_between", None),
         ("marts.dim_inspectors", "expect_column_values_to_not_be_null", "inspector_key"),
         ("marts.dim_inspectors", "expect_column_values_to_be_unique", "inspector_key")},
        "cannot read marts.dim_inspectors",
    ),
    "mart column renamed": (
        "alter table marts.dim_themes rename column theme_key to theme_id",
        {("marts.dim_themes", "expect_column_values_to_not_be_null", "theme_key"),
         ("marts.dim_themes", "expect_column_values_to_be_unique", "theme_key"),
         # the bridge's suite joins dim_themes on theme_key: it cannot be read either
         *(("marts.bridge_findings_themes", e, c) for e, c in (
             ("expect_column_values_to_not_be_null", "finding_key"),
             ("expect_column_values_to_not_be_null", "theme_key"),
             ("expect_compound_columns_to_be_unique", "finding_key,theme_key"),
             ("expect_column_values_to_not_be_null", "finding_found"),
             ("expect_column_values_to_not_be_null", "theme_found")))},
        "theme_key",
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
    assert all(named in f["detail"] for f in result["failures"]), result["failures"]


def test_unknown_category_in_fct_findings_also_breaks_the_counts(settings: Settings) -> None:
    execute(settings.work_warehouse, "update marts.fct_findings set category = 'other' where finding_key = 1")
    result = validate_marts(settings, "category")
    assert failed(result) == {
        ("marts.fct_findings", "expect_column_values_to_be_in_set", "category"),
        # finding 1 was inspection 1's first area for development
        ("marts.fct_inspections", "expect_column_pair_values_to_be_equal",
         "area_for_development_count,fct_findings_area_for_development_count"),
    }


# --- results in the warehouse -----------------------------------------------------------------

def test_one_audit_row_per_expectation_and_rerun_replaces(settings: Settings) -> None:
    execute(settings.work_warehouse, RAW_CASES["unknown finding category"][0])
    first = validate_raw(settings, "night-1")
    marts = validate_marts(settings, "night-1")
    again = validate_raw(settings, "night-1")
    other = validate_raw(settings, "night-2")

    rows = query(
        settings.work_warehouse,
        "select run_id, count(*), count(distinct suite), sum(case when success then 0 else 1 end)"
        " from audit.dq_results group by run_id order by run_id",
    )
    assert rows == [
        ("night-1", first["evaluated"] + marts["evaluated"], len(RAW_SUITES + MART_SUITES), 1),
        ("night-2", other["evaluated"], len(RAW_SUITES), 1),
    ]
    assert again == first

    (bad,) = query(
        settings.work_warehouse,
        "select table_name, expectation_type, column_name, kwargs->>'$.column', unexpected_count,"
        " element_count, details, validated_at is not null from audit.dq_results"
        " where run_id = 'night-2' and not success",
    )
    assert bad[:6] == ("raw.findings", "expect_column_values_to_be_in_set", "category", "category", 1, 30)
    assert "no unknown finding category" in bad[6] and "recommendation" in bad[6]
    assert bad[7] is True


def test_validates_while_the_process_holds_another_connection(settings: Settings) -> None:
    """In an in-process Airflow run dbt-duckdb may still hold the file open (default config)."""
    import duckdb

    held = duckdb.connect(str(settings.work_warehouse))
    try:
        result = validate_marts(settings, "in-process")
        assert result["success"] is True
        (rows,) = held.execute("select count(*) from audit.dq_results where run_id = 'in-process'").fetchone()
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
    execute(settings.work_warehouse, RAW_CASES["letter 200 days after the inspection"][0])
    result = validate_raw(settings, "default-docs")
    index = settings.report_dir / "data_docs" / "index.html"
    assert result["data_docs"] == str(index) and index.is_file()
    (page,) = (settings.report_dir / "data_docs" / "validations" / "raw_letters").rglob("*.html")
    assert "days_end_to_letter" in page.read_text()


# --- the real thing: sample letters loaded and built by dbt --------------------------------------

@pytest.mark.slow
def test_suites_pass_on_the_real_dbt_build_of_the_sample_letters(tmp_path: Path) -> None:
    from ingest.raw.pipeline import run_load
    from ingest.warehouse.build import run_dbt

    settings = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)}).with_overrides(
        dbt_target_dir=tmp_path / "dbt_target"
    )
    loaded = run_load(settings)
    assert loaded["new"] >= 3
    assert run_dbt(settings, ["build"]) == 0

    raw = validate_raw(settings, "sample-night")
    marts = validate_marts(settings, "sample-night")
    assert raw["failures"] == [] and marts["failures"] == []
    (count,) = query(settings.work_warehouse, "select count(*) from audit.dq_results")[0]
    assert count == raw["evaluated"] + marts["evaluated"]

    (name,) = query(settings.work_warehouse, "select authority_name from raw.letters limit 1")[0]
    execute(
        settings.work_warehouse,
        f"update raw.letters set letter_date = inspection_end_date + 200 where authority_name = '{name}'",
    )
    late = validate_raw(settings, "sample-night")
    assert failed(late) == {("raw.letters", "expect_column_values_to_be_between", "days_end_to_letter")}
    assert f"authority_name={name}" in late["failures"][0]["detail"]
