"""A step of the night, and the one step-runner that both the DAG's tasks and `ofsted rerun` use.

`Step` is plain data: the step's name (its task id), the function it calls, whether it writes
in the data directory (its lock, and the Celery queue `settings.warehouse_queue`), whether it
opens the work DuckDB file (the one-slot pool `duckdb_writer`), what it emits (assets), its
timeout and retries, and whether it is mapped over an earlier step's result. The night itself,
an ordered tuple of steps, is in `orchestration.night`.

`run_step` is the only writer of the night history (`ingest.nights`) while a night runs: it
records the night's start at its first step, what a step's result says (load counts, a DQ
suite's results), and the night's success once the step that publishes has. `fail_night`
records a failure (called by the DAG's failure callback after the last try, and by the
in-process runner at once), `close_night` a DAG run that ended without a task saying so.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ingest.settings import Settings

DAG_ID = "ofsted_letters_nightly"
POOL = "duckdb_writer"  # one slot: DuckDB allows one writing process per file
DEFAULT_TIMEOUT = dt.timedelta(minutes=30)
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class Night:
    """One night (or re-run) as its steps see it."""

    settings: Settings
    run_id: str
    run_date: str  # YYYY-MM-DD: the logical date of a scheduled night, else when it was asked for
    trigger: str  # scheduled, manual, rerun, ...
    first: str  # the name of the step that starts it (records its start in the history)


@dataclass(frozen=True)
class Step:
    """One step of the night (see the module docstring)."""

    name: str  # the task id; "<group>.<id>" for a step in a task group (dbt.seeds)
    call: Callable[..., Any]  # call(night, **inputs) -> result (XCom in the DAG)
    doc: str
    inputs: Mapping[str, str] = field(default_factory=dict)  # parameter -> the step whose result it is
    data_dir: bool = False  # writes in the data directory: holds its lock, runs on the warehouse queue
    work_warehouse: bool = False  # opens the work DuckDB file: runs in the one-slot pool
    emits: tuple[tuple[str, str], ...] = ()  # assets it updates: (name, uri)
    retries: int = DEFAULT_RETRIES  # 0 for a verdict: the same data gives the same answer
    timeout: dt.timedelta = DEFAULT_TIMEOUT
    mapped_over: str | None = None  # runs once per item (a dict of keyword arguments) of that step's result
    item_params: tuple[str, ...] = ()  # the keys of each item, when mapped
    trigger_rule: str | None = None  # Airflow's, when not "all_success"
    records: str | None = None  # the history field its result (a dict) goes to: "counts" (load
    #                              counts), "dq.<suite>" (a suite's DQ results), or any new field
    publishes: bool = False  # once it succeeds the night is a success, its warehouse published
    operator: Callable[..., Any] | None = None  # the DAG builds this operator (given the task's
    #                                            keyword arguments) instead of a @task around `call`

    @property
    def group(self) -> str | None:
        return self.name.split(".", 1)[0] if "." in self.name else None

    @property
    def task_id(self) -> str:
        """The id inside its group (Airflow prefixes the group's)."""
        return self.name.rsplit(".", 1)[-1]

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(self.inputs) + self.item_params


class Verdict(RuntimeError):
    """A step's verdict on its data: the night fails at once, never retried (the same data gives
    the same answer), and the night history keeps its message as the reason. In a DAG task
    Airflow sees it as an AirflowFailException (`orchestration.notifiers.as_task_failure`); this
    module, and so an in-process night, never imports Airflow."""

    verdict = True
    alert_sent = False  # True when the step sent its own, more detailed, alert

    def __init__(self, message: str, result: dict | None = None) -> None:
        super().__init__(message)
        self.result = result  # recorded in the night history like a passing check's


class DataQualityFailed(Verdict):
    """Expectations failed; the alert naming them has already been sent."""

    alert_sent = True


class DbtTestsFailed(Verdict):
    """dbt tests failed (their names and results in the message)."""


def step_line(mark: str, seconds: float | None, name: str, error: BaseException | str | None = None) -> str:
    """A step's (a task's) progress line, the same from `ofsted run`, `rerun` and `run --airflow`:
    "  ok      0.6s  fetch", "  FAIL   2.0s  validate_raw  -- DataQualityFailed: 1 of 8 ...";
    `mark` is ok, FAIL, skip or STOP (interrupted)."""
    took = f"{seconds:6.1f}s" if seconds is not None else "      -"
    line = f"  {mark:<4} {took}  {name}"
    if error:
        head = (str(error).strip().splitlines() or [""])[0]
        line += f"  -- {head}" if isinstance(error, str) else f"  -- {type(error).__name__}: {head}"
    return line[:400]


class StepFailed(RuntimeError):
    """A step failed in an in-process run (already recorded as the night's failure, and alerted).
    `results` holds what the steps before it returned."""

    def __init__(self, step: str, reason: str, result: Any = None,
                 results: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.step = step
        self.result = result
        self.results = results or {}


def reason_of(exc: BaseException) -> str:
    """Why a step failed, as the night history keeps it: a verdict's own words ("1 of 8 raw
    expectations failed"), any other exception's class and message (first line: see `one_line`)."""
    text = str(exc).strip()
    if getattr(exc, "verdict", False) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the night history: written here only -----------------------------------------------------

def _record(step: Step, night: Night, result: Any) -> None:
    from ingest.nights import note_night

    if not step.records or not isinstance(result, dict):
        return
    if step.records == "counts":
        note_night(night.settings, night.run_id, counts=result)
    elif step.records.startswith("dq."):  # a verdict names its stages' own (expectations.validate)
        note_night(night.settings, night.run_id, dq=result.get("by_stage") or {step.records[3:]: result})
    else:
        note_night(night.settings, night.run_id, **{step.records: result})


def run_step(step: Step, night: Night, inputs: Mapping[str, Any]) -> Any:
    """Run one step (one try of one task, or one step of a re-run) and record what it tells the
    night history. An exception with a `result` (a failed DQ check) has that result recorded."""
    from ingest.nights import finish_night, start_night

    if step.name == night.first:
        start_night(night.settings, night.run_id, night.trigger)
    try:
        result = step.call(night, **inputs)
    except Exception as exc:
        _record(step, night, getattr(exc, "result", None))
        raise
    _record(step, night, result)
    if step.publishes:  # the report (the next step) shows this night as the latest
        finish_night(night.settings, night.run_id, "success", published=True)
    return result


def fail_night(settings: Settings, run_id: str, step: str, reason: str) -> None:
    """The night failed at `step`: record it and, unless its warehouse was already published,
    publish its DQ results and data docs beside the last good warehouse."""
    from ingest.nights import find_night, finish_night
    from ingest.report.render import render_latest
    from ingest.warehouse.publish import publish_failed_night

    before = find_night(settings, run_id)
    published = bool(before and before.get("published"))
    finish_night(settings, run_id, "failed", failed_task=step, reason=reason, published=published)
    if not published:
        publish_failed_night(settings, run_id, render=render_latest)


def alert_failed_step(settings: Settings, run_id: str, step: str, detail: str,
                      attempt: int | None = None) -> None:
    """The one alert for a step (a task) that failed: sent by the DAG's failure callback after the
    last try (`orchestration.notifiers.AlertNotifier`) and by an in-process run at once. A verdict
    that sent its own alert (`alert_sent`) is not alerted again: the caller checks."""
    from ingest.alerts import Alert, send_alert
    from ingest.warehouse.publish import staging_report_dir

    tried = f" (try {attempt})" if attempt is not None else ""
    send_alert(settings, Alert(
        run_id=run_id,
        title=f"{DAG_ID}: task {step} failed{tried}",
        failures=[{"table": None, "expectation": f"task {step}",
                   "detail": "; ".join(ln.strip() for ln in detail.splitlines() if ln.strip())[:1000]}],
        counts={"failed_tasks": 1},
        data_docs=str(staging_report_dir(settings, run_id)),
        severity="error",
        task_id=step,
    ))


def close_night(settings: Settings, run_id: str, state: str) -> None:
    """After a DAG run: record its end if no step did (a run that timed out, or one that failed
    before any task's callback could run)."""
    from ingest.nights import find_night

    night = find_night(settings, run_id)
    if night is not None and night["state"] != "running":
        return
    fail_night(settings, run_id, "dag run", f"the DAG run {state}" if state != "success"
               else "the DAG run succeeded but no step published the warehouse")


# --- in-process: `ofsted run` and `ofsted rerun` ---------------------------------------------

def _one(step: Step, name: str, night: Night, inputs: Mapping[str, Any],
         echo: Callable[[str], None], trace: Callable[[str], str], done: dict[str, Any]) -> Any:
    """One step (or one item of a mapped step, `name` "parse[0]"): its line, and on a failure
    the night's failure recorded and alerted, then StepFailed."""
    from ingest.nights import note_step

    logging.getLogger(__name__).info("%s of %s: starting", name, night.run_id)
    t0 = time.monotonic()
    try:
        note_step(night.settings, night.run_id, name)  # where a killed run stopped (a DAG: Airflow knows)
        result = run_step(step, night, inputs)
    except Exception as exc:  # noqa: BLE001 - every failure ends the run with one line
        lines = [ln.strip() for ln in reason_of(exc).splitlines() if ln.strip()] or [type(exc).__name__]
        echo(step_line("FAIL", time.monotonic() - t0, name, exc))
        for line in lines[1:11]:  # the failing tests or expectations, one a line
            echo(f"       {line[:300]}")
        where = trace(name)  # the trace goes to the log; a verdict's reason is its own words
        reason = lines[0][:400] + ("" if getattr(exc, "verdict", False) else where)
        fail_night(night.settings, night.run_id, name, reason)
        if not getattr(exc, "alert_sent", False):
            alert_failed_step(night.settings, night.run_id, name, f"{type(exc).__name__}: {exc}")
        raise StepFailed(name, reason, getattr(exc, "result", None), done) from exc
    except BaseException as exc:  # interrupted: recorded, then on its way
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        echo(step_line("STOP", time.monotonic() - t0, name, f"interrupted ({why})"))
        fail_night(night.settings, night.run_id, name, f"interrupted ({why})")
        raise
    echo(step_line("ok", time.monotonic() - t0, name))
    return result


def run_steps(steps: tuple[Step, ...], night: Night, echo: Callable[[str], None],
              trace: Callable[[str], str]) -> dict[str, Any]:
    """Run `steps` in order in this process: no retries (the one running it is watching), a
    mapped step once per item. Prints a line per step (per item: "parse[0]"); on a failure
    records it (`fail_night`), sends the alert (`alert_failed_step`, unless the step sent its
    own) and raises StepFailed with a one-line reason (`trace(step)` logs the exception's trace
    and says where) and the results so far. Returns the results by step name."""
    results: dict[str, Any] = {}
    for step in steps:
        inputs = {param: results.get(source) for param, source in step.inputs.items()}
        if step.mapped_over:
            items = results.get(step.mapped_over) or []
            results[step.name] = [_one(step, f"{step.name}[{n}]", night, {**inputs, **item}, echo, trace,
                                       results) for n, item in enumerate(items)]
        else:
            results[step.name] = _one(step, step.name, night, inputs, echo, trace, results)
    return results
