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


# --- the step-runner: the one writer of the night history -------------------------------------

def _steps():
    from orchestration.steps import Step

    def boom(night, dq=None):
        raise ValueError("the step broke\nfirst detail\nsecond detail")

    return (
        Step("load_raw", lambda night: {"new": 2, "rejected": 1, "rejections": [{"x": 1}]}, "load",
             records="counts"),
        Step("validate_raw", lambda night, counts=None: {"success": True, "evaluated": 3 + counts["new"],
                                                         "failed": 0}, "check",
             inputs={"counts": "load_raw"}, records="dq.raw"),
        Step("verdict", lambda night: {"checks": 14, "warnings": 1}, "a new step", records="verdict"),
        Step("publish", lambda night: {"warehouse": "w"}, "publish", publishes=True),
        Step("report", boom, "report", inputs={"dq": "validate_raw"}),
    )


def test_the_step_runner_records_start_results_publish_and_the_failure_in_order(tmp_path):
    import pytest

    from ingest.nights import read_nights
    from orchestration.steps import Night, StepFailed, run_steps

    s = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)})
    night = Night(s, "rerun__1", "2026-12-06", "rerun", "load_raw")
    lines: list[str] = []
    with pytest.raises(StepFailed) as failed:
        run_steps(_steps(), night, lines.append, lambda step: f" (trace of {step} in the log)")
    assert failed.value.step == "report"
    assert str(failed.value) == "ValueError: the step broke (trace of report in the log)"
    assert [ln.split()[0] for ln in lines if not ln.startswith("       ")] == ["ok", "ok", "ok", "ok", "FAIL"]
    assert lines[-2:] == ["       first detail", "       second detail"]
    [n] = read_nights(s)
    assert (n["run_id"], n["trigger"], n["state"]) == ("rerun__1", "rerun", "failed")
    assert n["failed_task"] == "report"
    assert n["counts"] == {"new": 2, "rejected": 1}  # what the load said (its lists left out)
    assert n["dq"]["raw"] == {"success": True, "evaluated": 5, "failed": 0}  # the input reached the step
    assert n["verdict"] == {"checks": 14, "warnings": 1}  # any step's dict, under the field it names
    assert n["published"] is True and n["warehouse_run_id"] == "rerun__1"  # it failed after publishing
    assert not (s.report_dir / "failed_night").exists()  # so nothing failed is published beside it


def test_a_failed_check_records_its_results_and_publishes_the_failed_night(tmp_path):
    import pytest

    from ingest.nights import read_nights
    from orchestration.steps import Night, Step, StepFailed, run_steps

    class Failed(Exception):
        verdict = True  # like DataQualityFailed: its message is the reason

        def __init__(self, result):
            super().__init__("1 of 4 raw expectations failed")
            self.result = result

    def check(night, counts=None):
        raise Failed({"success": False, "evaluated": 4, "failed": 1,
                      "failures": [{"detail": "letter within 120 days"}]})

    s = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)})
    steps = (Step("validate_raw", check, "check", records="dq.raw", retries=0),
             Step("publish", lambda night: {}, "publish", publishes=True))
    with pytest.raises(StepFailed):
        run_steps(steps, Night(s, "r2", "2026-12-06", "rerun", "validate_raw"), lambda line: None,
                  lambda step: "")
    [n] = read_nights(s)
    assert (n["state"], n["failed_task"], n["reason"]) == ("failed", "validate_raw",
                                                             "1 of 4 raw expectations failed")
    assert n["dq"]["raw"]["failed"] == 1 and n["dq"]["raw"]["failures"] == ["letter within 120 days"]
    assert n["published"] is False
    night = json.loads((s.report_dir / "failed_night" / "night.json").read_text())
    assert (night["run_id"], night["failed_task"]) == ("r2", "validate_raw")


STOPPED_RUN = """
import os, signal, sys, time
import orchestration.night
from orchestration.steps import Step

def stopped(night):  # a supervisor stops the night mid-step (systemd, docker stop, timeout, kill)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)

orchestration.night.night_steps = lambda settings: (
    Step("fetch", lambda night: [], "fetch", data_dir=True),
    Step("dbt", stopped, "a long step", data_dir=True),
    Step("publish", lambda night: {}, "publish", data_dir=True, publishes=True))
from ingest.cli import main
sys.exit(main(["run", "--data-dir", sys.argv[1], "--inbox", sys.argv[1]]))
"""


def test_a_run_stopped_by_sigterm_is_recorded_as_interrupted_and_lets_go_of_the_data_dir(tmp_path):
    """SIGTERM, the signal every supervisor stops a process with, stops `ofsted run` as ^C does:
    the night is recorded as interrupted at its step (not left "running" until the next night),
    the lock file is left empty, and the command says so in one line."""
    from ingest.lock import holder, lock_path
    from ingest.nights import read_nights

    done = _script(STOPPED_RUN, str(tmp_path), timeout=120, exit_code=143)
    assert done.stderr.splitlines()[-1] == "ofsted run: stopped (SIGTERM)"
    assert "Traceback" not in done.stdout + done.stderr
    assert "  STOP" in done.stdout and "dbt  -- interrupted (Terminated: SIGTERM)" in done.stdout
    s = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)})
    [n] = read_nights(s)
    assert (n["state"], n["failed_task"]) == ("failed", "dbt")
    assert n["reason"] == "interrupted (Terminated: SIGTERM)"
    assert holder(s) is None and lock_path(s).read_bytes() == b""  # no stale holder to take over


