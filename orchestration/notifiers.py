"""Airflow's side of alerting, the night history and the data directory lock.

`ingest` never imports Airflow, so the glue lives here: `AlertNotifier` is the DAG's
`on_failure_callback` (any task that fails, after its retries): it records the failed night
in the night history (`ingest.nights`), publishes its DQ results and data docs beside the
last good warehouse, and sends the alert (`orchestration.steps.alert_failed_step`, the one an
in-process run sends too); a `DataQualityFailed` from a validate task has sent its own, more
detailed, alert — the notifier sees it and does not send a second one. A step's verdict
(`orchestration.steps.Verdict`) reaches Airflow as an AirflowFailException (`as_task_failure`):
no retry. The night history itself is written by `orchestration.steps` (the step-runner).

`hold_data_dir` / `let_go_of_data_dir` are the writing tasks' `pre_execute` / `post_execute`:
the task holds the data directory's lock (`ingest.lock`) while it runs, waiting up to
`LOCK_WAIT_S` for another writer (an `ofsted load` by hand) to finish. Under `ofsted run
--airflow` the command holds the lock and the tasks run in its process: the lock is re-entrant
there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from orchestration.logs import last_error
from orchestration.steps import Verdict, alert_failed_step, reason_of

_FAIL_NOW: dict[type, type] = {}


def as_task_failure(exc: Verdict) -> AirflowFailException:
    """A step's verdict, as a DAG task raises it: an AirflowFailException (Airflow fails the task
    at once, no retry) of the same class name, message and attributes (`result`, `alert_sent`),
    so the failure callback and the task's log read it as the step raised it."""
    cls = type(exc)
    if cls not in _FAIL_NOW:
        _FAIL_NOW[cls] = type(cls.__name__, (cls, AirflowFailException), {"__module__": cls.__module__})
    failure = _FAIL_NOW[cls](str(exc), result=exc.result)
    failure.__dict__.update(vars(exc))
    return failure


LOCK_WAIT_S = 600.0  # a writing task waits this long for another writer before it fails
_task_holds: set[tuple[str, str, int]] = set()  # (run_id, task_id, map_index) holding the lock here


def _task_name(ti: Any) -> str:
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    return task_id if map_index in (None, -1) else f"{task_id}[{map_index}]"


def _key(context: Any) -> tuple[str, str, int]:
    ti = context.get("ti") or context.get("task_instance")
    return (str(context.get("run_id")), getattr(ti, "task_id", "?"), getattr(ti, "map_index", -1))


def hold_data_dir(context: Any) -> None:
    """pre_execute of a writing task: take the data directory's lock (see the module)."""
    from ingest.lock import acquire, is_held
    from ingest.settings import get_settings

    settings = get_settings()
    if is_held(settings):  # `ofsted run` (or an earlier task of this process) holds it
        return
    ti = context.get("ti") or context.get("task_instance")
    note = acquire(settings, f"airflow task {_task_name(ti)} of {context.get('run_id')}", wait_s=LOCK_WAIT_S)
    _task_holds.add(_key(context))
    if note:
        import logging

        logging.getLogger(__name__).warning(note)


def let_go_of_data_dir(context: Any, result: Any = None) -> None:
    """post_execute of a writing task (and the failure callback): release what it took."""
    key = _key(context)
    if key in _task_holds:
        from ingest.lock import release
        from ingest.settings import get_settings

        _task_holds.discard(key)
        release(get_settings())


def record_failed_night(context: Any, name: str, reason: str) -> None:
    """The night failed at task `name` (after its last try): record it through the step-runner's
    `fail_night`. Never raises (an alert must still go out)."""
    import logging

    from ingest.settings import get_settings
    from orchestration.steps import fail_night

    run_id = str(context.get("run_id"))
    try:
        fail_night(get_settings(), run_id, name, reason)
    except Exception:  # noqa: BLE001 - logged with its trace in the task log; the alert still goes
        logging.getLogger(__name__).exception("recording the failed night %s failed at %s", run_id,
                                              dt.datetime.now(dt.UTC).isoformat())


class AlertNotifier(BaseNotifier):
    """Per failed task: record the failed night, then send one alert (unless already sent)."""

    def notify(self, context: Any) -> None:
        exc = context.get("exception")
        ti = context.get("ti") or context.get("task_instance")
        name = _task_name(ti)
        detail = failure_reason(context)
        try:
            record_failed_night(context, name, reason_of(exc) if exc is not None else detail)
        finally:
            let_go_of_data_dir(context)
        if getattr(exc, "alert_sent", False):
            return
        from ingest.settings import get_settings

        run_id = str(context.get("run_id") or getattr(ti, "run_id", "?"))
        alert_failed_step(get_settings(), run_id, name, detail, getattr(ti, "try_number", None))


def _logged_error(ti: Any) -> str | None:
    """The last error the task's own log file recorded for this try (same machine or shared logs)."""
    from airflow.configuration import conf

    mi = getattr(ti, "map_index", -1)
    path = (Path(conf.get("logging", "base_log_folder")) / f"dag_id={ti.dag_id}" / f"run_id={ti.run_id}"
            / f"task_id={ti.task_id}" / (f"map_index={mi}" if mi not in (None, -1) else "")
            / f"attempt={getattr(ti, 'try_number', 1)}.log")
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 512 * 1024))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    events = []
    for line in lines:
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return last_error(events)


def failure_reason(context: Any) -> str:
    """Why a task failed, never just "failed": its exception; else the reason Airflow passed on
    (the executor's or scheduler's message); else the last error in its log; else what is known."""
    exc = context.get("exception")
    if exc is not None:
        return f"{type(exc).__name__}: {exc}"
    if context.get("reason"):
        return str(context["reason"])
    ti = context.get("ti") or context.get("task_instance")
    logged = _logged_error(ti) if ti is not None else None
    if logged:
        return logged
    return (f"no exception reached the task and its log for try {getattr(ti, 'try_number', '?')} has no "
            f"error: it failed before it ran (state {getattr(ti, 'state', '?')}); the scheduler's log and "
            "Airflow's event log give the executor's message")
