"""`ofsted run`: the nightly DAG once, in-process, through Airflow itself.

Airflow keeps its state in a project-local AIRFLOW_HOME (`.airflow/` by default: a SQLite
metadata DB, created on first use and migrated only when Airflow's version changes), the
DAGs folder is the project's `dags/`, and the one-slot `duckdb_writer` pool is created
here (in production: `airflow pools set duckdb_writer 1 ...`, see docker-compose.yml).

Airflow is imported lazily, after the environment is set. This package (`orchestration`)
holds everything that needs Airflow; `ingest` never imports it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.settings import PROJECT_ROOT, Settings

DAG_ID = "ofsted_letters_nightly"
POOL = "duckdb_writer"
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
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    }


def apply_env(settings: Settings) -> None:
    """Put the settings and Airflow's config in os.environ (before Airflow is imported)."""
    os.environ.update(settings.to_env())
    os.environ.update(airflow_env(settings))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")  # progress lines are ours
    os.environ.setdefault("DBT_QUIET", "true")  # dbt runs in this process: errors only on the console


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

        def _line(self, ti: Any, mark: str, extra: str = "") -> None:
            t0 = started.pop((ti.task_id, getattr(ti, "map_index", -1)), None)
            took = f"{time.monotonic() - t0:6.1f}s" if t0 is not None else "      -"
            echo(f"  {mark} {took}  {name(ti)}{extra}")

        @hookimpl
        def on_task_instance_success(self, previous_state, task_instance):
            self._line(task_instance, "ok  ")

        @hookimpl
        def on_task_instance_failed(self, previous_state, task_instance, error):
            msg = f"  -- {type(error).__name__}: {error}".splitlines()[0][:300] if error else ""
            self._line(task_instance, "FAIL", msg)

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


def summary_lines(settings: Settings, run_id: str, state: str) -> list[str]:
    counts = _xcom(run_id, "load_raw") or {}
    raw_dq = _xcom(run_id, "validate_raw") or {}
    marts_dq = _xcom(run_id, "validate_marts") or {}
    published = _xcom(run_id, "publish") or {}
    marts = (published.get("warehouse") or {}).get("marts") or {}
    lines = [f"run {run_id}: {state.upper()}"]
    fetched = _xcom(run_id, "fetch")
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
    for label, dq in (("raw", raw_dq), ("marts", marts_dq)):
        if dq:
            verdict = "passed" if dq.get("success") else "FAILED"
            lines.append(f"data quality ({label}): {verdict}, {dq.get('evaluated', 0)} expectations, "
                         f"{dq.get('failed', 0)} failed")
    if published:
        lines.append(f"published warehouse: {settings.published_warehouse}")
        lines.append(f"report and data docs: {settings.report_dir}")
    else:
        lines.append(f"published warehouse unchanged: {settings.published_warehouse}")
        from ingest.warehouse.publish import staging_report_dir

        lines.append(f"this run's data docs: {staging_report_dir(settings, run_id)}")
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
        raise RuntimeError("DAG import error: " + "; ".join(bag.import_errors.values()).splitlines()[-1])
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


def cli_run(settings: Settings) -> int:
    """`ofsted run`: print a line per task, then a summary; non-zero when the run failed."""
    t0 = time.monotonic()
    print(f"ofsted run: inbox {settings.inbox_dir}, work warehouse {settings.work_warehouse}", flush=True)
    run_id, state = run_dag(settings, echo=lambda line: print(line, flush=True))
    for line in summary_lines(settings, run_id, state):
        print(line)
    print(f"wall time {time.monotonic() - t0:.1f}s")
    if state != "success":
        print(f"ofsted run: the run {state}; the published warehouse was left as it was", file=sys.stderr)
        return 1
    return 0
