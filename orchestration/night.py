"""The night, defined once: its steps in order, from which the DAG, `ofsted run` and
`ofsted rerun` are all built.

    fetch -> batches -> parse[n] -> load_raw -> validate_raw -> dbt -> validate_marts
    -> dbt_docs -> publish -> report

Each step calls one function of `ingest`, `expectations` or (dbt) `orchestration.dbt`; its
`Step` says whether it writes in the data directory (lock, warehouse queue), opens the work
DuckDB file (pool), what it emits, its timeout and retries, and whether it is mapped.
`add_to_dag` makes a task of each step (inside a `@dag` function); `ofsted run` runs every
step in-process (`orchestration.runner.run_night`), and `rerun_steps` are the same steps from
`RERUN_FROM` on (`orchestration.runner.rerun`), both through `orchestration.steps.run_steps`.
All go through `orchestration.steps.run_step`, the one writer of the night history. Add a
step here and it is in all three. Nothing here imports Airflow except the DAG's builders.
"""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

from ingest.settings import Settings
from orchestration.dbt import dbt_steps
from orchestration.steps import POOL, DataQualityFailed, Night, Step, Verdict

RERUN_FROM = "validate_raw"  # `ofsted rerun`: the night from the raw checks on, on what is loaded
RAW_TABLES = ("letters", "findings", "copy_recipients", "rejected_documents", "manifest")
RAW_ASSETS = tuple((f"ofsted.raw.{t}", f"x-duckdb://ofsted-work/raw/{t}") for t in RAW_TABLES)
PUBLISHED = (("ofsted.published_warehouse", "x-duckdb://ofsted-published/warehouse"),)
#: every task's retry policy (a step sets how many retries; 0 for a verdict). The first retry comes
#: 30-60 s after a failure: with the 60 s heartbeat timeout (deploy/airflow.env), a task whose
#: worker died is running again within about two minutes.
RETRY_POLICY = {"retry_delay": dt.timedelta(seconds=30), "retry_exponential_backoff": 2.0,
                "max_retry_delay": dt.timedelta(minutes=30)}


# --- what each step calls: one function each ---------------------------------------------------

def _fetch(night: Night) -> list[dict]:
    from ingest.raw.pipeline import fetch_and_archive

    return fetch_and_archive(night.settings)


def _batches(night: Night, docs: list[dict] | None) -> list[dict]:
    from ingest.raw.pipeline import make_batches

    batches = make_batches(docs or [], night.settings.batch_size)
    return [{"docs": b, "batch_no": n} for n, b in enumerate(batches)]


def _parse(night: Night, docs: list[dict], batch_no: int) -> str:
    from ingest.raw.pipeline import parse_batch

    return parse_batch(night.settings, docs, night.run_id, batch_no)


def _load_raw(night: Night, batch_paths: Any = None) -> dict:
    from ingest.raw.pipeline import load_batches

    paths = [batch_paths[i] for i in range(len(batch_paths or []))]  # indexed: no probe past the end
    return load_batches(night.settings, [p for p in paths if p])


def _validate(suite: str, what: str, noun: str) -> Any:
    def validate(night: Night, counts: dict | None = None) -> dict:
        from expectations import validate as gx
        from ingest.alerts import alert_on_dq_failure
        from ingest.warehouse.publish import staging_settings

        dq = getattr(gx, f"validate_{suite}")(staging_settings(night.settings, night.run_id), night.run_id)
        if alert_on_dq_failure(night.settings, night.run_id, what, dq, counts, f"validate_{suite}"):
            details = [str(f.get("detail") or f.get("expectation")) if isinstance(f, dict) else str(f)
                       for f in dq.get("failures", [])[:10]]
            head = f"{dq['failed']} of {dq['evaluated']} {noun} expectations failed"
            raise DataQualityFailed("\n".join([head, *details]), result=dq)
        return dq

    validate.__name__ = f"validate_{suite}"
    return validate


def _dbt_docs(night: Night) -> str:
    from ingest.warehouse.publish import generate_dbt_docs, prepare_staging

    out = prepare_staging(night.settings, night.run_id) / "dbt_docs"
    return str(generate_dbt_docs(night.settings, out))


def _publish(night: Night) -> dict:
    from ingest.warehouse.publish import publish

    return publish(night.settings)


def _report(night: Night, dq: dict | None = None) -> dict:
    from ingest.raw.pipeline import remove_run_files
    from ingest.report.render import write_report
    from ingest.warehouse.publish import publish_report, staging_settings

    write_report(staging_settings(night.settings, night.run_id), dq)
    published = publish_report(night.settings, night.run_id)
    remove_run_files(night.settings, night.run_id)  # the night is published: its parse batches are scratch
    return published


# --- the night ---------------------------------------------------------------------------------

