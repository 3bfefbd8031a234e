"""`ofsted run`'s pieces that need no Airflow run: settings passed on to the DAG file, the
validate tasks' alert, and the refusal of a mode it cannot run."""

from __future__ import annotations

import json
from pathlib import Path

from ingest.alerts import alert_on_dq_failure
from ingest.settings import ENV, Settings


def test_the_dag_file_rebuilds_exactly_the_settings_of_the_command(tmp_path):
    s = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)}).with_overrides(
        inbox_dir=tmp_path / "inbox", work_warehouse=tmp_path / "w.duckdb",
        alert_channels=("log", "webhook"), alert_email_to=("a@example.org", "b@example.org"),
        smtp_starttls=True, http_allowed_hosts=("example.org",), batch_size=7)
    env = s.to_env()
    assert set(env) <= {v.env for v in ENV.values()}
    assert Settings.from_env(env) == s


def _dq(success: bool) -> dict:
    failure = {"table": "raw.letters", "expectation": "expect_column_values_to_be_between",
               "column": "days_to_letter", "detail": "letter within 120 days - 1 of 4 rows"}
    failures = [] if success else [failure]
    return {"success": success, "evaluated": 20, "failed": len(failures), "failures": failures,
            "data_docs": "/srv/report/.staging/run-1/data_docs/index.html"}


def test_passing_expectations_send_nothing(tmp_path):
    s = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)})
    assert alert_on_dq_failure(s, "run-1", "raw tables", _dq(True), {"new": 4}) is False
    assert not s.alert_log.exists()


def test_failed_expectations_alert_with_run_rule_counts_and_docs(tmp_path):
    s = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)})
    counts = {"new": 4, "duplicate": 1, "rejected": 0, "rejections": [], "batches": 1}
    assert alert_on_dq_failure(s, "run-1", "raw tables", _dq(False), counts, "validate_raw") is True
    [entry] = [json.loads(line) for line in Path(s.alert_log).read_text().splitlines()]
    text = json.dumps(entry)
    assert entry["run_id"] == "run-1"
    assert "1 of 20 checks failed on the raw tables" in text
    assert "letter within 120 days" in text
    assert "/srv/report/.staging/run-1/data_docs/index.html" in text
    assert '"new": 4' in text and '"failed": 1' in text and '"evaluated": 20' in text
    assert "rejections" not in text  # lists are left out of the counts
