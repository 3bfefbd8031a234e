"""DAG integrity, asserted on the real DagBag: it loads, and it is scheduled, retried, pooled
and wired as the README says."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.settings import PROJECT_ROOT, Settings
from orchestration.steps import DAG_ID, POOL

DAGS = PROJECT_ROOT / "dags"
DUCKDB_TASKS = {"fetch", "load_raw", "validate_raw", "dbt", "validate_marts", "dbt_docs", "publish"}
DATA_DIR_TASKS = DUCKDB_TASKS | {"report"}  # the report writes the report dir, reads the published file


@pytest.fixture(scope="module")
def bag():
    from orchestration.runner import ensure_airflow_db

    ensure_airflow_db(Settings.from_env())  # conftest points AIRFLOW_HOME at a temp dir
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="dags-folder")


@pytest.fixture(scope="module")
def dag(bag):
    assert bag.import_errors == {}
    d = bag.get_dag(DAG_ID)
    assert d is not None
    return d


def test_dagbag_has_exactly_the_nightly_dag_and_no_import_errors(bag):
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == [DAG_ID]  # the notifier module beside it is not a DAG file


def test_scheduled_at_two_in_the_morning_london_time(dag):
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    tt = coerce_to_core_timetable(dag.timetable)
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.dagrun_timeout == dt.timedelta(hours=4)

    def next_run(after: dt.datetime) -> dt.datetime:
        last = DataInterval(after, after)
        info = tt.next_dagrun_info(last_automated_data_interval=last,
                                   restriction=TimeRestriction(earliest=None, latest=None, catchup=True))
        return info.run_after

    utc = dt.UTC
    assert next_run(dt.datetime(2026, 1, 10, 12, tzinfo=utc)) == dt.datetime(2026, 1, 11, 2, tzinfo=utc)
    # summer time: 02:00 BST is 01:00 UTC
    assert next_run(dt.datetime(2026, 7, 10, 12, tzinfo=utc)) == dt.datetime(2026, 7, 11, 1, tzinfo=utc)


def test_every_task_retries_with_backoff_times_out_and_alerts(dag):
    from orchestration.notifiers import AlertNotifier

    for task in dag.tasks:
        assert task.execution_timeout is not None and task.execution_timeout <= dt.timedelta(hours=1), task
        callbacks = task.on_failure_callback or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert any(isinstance(c, AlertNotifier) for c in callbacks), task.task_id
        if task.task_id in ("validate_raw", "validate_marts"):
            assert task.retries == 0  # a failed expectation is not retried: it alerts and fails the run
        else:
            assert task.retries == 2, task.task_id
            assert task.retry_exponential_backoff > 1, task.task_id
            assert task.max_retry_delay == dt.timedelta(minutes=30), task.task_id


def test_every_task_that_opens_duckdb_is_in_the_one_slot_pool(dag):
    for task in dag.tasks:
        if task.task_id in DUCKDB_TASKS:
            assert task.pool == POOL, task.task_id
        else:
            assert task.pool != POOL, task.task_id  # parse batches and the report may run side by side
    assert {t.task_id for t in dag.tasks if t.pool == POOL} == DUCKDB_TASKS


def test_every_task_that_writes_in_the_data_directory_runs_on_the_warehouse_queue_holding_its_lock(dag):
    """On a real scheduler with several workers, only the workers that mount the data directory
    serve the warehouse queue; the parse batches run anywhere."""
    from orchestration.notifiers import hold_data_dir, let_go_of_data_dir

    queue = Settings.from_env().warehouse_queue
    assert queue == "warehouse"  # the default (OFSTED_WAREHOUSE_QUEUE)
    writers = DATA_DIR_TASKS
    assert {t.task_id for t in dag.tasks if t.queue == queue} == writers
    for task in dag.tasks:
        if task.task_id in writers:
            assert task._pre_execute_hook == hold_data_dir, task.task_id
            assert task._post_execute_hook == let_go_of_data_dir, task.task_id
        else:
            assert getattr(task, "_pre_execute_hook", None) is None, task.task_id
    assert dag.task_dict["parse"].queue != queue and dag.task_dict["batches"].queue != queue


def _chain_order(dag) -> list[str]:
    """The DAG's tasks in the order they run (each has every earlier one upstream)."""
    tasks = sorted(dag.tasks, key=lambda t: len(t.get_flat_relative_ids(upstream=True)))
    for before, after in zip(tasks, tasks[1:], strict=False):
        assert before.task_id in after.get_flat_relative_ids(upstream=True), (before.task_id, after.task_id)
    return [t.task_id for t in tasks]


