"""The whole night (`ofsted run`: the night's steps in-process), three nights in a row
on temporary dirs, shared by the tests below (one module fixture):

1. the sample letters: marts built, checked and published, report beside them;
2. the same inbox again, while another process holds the published warehouse open and keeps
   querying it: nothing changes, and the reader is never blocked nor sees a half-built state;
3. a letter dated 200 days after its inspection (crafted from a real one): the raw-table
   expectations fail, the alert reaches a real webhook and a real SMTP server on 127.0.0.1,
   the run exits non-zero, the published warehouse is byte-for-byte yesterday's, and the
   failed night's DQ results and data docs are published beside it (`failed_night/`);
   `ofsted status` says so and exits 1.
No run prints a traceback.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from _airflow_support import (
    SAMPLE_LETTERS,
    ofsted_run,
    run_env,
    run_id_of,
    settings_for,
    start_reader,
)

from ingest.nights import read_nights
from ingest.raw.pipeline import batch_path
from ingest.settings import PROJECT_ROOT
from ingest.warehouse.publish import sha256_file, staging_report_dir

# three nights in one module fixture: about 20 s each on a quiet 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

TABLES = ("raw.letters", "raw.findings", "raw.copy_recipients", "raw.rejected_documents",
          "marts.dim_authorities", "marts.dim_inspectors", "marts.dim_dates", "marts.dim_themes",
          "marts.fct_inspections", "marts.fct_findings", "marts.bridge_findings_themes")


def snapshot(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"select * from {t} order by all").fetchall() for t in TABLES}
    finally:
        con.close()


def ofsted_status(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest.cli", "status"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def late_letter(src: Path) -> str:
    """A real letter moved a year on, its letter dated after the programme's years (2008-2014,
    or within 120 days after): the raw contract fails before dbt runs."""
    text = src.read_text()
    assert "17 June 2010" in text and "18 and 19 May 2010" in text
    return text.replace("17 June 2010", "5 December 2016").replace("18 and 19 May 2010", "18 and 19 May 2011")


@pytest.fixture(scope="module")
def nights(tmp_path_factory, module_webhook, module_mailbox):
    root = tmp_path_factory.mktemp("nights")
    inbox = root / "inbox"
    shutil.copytree(SAMPLE_LETTERS, inbox)
    hook, mailbox = module_webhook, module_mailbox
    env = run_env(root, inbox,
                  OFSTED_ALERT_CHANNELS="log,webhook,email",
                  OFSTED_ALERT_WEBHOOK_URL=hook.url,
                  OFSTED_SMTP_HOST="127.0.0.1",
                  OFSTED_SMTP_PORT=str(mailbox.port),
                  OFSTED_ALERT_EMAIL_TO="data-team@example.org")
    settings = settings_for(env)
    first = ofsted_run(env)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    snap1 = snapshot(settings.published_warehouse)
    status1 = ofsted_status(env)

    stop = root / "stop-reading"
    reader = start_reader(settings.published_warehouse, stop)
    second = ofsted_run(env)
    stop.touch()
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    reading = json.loads(out.strip().splitlines()[-1])
    snap2 = snapshot(settings.published_warehouse)
    published_sha = sha256_file(settings.published_warehouse)
    report_before = (settings.report_dir / "index.html").read_text()

    (inbox / "late_letter.txt").write_text(late_letter(inbox / "000_0d07fcbfe49cee7c.txt"))
    third = ofsted_run(env)
    status3 = ofsted_status(env)
    yield SimpleNamespace(settings=settings, first=first, second=second, third=third, snap1=snap1,
                          snap2=snap2, reading=reading, published_sha=published_sha,
                          report_before=report_before, hook=hook, mailbox=mailbox,
                          status1=status1, status3=status3)


def test_first_night_builds_checks_and_publishes_the_sample_letters(nights):
    out = nights.first.stdout
    counts = {t: len(rows) for t, rows in nights.snap1.items()}
    assert counts["marts.fct_inspections"] == 3
    assert counts["marts.fct_findings"] == 50
    assert counts["raw.letters"] == 3 and counts["raw.rejected_documents"] == 0
    assert counts["marts.dim_inspectors"] == 3
    assert counts["marts.bridge_findings_themes"] > 0 and counts["marts.dim_themes"] > 0
    # a line per task as it finishes, then the summary
    for task in ("fetch", "parse[0]", "load_raw", "validate_raw", "dbt",
                 "validate_marts", "dbt_docs", "publish", "report"):
        assert f"  {task}\n" in out, task
    assert "FAIL" not in out
    assert ("letters: new 3, unchanged 0, duplicate 0, rejected 0 "
            "(of 3 new or changed documents fetched)") in out
    assert "fct_inspections 3" in out and "fct_findings 50" in out
    assert re.search(r"data quality: raw ok \(\d+\), dbt ok \(\d+\), marts ok \(\d+\)", out), out
    assert f"published warehouse: {nights.settings.published_warehouse}" in out
    assert "warehouse schema version 2: a new warehouse\n" in out  # nothing migrated
    # the night's steps ran in this process, without Airflow (`ofsted run --airflow` is its dag.test)
    assert not (nights.settings.airflow_home / "airflow.db").exists()


def test_first_night_publishes_report_data_docs_and_dbt_docs_beside_the_warehouse(nights):
    site = nights.settings.report_dir
    assert site.is_symlink()
    for page in ("index.html", "data_docs/index.html", "dbt_docs/index.html"):
        assert (site / page).is_file(), page
    assert re.search(r"Data quality: all \d+ checks passed", nights.report_before)
    assert "Findings 50" in " ".join(re.sub(r"<[^>]+>", " ", nights.report_before).split())
    # the run's staging dir was moved into place, not left behind
    assert not staging_report_dir(nights.settings, run_id_of(nights.first.stdout)).exists()
    # and its parse batches (scratch, re-derivable from the archive) were cleared
    assert not batch_path(nights.settings, run_id_of(nights.first.stdout), 0).parent.exists()


def test_second_night_changes_nothing(nights):
    out = nights.second.stdout
    assert nights.second.returncode == 0, out + nights.second.stderr[-3000:]
    assert ("letters: new 0, unchanged 0, duplicate 0, rejected 0 "
            "(of 0 new or changed documents fetched)") in out
    assert nights.snap2 == nights.snap1


def test_a_reader_during_the_night_is_never_blocked_and_never_sees_half_a_build(nights):
    seen, errors = nights.reading["seen"], nights.reading["errors"]
    assert errors == []
    assert len(seen) > 20  # it kept reading for the whole run
    assert {"held", "fresh"} == {who for who, *_ in seen}
    for _, inspections, counted_findings, findings in seen:
        assert (inspections, findings) == (3, 50)
        assert counted_findings == findings  # the two marts always agree: one consistent build


def test_a_night_that_breaks_a_data_quality_rule_alerts_and_publishes_nothing(nights):
    third = nights.third
    assert third.returncode == 1
    run_id = run_id_of(third.stdout)
    assert f"run {run_id}: FAILED" in third.stdout
    failed = [ln for ln in third.stdout.splitlines() if ln.strip().startswith("FAIL")]
    assert len(failed) == 1 and "validate_raw  -- DataQualityFailed" in failed[0], failed
    second_run = run_id_of(nights.second.stdout)
    assert f"published warehouse unchanged: {nights.settings.published_warehouse} (from {second_run})" \
        in third.stdout
    # yesterday's warehouse, byte for byte
    assert sha256_file(nights.settings.published_warehouse) == nights.published_sha
    # beside it, the failed night's DQ results and data docs; the last good night's dbt docs stay
    site = nights.settings.report_dir
    assert f"this run's DQ results and data docs, published beside it: {site / 'failed_night'}" \
        in third.stdout
    night = json.loads((site / "failed_night" / "night.json").read_text())
    assert (night["run_id"], night["state"], night["failed_task"]) == (run_id, "failed", "validate_raw")
    assert re.fullmatch(r"\d+ of \d+ raw expectations failed", night["reason"]), night["reason"]
    assert night["warehouse_run_id"] == second_run and night["published"] is False
    assert night["dq"]["raw"]["success"] is False and night["dq"]["raw"]["failed"] >= 1
    assert (site / "failed_night" / "data_docs" / "index.html").is_file()
    assert (site / "dbt_docs" / "index.html").is_file() and (site / "index.html").is_file()


def test_the_night_history_and_status_follow_every_night(nights):
    first, second, third = (run_id_of(n.stdout) for n in (nights.first, nights.second, nights.third))
    history = read_nights(nights.settings)
    assert [n["run_id"] for n in history] == [third, second, first]
    assert [n["state"] for n in history] == ["failed", "success", "success"]
    assert history[2]["counts"]["new"] == 3 and history[1]["counts"]["new"] == 0
    assert history[2]["dq"]["raw"]["success"] and history[2]["dq"]["marts"]["success"]
    assert history[0]["counts"]["new"] == 1 and "marts" not in history[0]["dq"]
    assert nights.status1.returncode == 0, nights.status1.stdout + nights.status1.stderr
    assert f"last night {first}: succeeded" in nights.status1.stdout
    out = nights.status3.stdout
    assert nights.status3.returncode == 1
    assert f"last night {third}: FAILED at validate_raw" in out
    assert "letters: new 1, unchanged 0, duplicate 0, rejected 0" in out
    assert "running now: nothing" in out and "quarantined documents: none" in out


def test_no_run_prints_a_traceback(nights):
    for run in (nights.first, nights.second, nights.third, nights.status1, nights.status3):
        assert "Traceback" not in run.stdout and "Traceback" not in run.stderr


def test_the_alert_reaches_the_webhook_and_the_mailbox_naming_run_rule_counts_and_docs(nights):
    run_id = run_id_of(nights.third.stdout)
    docs = staging_report_dir(nights.settings, run_id) / "data_docs"
    assert (docs / "index.html").is_file()  # the failed night's data docs are kept where the alert says

    assert len(nights.hook.bodies) == 1, nights.hook.bodies  # one alert: the notifier does not repeat it
    body = json.dumps(nights.hook.bodies[0])
    assert run_id in body
    assert "120" in body and "raw.letters" in body  # the rule that failed, on which table
    assert str(docs) in body
    assert '"new": 1' in body or "new: 1" in body or "new 1" in body

    assert len(nights.mailbox.messages) == 1
    mail = nights.mailbox.messages[0]
    assert mail["To"] == "data-team@example.org"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert run_id in text and "120" in text and str(docs) in text

    log = [json.loads(line) for line in nights.settings.alert_log.read_text().splitlines()]
    assert [entry["run_id"] for entry in log] == [run_id]


def test_the_log_file_the_run_names_holds_the_runs_task_dbt_and_gx_logs(nights):
    log = nights.settings.log_file
    assert f"logs (steps, dbt, GX): {log}" in nights.first.stdout
    text = log.read_text()
    first = run_id_of(nights.first.stdout)
    # each step starting, the progress lines and the summary
    assert f"fetch of {first}: starting" in text and f"parse[0] of {first}: starting" in text
    assert "  ok  " in text and "s  dbt\n" in text and f"run {first}: SUCCESS" in text
    # dbt's output: the night's one build, in the task's process
    assert "Running with dbt=" in text and re.search(r"Done\. PASS=\d+ WARN=\d+ ERROR=0", text)
    # GX: the suites' results
    assert re.search(r"DQ raw_letters,raw_findings: \d+ expectations, 0 failed", text)
    # the third night's failure: its one line and its trace
    third = text[text.index(f"run {run_id_of(nights.second.stdout)}: SUCCESS"):]
    assert "FAIL" in third and "DataQualityFailed" in third and "Traceback (most recent call last)" in third
