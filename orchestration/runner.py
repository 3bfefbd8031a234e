"""`ofsted run`: the night once, now, in this process; `ofsted rerun`: the same night from the
raw checks on; `ofsted run --airflow`: the night through Airflow's own `dag.test()`.

`ofsted run` runs the night's steps (`orchestration.night.night_steps`, the list the DAG is
built from) in order, in this process, through `orchestration.steps.run_steps`: the same
functions, the same night history, the same lock (the command holds it), the same alerts as
the scheduled DAG; what it does not have is what a scheduler adds, retries (a failure fails it
at once: the one running it is watching) and task timeouts. It costs what its work costs:
chosen by measurement (`benchmarks/run_bench.py`), Airflow's `dag.test()` added 8-10 s to a
30 s night of the sample letters (importing Airflow, parsing the DAG twice, serialising it
into the metadata DB, and the in-process execution API around each of the ten tasks).

`ofsted run --airflow` keeps that path for whoever changes the DAG: Airflow keeps its state in
a project-local AIRFLOW_HOME (`.airflow/` by default: a SQLite metadata DB, created on first
use and migrated only when Airflow's version changes), the DAGs folder is the project's
`dags/`, and the one-slot `duckdb_writer` pool is created here (in production: `airflow pools
set duckdb_writer 1 ...`, see docker-compose.yml). Airflow is imported only on that path,
after the environment is set. This package (`orchestration`) holds everything that needs
Airflow; `ingest` never imports it.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.redact import redact_url
from ingest.settings import PROJECT_ROOT, Settings
from orchestration.logs import console_to_log, steps_logging
from orchestration.steps import DAG_ID, POOL, Night, Step, StepFailed, close_night, run_steps, step_line

POOL_DESCRIPTION = "DuckDB allows one writing process per file: every task that opens the warehouse"


# --- environment ---------------------------------------------------------------------------

def airflow_env(settings: Settings) -> dict[str, str]:
    """Airflow's configuration for a local, in-process run."""
    home = settings.airflow_home
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    }