def night_steps(settings: Settings) -> tuple[Step, ...]:
    """The night's steps, in order (no dbt runs here)."""
    warehouse = {"data_dir": True, "work_warehouse": True}
    return (
        Step("fetch", _fetch, "fetch new or changed letters from the source and archive them", **warehouse),
        Step("batches", _batches, "cut the fetched documents into parse batches", inputs={"docs": "fetch"}),
        Step("parse", _parse, "parse one batch (isolated) into a batch file", mapped_over="batches",
             item_params=("docs", "batch_no"), timeout=dt.timedelta(minutes=20)),
        Step("load_raw", _load_raw, "load the parse batches into the raw tables",
             inputs={"batch_paths": "parse"}, emits=RAW_ASSETS, trigger_rule="none_failed",
             records="counts", **warehouse),
        Step("validate_raw", _validate("raw", "raw tables", "raw"), "Great Expectations on the raw tables",
             inputs={"counts": "load_raw"}, retries=0, records="dq.raw", **warehouse),
        *dbt_steps(settings),
        Step("validate_marts", _validate("marts", "marts", "mart"), "Great Expectations on the marts",
             inputs={"counts": "load_raw"}, retries=0, records="dq.marts", **warehouse),
        Step("dbt_docs", _dbt_docs, "dbt docs for the night's report", **warehouse),
        Step("publish", _publish, "swap the work warehouse into the file analysts read",
             emits=PUBLISHED, publishes=True, **warehouse),
        Step("report", _report, "the static report, GX data docs and dbt docs, swapped in beside it",
             inputs={"dq": "validate_marts"}, data_dir=True),
    )


def rerun_steps(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """The steps `ofsted rerun` runs: the night's, from the raw checks on."""
    names = [s.name for s in steps]
    return steps[names.index(RERUN_FROM):]


# --- the DAG, built from the steps (Airflow only here) -----------------------------------------

def night_of(settings: Settings, context: Any, first: str) -> Night:
    """The Night a task runs in, from its Airflow context."""
    dag_run = context.get("dag_run")
    when = (getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)
            or dt.datetime.now(dt.UTC))
    trigger = str(getattr(dag_run, "run_type", None) or "manual").rsplit(".", 1)[-1].lower()
    return Night(settings, str(context.get("run_id")), when.strftime("%Y-%m-%d"), trigger, first)


def task_kwargs(step: Step, settings: Settings) -> dict[str, Any]:
    """A step's Airflow task arguments: retries, timeout, pool, queue, lock, assets, trigger rule."""
    from airflow.sdk import Asset

    from orchestration.masking import MaskSecrets
    from orchestration.notifiers import hold_data_dir, let_go_of_data_dir

    kw: dict[str, Any] = {"task_id": step.task_id, "retries": step.retries, "execution_timeout": step.timeout,
                          "doc_md": step.doc, **RETRY_POLICY}
    kw["on_execute_callback"] = MaskSecrets(settings)  # in the task's own process: redacted logs
    if step.data_dir:  # one writer at a time in the data directory, on the workers that mount it
        kw.update(pre_execute=hold_data_dir, post_execute=let_go_of_data_dir, queue=settings.warehouse_queue)
    if step.work_warehouse:
        kw["pool"] = POOL
    if step.emits:
        kw["outlets"] = [Asset(name=name, uri=uri) for name, uri in step.emits]
    if step.trigger_rule:
        kw["trigger_rule"] = step.trigger_rule
    return kw


def _task_callable(step: Step, settings: Settings, first: str) -> Any:
    """The function a @task runs for `step`: its inputs by name, then `run_step`."""
    from orchestration.steps import run_step

    def call(**inputs: Any) -> Any:
        from airflow.sdk import get_current_context

        night = night_of(settings, get_current_context(), first)
        try:
            return run_step(step, night, {p: inputs.get(p) for p in step.params})
        except Verdict as exc:  # fail the task now: no retry
            from orchestration.notifiers import as_task_failure

            raise as_task_failure(exc) from exc

    call.__name__ = call.__qualname__ = step.task_id
    call.__doc__ = step.doc
    # Airflow passes a task only the arguments its signature names
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for p in step.params])
    return call


def add_to_dag(steps: tuple[Step, ...], settings: Settings) -> dict[str, Any]:
    """Make a task of each step, in the DAG being defined, chained in the night's order; each
    step's inputs are its upstream steps' results (XCom). Returns the tasks by step name."""
    from airflow.sdk import BaseOperator, TaskGroup, chain, task

    made: dict[str, Any] = {}
    groups: dict[str, Any] = {}

    def output(name: str) -> Any:
        out = made[name]
        return out.output if isinstance(out, BaseOperator) else out

    previous = None
    for step in steps:
        kw = task_kwargs(step, settings)
        if step.group:
            if step.group not in groups:
                groups[step.group] = TaskGroup(group_id=step.group)
            kw["task_group"] = groups[step.group]
        inputs = {param: output(source) for param, source in step.inputs.items()}
        if step.operator is not None:
            made[step.name] = step.operator(**kw)
        else:
            fn = task(**kw)(_task_callable(step, settings, steps[0].name))
            if step.mapped_over:
                made[step.name] = fn.partial(**inputs).expand_kwargs(output(step.mapped_over))
            else:
                made[step.name] = fn(**inputs)
        if previous is not None:
            chain(previous, made[step.name])
        previous = made[step.name]
    return made
