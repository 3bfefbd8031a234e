"""The night's dbt step: one `dbt build` on dbt's saved parse, a failing test that fails it at
once and is named, a re-run that rebuilds only what is needed, and docs from the build's own
manifest without compiling again.

One warehouse for the module (the real letters, written as the loader does), built in order
by the tests below: they are steps of one story (first night, a later night, a broken night,
the fix), each asserting what the data team would check.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
from _dbt_support import dbt_settings, query, real_letters, write_raw

from ingest.controls import dq_text
from ingest.nights import find_night
from ingest.warehouse.build import FAILED_STATE, build_night, night_env
from ingest.warehouse.publish import generate_dbt_docs
from orchestration.dbt import build, dbt_steps
from orchestration.steps import DbtTestsFailed, Night, run_step

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dbt_night")
    settings = dbt_settings(tmp)
    write_raw(settings.work_warehouse, real_letters())
    return settings


def _dbt_log(settings) -> str:
    return (settings.dbt_target_dir / "logs" / "dbt.log").read_text(encoding="utf-8", errors="replace")


def _last_year(settings) -> dt.date:
    return query(settings.work_warehouse, "select max(date_day) from marts.dim_dates")[0][0]


def test_a_first_night_builds_everything(night):
    out = build(night, "scheduled__2026-12-01", "2026-12-01")
    assert out["selection"] == "everything" and not out["failed"]
    assert out["statuses"].get("success", 0) > 20 and out["statuses"].get("pass", 0) > 100
    verdict = out["by_stage"]["dbt"]  # stage dbt's verdict: its data tests, as audit.dq_checks holds them
    assert verdict["success"] and verdict["failed"] == 0 and verdict["evaluated"] > 100
    # dbt's saved parse records the warehouse's path: the prebuilt one (made for the default
    # warehouse) serves `make run`; a warehouse elsewhere is parsed once, at its first night
    assert (night.dbt_target_dir / "partial_parse.msgpack").is_file()
    assert _last_year(night) == dt.date(2027, 12, 31)  # dim_dates: to the end of the year after it


def test_a_later_nights_date_reaches_dbt_without_a_parse(night):
    before = len(_dbt_log(night))
    build(night, "scheduled__2031-03-02", "2031-03-02")
    log = _dbt_log(night)[before:]
    assert "Unable to do partial parsing" not in log and "Nothing changed" in log
    assert _last_year(night) == dt.date(2032, 12, 31)


def test_a_failing_test_fails_the_night_at_once_and_is_named(night):
    con = duckdb.connect(str(night.work_warehouse))  # a finding of no letter
    con.execute("insert into raw.findings select * replace ('no-such-letter' as _sha256) "
                "from raw.findings limit 1")
    con.close()
    (step,) = dbt_steps(night)  # the night's dbt step, through the step-runner that records it
    run = Night(night, "scheduled__2031-03-03", "2031-03-03", "scheduled", first=step.name)
    with pytest.raises(DbtTestsFailed) as failed:  # a verdict: no retry (in the DAG: AirflowFailException)
        run_step(step, run, {})
    message = str(failed.value)
    assert "test(s) failed: " in message and "source_relationships_raw_findings__sha256" in message
    assert "Got 1 result" in message  # what it found
    assert (night.dbt_target_dir / FAILED_STATE / "run_results.json").is_file()
    # the night history has stage dbt's verdict although no later step ran: `ofsted status`
    # says which test failed, not "dbt -" as if no test had run
    dq = find_night(night, run.run_id)["dq"]
    assert dq_text(dq).startswith("raw -, dbt FAILED "), dq_text(dq)
    assert "Got 1 result" in dq["dbt"]["failures"][0], dq  # what found rows first, then what was skipped


def test_the_rerun_after_the_fix_rebuilds_only_what_is_needed(night):
    con = duckdb.connect(str(night.work_warehouse))
    con.execute("delete from raw.findings where _sha256 = 'no-such-letter'")
    con.close()
    code, results, selection = build_night(night, night_env("2031-03-03"))
    assert code == 0, [r for r in results if r["status"] not in ("success", "pass")]
    # what failed or was skipped, with its lineage, and what reads the raw table that changed
    assert "+result:fail+" in selection and "source:raw.findings+" in selection
    assert "source:raw.letters+" not in selection  # its rows did not change
    ran = {r["unique_id"] for r in results}
    assert any("source_relationships_raw_findings__sha256" in u for u in ran)
    assert "model.ofsted_letters.fct_findings" in ran
    assert not any(u.startswith("seed.") for u in ran)  # the seeds read no raw table and did not fail
    assert not (night.dbt_target_dir / FAILED_STATE).exists()  # forgotten once it passed
    code, results, selection = build_night(night, night_env("2031-03-03"))
    assert code == 0 and selection is None and any(r["unique_id"].startswith("seed.") for r in results)
    # the night leaves dbt's unit tests to `ofsted build` and CI (tests/test_dbt.py)
    assert not any(r["resource_type"] == "unit_test" for r in results)


def test_docs_come_from_the_builds_own_manifest_without_compiling_again(night, tmp_path):
    before = len(_dbt_log(night))
    out = generate_dbt_docs(night, tmp_path / "dbt_docs")
    log = _dbt_log(night)[before:]
    assert "Unable to do partial parsing" not in log
    manifest = json.loads((out / "manifest.json").read_text())
    compiled = manifest["nodes"]["model.ofsted_letters.fct_inspections"].get("compiled_code") or ""
    assert "select" in compiled.lower() and "{{" not in compiled  # the build's compiled SQL
    catalog = json.loads((out / "catalog.json").read_text())
    assert "model.ofsted_letters.fct_inspections" in catalog["nodes"]
    page = (out / "index.html").read_text()
    assert "fct_inspections" in page and "MANIFEST.JSON INLINE DATA" not in page


def test_a_target_dir_without_a_saved_parse_gets_the_prebuilt_one(tmp_path):
    from ingest.warehouse.build import SAVED_PARSE, reuse_saved_parse

    settings = dbt_settings(tmp_path)
    prebuilt = settings.dbt_project_dir / "target" / SAVED_PARSE
    reuse_saved_parse(settings)
    saved: Path = settings.dbt_target_dir / SAVED_PARSE
    assert saved.read_bytes() == prebuilt.read_bytes()
    saved.write_bytes(b"tonight's")  # a target dir's own saved parse is never replaced
    reuse_saved_parse(settings)
    assert saved.read_bytes() == b"tonight's"