def test_the_dag_and_rerun_are_built_from_the_one_definition_of_the_night(dag):
    from orchestration.night import RERUN_FROM, night_steps, rerun_steps

    steps = night_steps(Settings.from_env())
    names = [s.name for s in steps]
    assert _chain_order(dag) == names  # every step a task, in the definition's order, and nothing else
    assert RERUN_FROM == "validate_raw"
    assert [s.name for s in rerun_steps(steps)] == names[names.index("validate_raw"):]
    assert [s.name for s in rerun_steps(steps)][:2] == ["validate_raw", "dbt"]
    for step in steps:  # what the definition says is what the task does
        task = dag.task_dict[step.name]
        assert task.retries == step.retries and task.execution_timeout == step.timeout, step.name
        assert {a.name for a in task.outlets} == {name for name, _ in step.emits}, step.name


def test_a_step_added_to_the_definition_is_in_the_dag_and_in_rerun():
    from airflow.sdk import DAG

    from orchestration.night import add_to_dag, night_steps, rerun_steps
    from orchestration.steps import Step

    steps = list(night_steps(Settings.from_env()))
    at = [s.name for s in steps].index("validate_marts")
    extra = Step("check_lineage", lambda night, dq=None: {"ok": True}, "a new check after the marts",
                 inputs={"dq": "validate_raw"}, data_dir=True, work_warehouse=True, retries=0)
    steps.insert(at, extra)
    with DAG("ofsted_letters_nightly_plus_one", schedule=None) as plus:
        add_to_dag(tuple(steps), Settings.from_env())
    order = _chain_order(plus)
    assert order[at - 1:at + 2] == ["dbt", "check_lineage", "validate_marts"]
    task = plus.task_dict["check_lineage"]
    assert task.pool == POOL and task.retries == 0 and "validate_raw" in task.upstream_task_ids
    assert "check_lineage" in [s.name for s in rerun_steps(tuple(steps))]


def test_parse_is_mapped_over_batches(dag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(dag.task_dict["parse"], MappedOperator)
    assert dag.task_dict["parse"].upstream_task_ids == {"batches"}


def test_tags_and_docs(dag):
    assert set(dag.tags) >= {"ofsted", "dbt", "great-expectations", "nightly"}
    assert "fetch -> batches -> parse[n] -> load_raw -> validate_raw -> dbt\n-> validate_marts" in dag.doc_md
    assert dag.owner == "data-team"


def test_one_dbt_build_runs_in_the_tasks_process_between_the_checks(dag):
    """dbt is one plain task (no Cosmos operator, no copy of the project): `dbt build` of the
    whole project in the task's process (orchestration/dbt.py; its behaviour: test_dbt_night)."""
    task = dag.task_dict["dbt"]
    assert type(task).__name__ == "_PythonDecoratedOperator"
    assert task.execution_timeout == dt.timedelta(minutes=60)

    def upstream(task_id: str) -> set[str]:
        return dag.task_dict[task_id].get_flat_relative_ids(upstream=True)

    assert {"fetch", "batches", "parse"} <= upstream("load_raw")
    assert "load_raw" in upstream("validate_raw")
    assert "validate_raw" in upstream("dbt")  # dbt only on checked raw tables
    assert "dbt" in upstream("validate_marts")  # GX after dbt has let go of the file
    assert {"validate_marts", "dbt_docs"} <= upstream("publish")
    assert "publish" in upstream("report")


def _parse_dag_file(env: dict[str, str], project: Path) -> subprocess.CompletedProcess:
    """Import the DAG file in a fresh interpreter against another dbt project dir."""
    code = ("import runpy, sys\n"
            f"sys.path.insert(0, {str(DAGS)!r})\n"
            f"runpy.run_path({str(DAGS / (DAG_ID + '.py'))!r})\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env, "OFSTED_DBT_PROJECT_DIR": str(project),
                               "OFSTED_DBT_PROFILES_DIR": str(PROJECT_ROOT / "dbt_project")})