def apply_env(settings: Settings) -> None:
    """Put the settings and Airflow's config in os.environ (before Airflow is imported)."""
    os.environ.update(settings.to_env())
    os.environ.update(airflow_env(settings))
    # the console shows only the command's lines: everything else goes to the log file, so it
    # gets Airflow's task logs at INFO and dbt's usual output (orchestration.logs.console_to_log)
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
    os.environ.setdefault("DBT_QUIET", "false")
    # the DAG file lists the dbt project with `dbt ls` when it is parsed: on a busy machine that
    # takes more than Airflow's default 30 s, and a one-off local run has no reason to give up
    os.environ.setdefault("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "600")


# --- Airflow bootstrap ---------------------------------------------------------------------

def _db_marker(settings: Settings) -> Path:
    return settings.airflow_home / ".ofsted-db-version"


def ensure_airflow_db(settings: Settings) -> bool:
    """Create / migrate the SQLite metadata DB when needed. Returns True when it did work."""
    import airflow

    marker = _db_marker(settings)
    db = settings.airflow_home / "airflow.db"
    if db.exists() and marker.exists() and marker.read_text().strip() == airflow.__version__:
        return False
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    from airflow.utils.db import upgradedb

    upgradedb()
    marker.write_text(airflow.__version__ + "\n")
    return True


def ensure_pool(slots: int = 1) -> None:
    from airflow.models.pool import Pool

    existing = Pool.get_pool(POOL)
    if existing is None or existing.slots != slots:
        Pool.create_or_update_pool(POOL, slots=slots, description=POOL_DESCRIPTION, include_deferred=False)


# --- progress and summary ------------------------------------------------------------------

def _progress_listener(echo: Callable[[str], None]) -> Any:
    from airflow.sdk._shared.listeners import hookimpl

    started: dict[tuple[str, int], float] = {}

    def name(ti: Any) -> str:
        mi = getattr(ti, "map_index", -1)
        return ti.task_id if mi in (None, -1) else f"{ti.task_id}[{mi}]"

    class Progress:
        @hookimpl
        def on_task_instance_running(self, previous_state, task_instance):
            started[(task_instance.task_id, getattr(task_instance, "map_index", -1))] = time.monotonic()

        def _line(self, ti: Any, mark: str, error: BaseException | str | None = None) -> None:
            t0 = started.pop((ti.task_id, getattr(ti, "map_index", -1)), None)
            echo(step_line(mark, time.monotonic() - t0 if t0 is not None else None, name(ti), error))

        @hookimpl
        def on_task_instance_success(self, previous_state, task_instance):
            self._line(task_instance, "ok")

        @hookimpl
        def on_task_instance_failed(self, previous_state, task_instance, error):
            self._line(task_instance, "FAIL", error)

        @hookimpl
        def on_task_instance_skipped(self, previous_state, task_instance):
            self._line(task_instance, "skip")

    return Progress()


def _xcom(run_id: str, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(XComModel.value).where(
                XComModel.dag_id == DAG_ID, XComModel.run_id == run_id,
                XComModel.task_id == task_id, XComModel.key == "return_value")
        ).first()
    if row is None:
        return None
    value = row[0]
    if isinstance(value, str):
        import json

        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def dag_results(run_id: str) -> dict[str, Any]:
    """What `summary_lines` reads, from a DAG run's XComs (`ofsted run --airflow`)."""
    return {name: _xcom(run_id, name) for name in ("fetch", "load_raw", "publish")}


def summary_lines(settings: Settings, run_id: str, state: str, results: dict[str, Any]) -> list[str]:
    """The night's summary from its steps' results (by step name): letters, marts, the
    data-quality verdict, and where its outcome is."""
    counts = results.get("load_raw") or {}
    published = results.get("publish") or {}
    marts = (published.get("warehouse") or {}).get("marts") or {}
    lines = [f"run {run_id}: {state.upper()}"]
    fetched = results.get("fetch")
    c = {k: counts.get(k, "?") for k in ("new", "unchanged", "duplicate", "rejected")}
    lines.append(f"letters: new {c['new']}, unchanged {c['unchanged']}, duplicate {c['duplicate']}, "
                 f"rejected {c['rejected']} (of {len(fetched) if isinstance(fetched, list) else '?'} "
                 "new or changed documents fetched)")
    for r in counts.get("rejections", [])[:20]:
        if isinstance(r, dict):
            uri = r.get("source_uri", r.get("_source_uri", "?"))
            lines.append(f"  rejected {uri}: {r.get('reason', '?')}")
    if marts:
        lines.append("marts: " + ", ".join(f"{t} {n}" for t, n in marts.items()))
    # the night's data-quality verdict as `ofsted status` words it (one reader: the night history)
    from ingest.controls import dq_lines
    from ingest.nights import find_night

    night = find_night(settings, run_id)
    if night is not None:
        lines += dq_lines(night)
    return lines + outcome_lines(settings, run_id, bool(published))


def outcome_lines(settings: Settings, run_id: str, published: bool) -> list[str]:
    """Where the night's outcome is: the warehouse and report, or the failed night's DQ results."""
    from ingest.nights import history_path, last_good_night
    from ingest.warehouse.publish import FAILED_NIGHT_DIR, staging_report_dir

    if published:
        lines = [f"published warehouse: {settings.published_warehouse}",
                 f"report and data docs: {settings.report_dir}"]
    else:
        good = last_good_night(settings)
        lines = [f"published warehouse unchanged: {settings.published_warehouse}"
                 + (f" (from {good['warehouse_run_id']})" if good else " (none published yet)")]
        failed = settings.report_dir / FAILED_NIGHT_DIR
        if (failed / "night.json").is_file() and run_id in (failed / "night.json").read_text():
            lines.append(f"this run's DQ results and data docs, published beside it: {failed}")
        else:
            lines.append(f"this run's data docs: {staging_report_dir(settings, run_id)}")
    lines.append(f"night recorded in {history_path(settings)} (`ofsted status`)")
    return lines


# --- the command ---------------------------------------------------------------------------

def run_dag(settings: Settings, echo: Callable[[str], None] = print) -> tuple[str, str]:
    """Run the DAG once in-process; returns (run_id, final state)."""
    apply_env(settings)
    t0 = time.monotonic()
    if ensure_airflow_db(settings):
        echo(f"airflow: metadata DB created in {settings.airflow_home} ({time.monotonic() - t0:.1f}s)")
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.sdk.listener import get_listener_manager

    ensure_pool()
    dags = PROJECT_ROOT / "dags"
    bag = BundleDagBag(dag_folder=str(dags / f"{DAG_ID}.py"), bundle_path=dags, bundle_name="dags-folder")
    if bag.import_errors:
        text = "\n".join(bag.import_errors.values())
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        errors = [ln for ln in lines if re.match(r"[\w.]*(Error|Exception|Timeout)\b.*:", ln)]
        raise RuntimeError("DAG import error: " + (errors or lines or ["?"])[-1])
    dag = bag.get_dag(DAG_ID)
    for t in dag.tasks:  # one interactive run: a failure fails it now (the scheduled DAG retries)
        t.retries = 0
    echo(f"airflow: {DAG_ID} loaded, {len(dag.task_dict)} tasks ({time.monotonic() - t0:.1f}s)")
    listener = _progress_listener(echo)
    manager = get_listener_manager()
    manager.add_listener(listener)
    try:
        dr = dag.test()
    finally:
        manager.pm.unregister(listener)
    return dr.run_id, str(dr.state)


def migration_lines(settings: Settings, since: Any) -> list[str]:
    """What the one-off warehouse migrations (dbt's `audit.schema_version`) did since `since`
    (or that the warehouse is new)."""
    import duckdb

    try:
        con = duckdb.connect(str(settings.work_warehouse), read_only=True)
    except duckdb.Error:
        return []
    try:
        rows = con.execute("select version, note from audit.schema_version where recorded_at >= ? "
                           "order by recorded_at", [since]).fetchall()
    except duckdb.Error:  # a warehouse from before versions were recorded, never built since
        rows = []
    finally:
        con.close()
    return [f"warehouse schema version {v}: {note}" for v, note in rows]


def run_night(settings: Settings, echo: Callable[[str], None] = print,
              trace: Callable[[str], Path | None] = lambda what: None) -> tuple[str, str, dict[str, Any]]:
    """The night's steps, in order, in this process (see the module docstring); returns
    (run_id, final state, the steps' results by name). A failure is recorded and alerted by
    `run_steps`; here it is the state "failed"."""
    import datetime as dt

    from orchestration.night import night_steps

    apply_env(settings)  # dbt and the parse workers read the settings from the environment
    started = dt.datetime.now(dt.UTC)
    run_id = f"manual__{started.isoformat()}"  # as Airflow names a manual run
    steps = night_steps(settings)
    night = Night(settings, run_id, started.strftime("%Y-%m-%d"), "manual", steps[0].name)
    try:
        return run_id, "success", _run_here(steps, night, echo, trace, "run")
    except StepFailed as exc:
        return run_id, "failed", exc.results


def _run_here(steps: tuple[Step, ...], night: Night, echo: Callable[[str], None],
              trace: Callable[[str], Path | None], command: str) -> dict[str, Any]:
    """`run_steps` for `ofsted run` and `ofsted rerun`: the steps' logging into the run's log,
    and a failed step's trace logged (`trace`) and named in its reason."""
    def where(step: str) -> str:
        log = trace(f"{command}, step {step}")
        return f" (full trace in {log})" if log else ""

    with steps_logging():
        return run_steps(steps, night, echo, where)


def cli_run(settings: Settings, airflow: bool = False,
            trace: Callable[[str], Path | None] = lambda what: None) -> int:
    """`ofsted run` (`--airflow`: through Airflow's dag.test): print a line per step, then a
    summary; non-zero when the night failed. Everything the run writes, and these lines, go to
    the log file (`orchestration.logs.console_to_log`)."""
    t0 = time.monotonic()
    import datetime as dt

    where = f"inbox {settings.inbox_dir}" if settings.source != "http" else \
        f"index {redact_url(settings.http_index_url or '')}"
    print(f"ofsted run: {where}, work warehouse {settings.work_warehouse}"
          + (", through Airflow's dag.test" if airflow else ""), flush=True)
    started = dt.datetime.now(dt.UTC)
    with console_to_log(settings.log_file) as say:
        if airflow:
            run_id, state = run_dag(settings, echo=say)
            results = dag_results(run_id)
        else:
            run_id, state, results = run_night(settings, echo=say, trace=trace)
        close_night(settings, run_id, state)
        for line in summary_lines(settings, run_id, state, results) + migration_lines(settings, started):
            say(line)
        say(f"logs (steps, dbt, GX{', Airflow' if airflow else ''}): {settings.log_file}")
        say(f"wall time {time.monotonic() - t0:.1f}s")
    if state != "success":
        print(f"ofsted run: the run {state}; the published warehouse was left as it was", file=sys.stderr)
        return 1
    return 0


# --- `ofsted rerun` ------------------------------------------------------------------------

def rerun(settings: Settings, run_id: str, echo: Callable[[str], None] = print,
          trace: Callable[[str], Path | None] = lambda what: None) -> dict[str, Any]:
    """The night's steps from the raw checks on (`orchestration.night.rerun_steps`: the raw
    checks, the dbt build, the marts checks, dbt docs, publish and the report), in order, in
    this process, on the letters already loaded. `trace(what)` logs the current exception's
    trace and returns where. Raises StepFailed (recorded as the night's failure); returns the
    steps' results by name."""
    import datetime as dt

    from ingest.warehouse.build import migrate_raw
    from orchestration.steps import fail_night

    if not settings.work_warehouse.is_file():
        reason = f"no work warehouse at {settings.work_warehouse}: nothing to re-run (run `ofsted run` first)"
        fail_night(settings, run_id, "rerun", reason)
        raise StepFailed("rerun", reason)
    apply_env(settings)  # dbt reads the settings from the environment
    from orchestration.night import night_steps, rerun_steps

    migrate_raw(settings.work_warehouse)  # an older warehouse gains the raw tables dbt now reads
    steps = rerun_steps(night_steps(settings))
    night = Night(settings, run_id, dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"), "rerun", steps[0].name)
    return _run_here(steps, night, echo, trace, "rerun")


def cli_rerun(settings: Settings, trace: Callable[[str], Path | None] = lambda what: None) -> int:
    """`ofsted rerun`: re-run a night's checks, build, publish and report on what is loaded;
    recorded as a night (trigger "rerun"). Exit 0 when it published, 1 when a step failed."""
    import datetime as dt

    from ingest.nights import find_night, read_nights

    t0 = time.monotonic()
    last = next((n for n in read_nights(settings, limit=1)), None)
    if last is not None:
        what = f"at {last['failed_task']}" if last["state"] == "failed" else last["state"]
        print(f"ofsted rerun: the last night, {last['run_id']}, {what}; building again without fetching",
              flush=True)
    started = dt.datetime.now(dt.UTC)
    run_id = "rerun__" + started.isoformat(timespec="seconds")
    with console_to_log(settings.log_file) as say:
        try:
            rerun(settings, run_id, echo=say, trace=trace)
            failed = None
        except StepFailed as exc:
            failed = exc
            say(f"run {run_id}: FAILED at {exc.step}: {exc}")
        else:
            say(f"run {run_id}: SUCCESS")
        published = bool((find_night(settings, run_id) or {}).get("published"))
        for line in outcome_lines(settings, run_id, published) + migration_lines(settings, started):
            say(line)
        say(f"logs (steps, dbt, GX): {settings.log_file}")
        say(f"wall time {time.monotonic() - t0:.1f}s")
    return 1 if failed else 0
