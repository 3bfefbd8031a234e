"""
### ofsted_letters_nightly

Every night at 02:00 Europe/London: fetch new or changed Ofsted letters and archive them,
parse them in batches (one mapped task per batch), load the raw tables, check them with
Great Expectations, build the dimensional warehouse with dbt (one `dbt build` of the whole
project, in the task's process on dbt's saved parse: orchestration/dbt.py), check the
marts, then publish: the work warehouse is swapped atomically into the file analysts read,
and the static report, GX data docs and dbt docs are swapped in beside it.

`fetch -> batches -> parse[n] -> load_raw -> validate_raw -> dbt
-> validate_marts -> dbt_docs -> publish -> report`

The steps are defined once, in `orchestration/night.py` (`ofsted rerun` runs the same steps
from validate_raw on); this file only schedules them. Every task that opens the work DuckDB
file runs in the one-slot pool `duckdb_writer`, and every task that writes in the data
directory on the Celery queue `OFSTED_WAREHOUSE_QUEUE`. A failed task or a failed expectation
sends an alert (log / webhook / email, from settings) and leaves the published warehouse as
it was.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import CronTriggerTimetable, dag

from ingest.settings import get_settings
from orchestration.night import add_to_dag, night_steps
from orchestration.notifiers import AlertNotifier
from orchestration.steps import DAG_ID

SETTINGS = get_settings()
STEPS = night_steps(SETTINGS)  # no dbt runs, and nothing of dbt is read, at parse time


@dag(
    dag_id=DAG_ID,
    schedule=CronTriggerTimetable("0 2 * * *", timezone="Europe/London"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=4),
    default_args={"owner": "data-team", "on_failure_callback": AlertNotifier()},
    tags=["ofsted", "ingest", "dbt", "great-expectations", "nightly"],
    doc_md=__doc__,
)
def ofsted_letters_nightly():
    add_to_dag(STEPS, SETTINGS)


ofsted_letters_nightly()
