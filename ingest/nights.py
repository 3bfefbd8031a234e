"""The night history: what each night (or re-run) did, kept in the data directory.

`ofsted status` and the report read it; it lives beside the warehouse it describes, not in
Airflow's metadata DB, so it is the same under `ofsted run`, `ofsted rerun` and a real
scheduler. The file is append-only JSON lines (`<data_dir>/nights/history.jsonl`): each line
is one update of one night, written with a single `write` on an `O_APPEND` descriptor and
fsynced, so a crash leaves at most a torn last line (skipped when read). A night is the
merge, in file order, of its lines:

    start_night   run_id, trigger, started_at, state "running"
    note_night    any fields known part-way (DQ results of one suite, load counts)
    note_step     step {name, started_at}: the last step an in-process night started
    finish_night  state "success" | "failed", finished_at, failed_task, reason, published,
                  warehouse_run_id (the run whose warehouse analysts are reading)

A night still "running" when a later one starts was killed or timed out (one night at a
time: the data directory lock and `max_active_runs=1`); it is closed as failed, saying so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from ingest.files import append_bytes, open_regular
from ingest.settings import Settings

STATES = ("running", "success", "failed")
MAX_READ_BYTES = 16 * 1024 * 1024  # the history is read from its tail: a bound on memory
_REASON_CHARS = 500


def history_path(settings: Settings) -> Path:
    return settings.data_dir / "nights" / "history.jsonl"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def one_line(text: Any) -> str | None:
    """The first non-empty line of `text`, cut to a readable length (None stays None)."""
    if text is None:
        return None
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return (lines[0] if lines else "")[:_REASON_CHARS]


def _append(settings: Settings, record: dict[str, Any]) -> None:
    path = history_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, default=str, sort_keys=True) + "\n").encode()
    append_bytes(path, line, durable=True)  # never through a link planted at its name


def _records(settings: Settings) -> list[dict[str, Any]]:
    path = history_path(settings)
    try:
        with os.fdopen(open_regular(path), "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - MAX_READ_BYTES))
            data = f.read()
    except FileNotFoundError:
        return []
    if len(data) < size:  # started mid-line: drop the partial first line
        data = data.split(b"\n", 1)[-1]
    out = []
    for raw in data.splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue  # a torn line left by a crash mid-write
        if isinstance(rec, dict) and rec.get("run_id"):
            out.append(rec)
    return out


def _merged(settings: Settings) -> list[dict[str, Any]]:
    """Every night in the order it started, its updates merged (dq suites merged per suite)."""
    nights: dict[str, dict[str, Any]] = {}
    for rec in _records(settings):
        night = nights.setdefault(rec["run_id"], _blank(rec["run_id"]))
        for key, value in rec.items():
            if isinstance(value, dict) and isinstance(night.get(key), dict):
                night[key] = {**night[key], **value}  # counts, dq per suite, a step's result
            else:
                night[key] = value
    return list(nights.values())


def _blank(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id, "trigger": None, "started_at": None, "finished_at": None,
            "state": "running", "failed_task": None, "reason": None, "counts": {}, "dq": {},
            "published": False, "warehouse_run_id": None}


def find_night(settings: Settings, run_id: str) -> dict[str, Any] | None:
    """The night `run_id` as recorded so far, or None."""
    return next((n for n in _merged(settings) if n["run_id"] == run_id), None)


# --- writing --------------------------------------------------------------------------------

def start_night(settings: Settings, run_id: str, trigger: str) -> None:
    """Record that a night (or a re-run) has started. Idempotent for a task retried in one run.

    Any other night still marked running is closed as failed: one night at a time means it
    was killed or timed out without reaching its end."""
    for night in _merged(settings):
        if night["state"] == "running" and night["run_id"] != run_id:
            if _published_since(settings, night.get("started_at")):  # killed after its publish step:
                finish_night(settings, night["run_id"], "success", published=True)  # analysts read its data
                _append(settings, {"run_id": night["run_id"], "note": "interrupted after publishing its "
                                   "warehouse (the steps after publish did not finish)"})
                continue
            step = (night.get("step") or {}).get("name")  # the last step it started (note_step)
            finish_night(settings, night["run_id"], "failed", failed_task=night.get("failed_task") or step,
                         reason="interrupted: the night never finished (process killed or timed out)")
    existing = find_night(settings, run_id)
    if existing is not None and existing["started_at"]:
        if existing["state"] != "running":  # a cleared task re-run: the night is running again
            _append(settings, {"run_id": run_id, "state": "running", "finished_at": None})
        return
    good = last_good_night(settings)
    _append(settings, {"run_id": run_id, "trigger": trigger, "started_at": _now(), "state": "running",
                       "warehouse_run_id": good["warehouse_run_id"] if good else None})


def _published_since(settings: Settings, started_at: str | None) -> bool:
    """Whether the published warehouse was replaced after `started_at`: one writer at a time, so
    by the night that started then (publish only ever runs once its checks have passed)."""
    if not started_at:
        return False
    try:
        replaced = dt.datetime.fromtimestamp(os.lstat(settings.published_warehouse).st_mtime, dt.UTC)
        return replaced >= dt.datetime.fromisoformat(started_at)
    except (OSError, ValueError):
        return False


def note_night(settings: Settings, run_id: str, *, counts: dict | None = None,
               dq: dict[str, dict] | None = None, **results: dict) -> None:
    """Record what is known part-way: load counts, one suite's DQ result ({"raw": {...}}), or
    any other step's result under the field its step names (a dict, kept as given; merged
    with what the night already has under that field)."""
    rec: dict[str, Any] = {"run_id": run_id}
    if counts:
        rec["counts"] = summary_counts(counts)
    if dq:
        rec["dq"] = {suite: summary_dq(result) for suite, result in dq.items() if result}
    for field, result in results.items():
        if field in _blank(run_id) or field == "run_id":
            raise ValueError(f"a step's result cannot be recorded as {field!r}: the night's own field")
        if isinstance(result, dict) and result:
            rec[field] = result
    if len(rec) > 1:
        _append(settings, rec)


def note_step(settings: Settings, run_id: str, step: str) -> None:
    """Record that a step of an in-process night (`ofsted run`, `rerun`) started: a night killed
    without a word (SIGKILL, the OOM killer) is closed as failed at the last step it started."""
    _append(settings, {"run_id": run_id, "step": {"name": step, "started_at": _now()}})


def finish_night(settings: Settings, run_id: str, state: str, failed_task: str | None = None,
                 reason: str | None = None, counts: dict | None = None, dq: dict | None = None,
                 published: bool = False) -> dict[str, Any]:
    """Record the end of a night; returns the night as now recorded.

    A night already failed keeps its first failed task and reason (a second failing task is
    a consequence); `warehouse_run_id` is this run when it published, else the last night
    that did."""
    if state not in ("success", "failed"):
        raise ValueError(f"a night ends in success or failed, not {state!r}")
    before = find_night(settings, run_id)
    rec: dict[str, Any] = {"run_id": run_id, "state": state, "finished_at": _now(),
                           "published": bool(published)}
    if before is None or not before.get("started_at"):
        rec["started_at"] = rec["finished_at"]
    if before is not None and before["state"] == "failed" and state == "failed" and before["failed_task"]:
        failed_task, reason = before["failed_task"], before["reason"]
    rec["failed_task"] = failed_task if state == "failed" else None
    rec["reason"] = one_line(reason) if state == "failed" else None
    if counts:
        rec["counts"] = summary_counts(counts)
    if dq:
        rec["dq"] = {suite: summary_dq(result) for suite, result in dq.items() if result}
    if published:
        rec["warehouse_run_id"] = run_id
    else:
        good = last_good_night(settings)
        rec["warehouse_run_id"] = good["warehouse_run_id"] if good else None
    _append(settings, rec)
    return find_night(settings, run_id) or rec


def summary_counts(counts: dict) -> dict[str, int]:
    """The numbers of a load's counts (its per-document lists are left out)."""
    return {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}