def test_the_dag_parses_without_reading_dbt(tmp_path):
    """No dbt at DAG parse time: a project without its target directory (no manifest, no saved
    parse) parses in a fresh interpreter, and its one dbt task is there."""
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project,
                    ignore=shutil.ignore_patterns("logs", "dbt_packages", "target"))
    done = _parse_dag_file({}, project)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (project / "target").exists()


@pytest.mark.slow  # runs dbt (a seed)
def test_release_lets_another_connection_open_the_file_after_dbt_in_this_process(tmp_path):
    """What the callback is for: in an in-process night (and under dag.test()) every step shares
    one process."""
    import duckdb
    from dbt.cli.main import dbtRunner

    from ingest.warehouse.build import release_dbt_duckdb

    settings = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)})
    env = {"OFSTED_WORK_WAREHOUSE": str(settings.work_warehouse)}
    settings.work_warehouse.parent.mkdir(parents=True)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        res = dbtRunner().invoke([
            "seed", "--select", "finding_themes", "--quiet",
            "--project-dir", str(settings.dbt_project_dir), "--profiles-dir", str(settings.dbt_profiles_dir),
            "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")])
        assert res.success
        with pytest.raises(duckdb.Error):  # dbt-duckdb still holds it: a read-only open is refused
            duckdb.connect(str(settings.work_warehouse), read_only=True)
        release_dbt_duckdb()
        con = duckdb.connect(str(settings.work_warehouse), read_only=True)
        assert con.execute("select count(*) from reference.finding_themes").fetchone()[0] > 0
        con.close()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_assets_for_the_raw_tables_and_the_published_warehouse(dag):
    raw = {a.name for a in dag.task_dict["load_raw"].outlets}
    assert raw >= {"ofsted.raw.letters", "ofsted.raw.findings", "ofsted.raw.rejected_documents"}
    assert [a.name for a in dag.task_dict["publish"].outlets] == ["ofsted.published_warehouse"]


def test_an_alert_for_a_task_that_failed_without_an_exception_says_why(tmp_path, monkeypatch):
    """Under a scheduler a task can fail outside its own process (the executor or scheduler fails
    it); its callback then gets no exception. The alert names the reason all the same."""
    import json

    from orchestration.notifiers import AlertNotifier

    alerts = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("OFSTED_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OFSTED_ALERT_LOG", str(alerts))
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "logs"))

    class TI:
        dag_id, run_id, task_id, map_index = DAG_ID, "manual__x", "load_raw", -1
        try_number, state = 2, "failed"

    def detail() -> str:
        return json.loads(alerts.read_text().splitlines()[-1])["failures"][0]["detail"]

    # the scheduler's message, where Airflow passes it on
    AlertNotifier().notify({"ti": TI(), "run_id": "manual__x", "reason": "Executor CeleryExecutor reported "
                            "that the task instance finished with state failed"})
    assert detail().startswith("Executor CeleryExecutor reported")
    # the last error of this try's own log
    log = tmp_path / "logs" / f"dag_id={DAG_ID}" / "run_id=manual__x" / "task_id=load_raw" / "attempt=2.log"
    log.parent.mkdir(parents=True)
    log.write_text(json.dumps({"level": "info", "event": "starting"}) + "\n" + json.dumps(
        {"level": "error", "event": "Task failed with exception", "error_detail": [
            {"exc_type": "AirflowException",
             "exc_value": "Invalid auth token: Signature verification failed"}]}))
    AlertNotifier().notify({"ti": TI(), "run_id": "manual__x"})
    assert detail() == "AirflowException: Invalid auth token: Signature verification failed"
    # nothing at all: still not a bare "failed"
    log.unlink()
    AlertNotifier().notify({"ti": TI(), "run_id": "manual__x"})
    assert "failed before it ran" in detail() and "try 2" in detail()