KILLED_RUN = """
import os, signal, sys
from ingest.settings import Settings
from orchestration.steps import Night, Step, run_steps

def killed(night):  # kill -9, the OOM killer, a lost machine: nothing of the run can say so
    os.kill(os.getpid(), signal.SIGKILL)

settings = Settings.from_env({"OFSTED_DATA_DIR": sys.argv[1]})
steps = (Step("fetch", lambda night: [], "fetch"), Step("dbt", killed, "a long step"))
run_steps(steps, Night(settings, "killed", "2026-12-06", "manual", "fetch"), print, lambda step: "")
"""


def test_a_night_killed_mid_step_is_closed_as_failed_at_that_step(tmp_path):
    """A night whose process was killed (SIGKILL) is closed as failed when the next one starts:
    at the step it was in, not at "?"."""
    from ingest.nights import read_nights, start_night

    _script(KILLED_RUN, str(tmp_path), timeout=120, exit_code=-9)
    s = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)})
    start_night(s, "next", "manual")
    killed = next(n for n in read_nights(s) if n["run_id"] == "killed")
    assert (killed["state"], killed["failed_task"]) == ("failed", "dbt")
    assert "never finished" in killed["reason"]


# --- the run's log file ------------------------------------------------------------------------

LOGGING_RUN = """
import logging, subprocess, sys
from pathlib import Path
from orchestration.logs import console_to_log

log, max_bytes, lines = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
task_log = logging.getLogger("airflow.task")  # a library logger with its own handler, as Airflow's
task_log.addHandler(logging.StreamHandler(sys.stderr))
with console_to_log(log, max_bytes=max_bytes, backups=2) as say:
    say("  FAIL   2.0s  validate_raw  -- DataQualityFailed: 1 of 8 raw expectations failed")
    task_log.error("Task failed with exception: 100% broken")
    subprocess.run([sys.executable, "-c", "import sys; print('08:57:06  Done. PASS=40 WARN=0'); "
                    "print('Traceback (most recent call last):', file=sys.stderr)"], check=True)
    for n in range(lines):
        print(f"line {n:03d} " + "x" * 40)
print("after the block: the console again")
"""


def _script(script: str, *args: str, timeout: float = 60, exit_code: int = 0):
    """Run `script` in a fresh interpreter in the project (its own file descriptors 1 and 2), which
    must end with `exit_code` (-N: killed by signal N)."""
    import subprocess
    import sys

    from ingest.settings import PROJECT_ROOT

    done = subprocess.run([sys.executable, "-c", script, *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == exit_code, done.stderr
    return done


def _logging_run(tmp_path, max_bytes: int, lines: int):
    log = tmp_path / "logs" / "ofsted.log"
    return _script(LOGGING_RUN, str(log), str(max_bytes), str(lines)), log


def test_the_run_log_holds_the_commands_lines_library_logs_and_childrens_output(tmp_path):
    done, log = _logging_run(tmp_path, 10**6, 0)
    # the console gets the command's own lines only
    assert done.stdout.splitlines() == [
        "  FAIL   2.0s  validate_raw  -- DataQualityFailed: 1 of 8 raw expectations failed",
        "after the block: the console again"]
    assert done.stderr == ""
    assert log.read_text().splitlines() == [
        "  FAIL   2.0s  validate_raw  -- DataQualityFailed: 1 of 8 raw expectations failed",
        "Task failed with exception: 100% broken", "08:57:06  Done. PASS=40 WARN=0",
        "Traceback (most recent call last):"]


HOLDING_RUN = """
import subprocess, sys, time
from pathlib import Path
from orchestration.logs import console_to_log

with console_to_log(Path(sys.argv[1])) as say:
    # a child that outlives the block holding the pipe (as multiprocessing's resource tracker does)
    child = subprocess.Popen([sys.executable, "-c",
                              "import time; print('from the child', flush=True); time.sleep(600)"])
    time.sleep(0.5)
    say("the run's last line")
    t0 = time.monotonic()
print(f"block ended after {time.monotonic() - t0:.1f}s, child running: {child.poll() is None}")
child.kill()
"""


def test_the_run_log_does_not_wait_for_a_child_that_outlives_the_run(tmp_path):
    """A process started in the block may hold the pipe open for as long as it likes: the block
    ends when the pipe is idle (every `ofsted run` waited 10 s for the resource tracker's end of
    file), and what the child wrote before it is in the log."""
    from orchestration.logs import _DRAIN_AFTER

    log = tmp_path / "ofsted.log"
    done = _script(HOLDING_RUN, str(log), timeout=120)
    last = done.stdout.splitlines()[-1]
    waited = float(last.split("after ")[1].split("s,")[0])
    assert last.endswith("child running: True") and waited <= _DRAIN_AFTER + 1, done.stdout
    assert log.read_text().splitlines() == ["from the child", "the run's last line"]


def test_the_run_log_is_rotated_past_its_size_keeping_two_backups(tmp_path):
    _, log = _logging_run(tmp_path, 4000, 300)  # ~15 kB: rolled over more than twice
    files = sorted(log.parent.iterdir())
    assert [f.name for f in files] == ["ofsted.log", "ofsted.log.1", "ofsted.log.2"]
    assert all(f.stat().st_size <= 4000 for f in files)
    newest, older = log.read_text().splitlines(), (log.parent / "ofsted.log.1").read_text().splitlines()
    assert newest[-1] == "line 299 " + "x" * 40
    assert int(older[-1].split()[1]) + 1 == int(newest[0].split()[1])  # no line lost between files
