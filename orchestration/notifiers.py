"""Airflow's side of alerting: a notifier that hands failures to `ingest.alerts.send_alert`.

`ingest` never imports Airflow, so the glue lives here: `AlertNotifier` is the DAG's
`on_failure_callback` (any task that fails, after its retries), and `DataQualityFailed` is
what the validate tasks raise after sending their own, more detailed, alert — the notifier
sees it and does not send a second one.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException


class DataQualityFailed(AirflowFailException):
    """Expectations failed; the alert naming them has already been sent. Never retried."""

    alert_sent = True


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
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else "failed"
        alert = Alert(
            run_id=run_id,
            title=f"ofsted_letters_nightly: task {name} failed (try {getattr(ti, 'try_number', '?')})",
            failures=[{"table": None, "expectation": f"task {name}", "detail": detail.splitlines()[0][:500]}],
            counts={"failed_tasks": 1},
            data_docs=str(staging_report_dir(settings, run_id)),
            severity="error",
            task_id=name,
        )
        send_alert(settings, alert)
