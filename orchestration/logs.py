"""Reading Airflow's structured task logs (JSON events, one per line or as the REST API returns
them) for the one thing alerts and `make night` need: why a task failed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def last_error(events: Iterable[Any]) -> str | None:
    """The last error in a task's structured log (Airflow's JSON events): its exception class and
    message when it has one, else the error event's text."""
    reason = None
    for event in events:
        if not isinstance(event, dict) or event.get("level") not in ("error", "critical"):
            continue
        details = [d for d in event.get("error_detail") or [] if isinstance(d, dict) and d.get("exc_type")]
        if details:
            reason = f"{details[-1]['exc_type']}: {details[-1].get('exc_value', '')}"
        elif event.get("event"):
            reason = str(event["event"])
    return reason
