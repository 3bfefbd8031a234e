"""
### ofsted_letters_nightly

Every night at 02:00 Europe/London: fetch new or changed Ofsted letters and archive them,
parse them in batches (one mapped task per batch), load the raw tables, check them with
Great Expectations, build the dimensional warehouse with dbt (one `dbt build` per layer:
seeds, staging, marts, each with the tests its models complete; through Cosmos), check the
marts, then publish: the work warehouse is swapped atomically into the file analysts read,
and the static report, GX data docs and dbt docs are swapped in beside it.

`fetch -> batches -> parse[n] -> load_raw -> validate_raw -> dbt(seeds -> staging -> marts)
-> validate_marts -> dbt_docs -> publish -> report`

Every task that opens the work DuckDB file runs in the one-slot pool `duckdb_writer`
(DuckDB allows one writing process per file); dbt runs in the task's process and lets go of
the file after every command, so the GX and publish tasks find it free. A failed task or a
failed expectation sends an alert (log / webhook / email, from settings) and leaves the
published warehouse as it was.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Asset, CronTriggerTimetable, TaskGroup, chain, dag, task
from cosmos import ProfileConfig
from cosmos.constants import InvocationMode

from ingest.settings import get_settings
from orchestration.dbt import LAYERS, DbtLayerOperator, layer_nodes
from orchestration.notifiers import (
    AlertNotifier,
    DataQualityFailed,
    finish_night,
    hold_data_dir,
    let_go_of_data_dir,
    start_night,
)

SETTINGS = get_settings()
POOL = "duckdb_writer"
RAW_TABLES = ("letters", "findings", "copy_recipients", "rejected_documents", "manifest")
RAW_ASSETS = [Asset(name=f"ofsted.raw.{t}", uri=f"x-duckdb://ofsted-work/raw/{t}") for t in RAW_TABLES]
PUBLISHED = Asset(name="ofsted.published_warehouse", uri="x-duckdb://ofsted-published/warehouse")
# a task that writes in the data directory: one at a time on this machine (the data dir lock)
WRITES = {"pool": POOL, "pre_execute": hold_data_dir, "post_execute": let_go_of_data_dir}
DBT_LAYERS = layer_nodes(SETTINGS.dbt_project_dir)  # from the manifest: no dbt runs at parse time


@dag(
    dag_id="ofsted_letters_nightly",
    schedule=CronTriggerTimetable("0 2 * * *", timezone="Europe/London"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=4),
    default_args={
        "owner": "data-team",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
        "execution_timeout": dt.timedelta(minutes=30),
        "on_failure_callback": AlertNotifier(),
    },
    tags=["ofsted", "ingest", "dbt", "great-expectations", "nightly"],
    doc_md=__doc__,
)
def ofsted_letters_nightly():
    @task(**WRITES)
    def fetch(run_id: str | None = None) -> list[dict]:
        from ingest.raw.pipeline import fetch_and_archive

        start_night(run_id)  # the night history in the data directory (`ofsted status`, the report)
        return fetch_and_archive(SETTINGS)

    @task
    def batches(docs: list[dict]) -> list[dict]:
        from ingest.raw.pipeline import make_batches

        return [{"docs": b, "batch_no": n} for n, b in enumerate(make_batches(docs, SETTINGS.batch_size))]

    @task(execution_timeout=dt.timedelta(minutes=20))
    def parse(docs: list[dict], batch_no: int, run_id: str | None = None) -> str:
        from ingest.raw.pipeline import parse_batch

        return parse_batch(SETTINGS, docs, run_id, batch_no)

    @task(**WRITES, outlets=RAW_ASSETS, trigger_rule="none_failed")
    def load_raw(batch_paths: list[str] | None = None) -> dict:
        from ingest.raw.pipeline import load_batches

        paths = [batch_paths[i] for i in range(len(batch_paths or []))]  # indexed: no probe past the end
        return load_batches(SETTINGS, [p for p in paths if p])

    @task(**WRITES, retries=0)
    def validate_raw(counts: dict, run_id: str | None = None) -> dict:
        from expectations.validate import validate_raw as check
        from ingest.alerts import alert_on_dq_failure
        from ingest.nights import note_night
        from ingest.warehouse.publish import staging_settings

        dq = check(staging_settings(SETTINGS, run_id), run_id)  # records its verdict in the history
        note_night(SETTINGS, run_id, counts=counts)
        if alert_on_dq_failure(SETTINGS, run_id, "raw tables", dq, counts, "validate_raw"):
            raise DataQualityFailed(f"{dq['failed']} of {dq['evaluated']} raw expectations failed")
        return dq

    @task(**WRITES, retries=0)
    def validate_marts(counts: dict, run_id: str | None = None) -> dict:
        from expectations.validate import validate_marts as check
        from ingest.alerts import alert_on_dq_failure
        from ingest.warehouse.publish import staging_settings

        dq = check(staging_settings(SETTINGS, run_id), run_id)  # the night's verdict, in the history too
        if alert_on_dq_failure(SETTINGS, run_id, "marts", dq, counts, "validate_marts"):
            raise DataQualityFailed(f"{dq['failed']} of {dq['evaluated']} mart expectations failed")
        return dq

    @task(**WRITES)
    def dbt_docs(run_id: str | None = None) -> str:
        from ingest.warehouse.publish import generate_dbt_docs, staging_report_dir

        return str(generate_dbt_docs(SETTINGS, staging_report_dir(SETTINGS, run_id) / "dbt_docs"))

    @task(**WRITES, outlets=[PUBLISHED])
    def publish() -> dict:
        from ingest.warehouse.publish import publish as publish_warehouse

        return publish_warehouse(SETTINGS)

    @task(pre_execute=hold_data_dir, post_execute=let_go_of_data_dir)
    def report(dq: dict, run_id: str | None = None) -> dict:
        from ingest.raw.pipeline import remove_run_files
        from ingest.report.render import write_report
        from ingest.warehouse.publish import publish_report, staging_settings

        finish_night(run_id)  # published: the report shows this night as the latest
        write_report(staging_settings(SETTINGS, run_id), dq)
        published = publish_report(SETTINGS, run_id)
        remove_run_files(SETTINGS, run_id)  # the night is published: its parse batches are scratch
        return published

    with TaskGroup(group_id="dbt") as dbt:
        layers = [
            DbtLayerOperator(
                task_id=layer,
                doc_md=f"`dbt build --select {' '.join(LAYERS[layer])}`: {', '.join(nodes) or '(nothing)'}",
                project_dir=SETTINGS.dbt_project_dir,
                profile_config=ProfileConfig(
                    profile_name="ofsted_letters",
                    target_name="work",
                    profiles_yml_filepath=SETTINGS.dbt_profiles_dir / "profiles.yml",
                ),
                select=LAYERS[layer],
                indirect_selection="buildable",  # a test runs once every model it reads is built
                # the night's date (its logical date; a manual run triggered without one: when it was
                # asked to run): dim_dates ends the year after it, the same on a re-run of that night
                vars={"run_date": "{{ (dag_run.logical_date or dag_run.run_after).strftime('%Y-%m-%d') }}",
                      "run_id": "{{ run_id }}"},  # its tests' rows in the night's DQ verdict
                env={"OFSTED_WORK_WAREHOUSE": str(SETTINGS.work_warehouse), "DO_NOT_TRACK": "1"},
                install_deps=False,  # no dbt packages
                invocation_mode=InvocationMode.DBT_RUNNER,  # in-process; the callback releases the file
                dbt_executable_path=str(SETTINGS.dbt_executable),
                callback="ingest.warehouse.build.release_dbt_duckdb",
                **WRITES,
                execution_timeout=dt.timedelta(minutes=60),
            )
            for layer, nodes in DBT_LAYERS.items()
        ]
        chain(*layers)

    docs = fetch()
    counts = load_raw(parse.expand_kwargs(batches(docs)))
    marts_dq = validate_marts(counts)
    validate_raw(counts) >> dbt >> marts_dq >> dbt_docs() >> publish() >> report(marts_dq)


ofsted_letters_nightly()