def test_a_verdict_fails_its_task_at_once_as_the_step_raised_it():
    """A step's verdict (failed expectations, failed dbt tests) is plain Python in the night's
    steps (an in-process night never imports Airflow); a DAG task raises it as an
    AirflowFailException (no retry) of the same name, message and attributes."""
    from airflow.sdk.exceptions import AirflowFailException

    from orchestration.notifiers import as_task_failure
    from orchestration.steps import DataQualityFailed, DbtTestsFailed, Verdict, reason_of

    dq = DataQualityFailed("1 of 8 raw expectations failed\nexpect_x", result={"failed": 1})
    for verdict in (dq, DbtTestsFailed("dbt build: 1 test(s) failed: t")):
        failure = as_task_failure(verdict)
        assert isinstance(failure, AirflowFailException) and isinstance(failure, type(verdict))
        assert isinstance(failure, Verdict) and not isinstance(verdict, AirflowFailException)
        assert type(failure).__name__ == type(verdict).__name__ and str(failure) == str(verdict)
        assert (failure.result, failure.alert_sent) == (verdict.result, verdict.alert_sent)
        assert reason_of(failure) == reason_of(verdict)  # the night history's reason: its own words
    assert as_task_failure(dq).alert_sent and as_task_failure(dq).result == {"failed": 1}
    assert type(as_task_failure(dq)) is type(as_task_failure(DataQualityFailed("again")))  # one class each


def test_dbt_gets_the_nights_id_and_date_with_or_without_a_logical_date():
    """dim_dates ends the year after the night's date: the logical date of a scheduled night, and
    for a run triggered without one (the REST API's default) its run_after; dbt gets it, and the
    night's run_id (its on-run-end hook records test results under it), as environment
    variables read when a node runs, so that a new night does not make dbt parse again."""
    from types import SimpleNamespace

    from ingest.warehouse.build import night_env
    from orchestration.night import night_of

    settings = Settings.from_env()
    scheduled = SimpleNamespace(logical_date=dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC),
                                run_after=dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC), run_type="scheduled")
    manual = SimpleNamespace(logical_date=None, run_after=dt.datetime(2027, 1, 5, 9, 30, tzinfo=dt.UTC),
                             run_type="manual")
    night = night_of(settings, {"dag_run": scheduled, "run_id": "scheduled__1"}, "fetch")
    assert night_env(night.run_date, night.run_id) == {"OFSTED_RUN_DATE": "2026-12-01",
                                                       "OFSTED_RUN_ID": "scheduled__1"}
    night = night_of(settings, {"dag_run": manual, "run_id": "manual__2"}, "fetch")
    assert night_env(night.run_date, night.run_id) == {"OFSTED_RUN_DATE": "2027-01-05",
                                                       "OFSTED_RUN_ID": "manual__2"}


def test_the_nights_values_reach_dbt_only_through_night_value():
    """A night passes its id and date to dbt as environment variables (`night_env`), read by the
    macro `night_value` when a node runs; a model or macro that read them with `var()` would
    need command-line `--vars`, which make dbt parse the whole project again every night."""
    import re

    project = PROJECT_ROOT / "dbt_project"
    direct = re.compile(r"""var\(\s*['"](run_id|run_date)['"]""")
    readers = [str(p.relative_to(project)) for p in project.rglob("*.sql")
               if "target" not in p.parts and direct.search(p.read_text(encoding="utf-8"))]
    assert readers == [], f"read night_value(...) instead of var(...) in {readers}"