def summary_dq(dq: dict) -> dict[str, Any]:
    """One stage's verdict (ingest.warehouse.verdict) as kept in the history: evaluated, failed,
    warned, success, what failed and each warning named with its count."""
    failures = [one_line(f.get("detail") or f.get("expectation")) for f in dq.get("failures", [])
                if isinstance(f, dict)][:20]
    warnings = [one_line(f"{w.get('check')}: {w['count'] if w.get('count') is not None else '?'} rows")
                for w in dq.get("warnings", []) if isinstance(w, dict)][:20]
    out = {"evaluated": int(dq.get("evaluated", 0) or 0), "failed": int(dq.get("failed", 0) or 0),
           "success": bool(dq.get("success"))}
    if failures:
        out["failures"] = failures
    if dq.get("warned"):
        out["warned"] = int(dq["warned"])
    if warnings:
        out["warnings"] = warnings
    if dq.get("data_docs"):
        out["data_docs"] = str(dq["data_docs"])
    return out


# --- reading --------------------------------------------------------------------------------

def read_nights(settings: Settings, limit: int = 30) -> list[dict[str, Any]]:
    """The last `limit` nights, newest first (in the order they started; a re-run is a night)."""
    return list(reversed(_merged(settings)))[:limit]


def last_good_night(settings: Settings) -> dict[str, Any] | None:
    """The newest night that published its warehouse (what analysts are reading), or None."""
    return next((n for n in read_nights(settings, limit=10**9) if n["state"] == "success" and n["published"]),
                None)
