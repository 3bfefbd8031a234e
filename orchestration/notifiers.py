"""Airflow's side of alerting: a notifier that hands failures to `ingest.alerts.send_alert`.

`ingest` never imports Airflow, so the glue lives here: `AlertNotifier` is the DAG's
`on_failure_callback` (any task that fails, after its retries), and `DataQualityFailed` is
what the validate tasks raise after sending their own, more detailed, alert — the notifier
sees it and does not send a second one.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from orchestration.logs import last_error


class DataQualityFailed(AirflowFailException):
    """Expectations failed; the alert naming them has already been sent. Never retried."""

    alert_sent = True


class DbtTestsFailed(AirflowFailException):
    """dbt tests failed (their names and results in the message): fail now, no retry."""


class AlertNotifier(BaseNotifier):
    """Send one alert per failed task through the channels chosen in settings."""

    def notify(self, context: Any) -> None:
        exc = context.get("exception")
        if getattr(exc, "alert_sent", False):
            return
        from ingest.alerts import Alert, send_alert
        from ingest.settings import get_settings
        from ingest.warehouse.publish import staging_report_dir

        settings = get_settings()
        ti = context.get("ti") or context.get("task_instance")
        task_id = getattr(ti, "task_id", "?")
        map_index = getattr(ti, "map_index", -1)
        name = task_id if map_index in (None, -1) else f"{task_id}[{map_index}]"
        run_id = str(context.get("run_id") or getattr(ti, "run_id", "?"))
        detail = failure_reason(context)
        alert = Alert(
            run_id=run_id,
            title=f"ofsted_letters_nightly: task {name} failed (try {getattr(ti, 'try_number', '?')})",
            failures=[{"table": None, "expectation": f"task {name}",
                        "detail": "; ".join(ln.strip() for ln in detail.splitlines() if ln.strip())[:1000]}],
            counts={"failed_tasks": 1},
            data_docs=str(staging_report_dir(settings, run_id)),
            severity="error",
            task_id=name,
        )
        send_alert(settings, alert)


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
