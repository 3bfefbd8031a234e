"""Validation results as rows of `audit.dq_checks` (the night's one data-quality verdict, which
dbt's tests write too), one-line failure details. No GX import: the rows are read from GX's
result objects. An expectation built with `severity="warning"` is a warning: when it fails its
row says status `warn` and it never fails the night.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ingest.warehouse.verdict import WarehouseUnavailable
from ingest.warehouse.verdict import one_line as _one_line

MAX_EXAMPLES = 3  # failing rows named in a failure's detail
_HASH = re.compile(r"^[0-9a-f]{32,}$")  # sha256 / md5 surrogate keys: shown by their first 12

# audit.dq_checks: the night's verdict, one row per check (its DDL: ingest/raw/schema.sql)
AUDIT_TABLE = "audit.dq_checks"
AUDIT_COLUMNS = (
    "run_id", "checked_at", "stage", "suite", "check_name", "table_name", "column_name", "severity",
    "status", "failing_count", "checked_count", "failing_sample", "failing_rows", "details",
)
MAX_SAMPLE = 5  # failing rows kept in failing_sample


@dataclass(frozen=True)
class TableInfo:
    """What a failure detail names besides GX's result: the table, the columns that name a
    failing row, and why the table could not be read (then every expectation fails)."""

    table: str
    id_columns: tuple[str, ...]
    problem: str | None = None


# --- results --------------------------------------------------------------------------------

def result_rows(
    tf: TableInfo, suite: str, stage: str, suite_result: Any, run_id: str, validated_at: dt.datetime,
    data_docs: str | None = None,
) -> list[dict]:
    """One audit row per expectation of a suite's validation result."""
    rows = []
    seen: dict[str, int] = {}
    for r in suite_result.results:
        config = r.expectation_config
        kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        result = r.result or {}
        column = expectation_column(kwargs)
        name = f"{suite}.{config.type}({column or ''})"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # two expectations of one type on one column: told apart by position
            name += f"#{seen[name]}"
        severity = expectation_severity(config)
        status = "pass" if r.success else ("warn" if severity == "warn" else "fail")
        sample = None if r.success else _sample(result, tf.id_columns)
        rows.append({
            "run_id": run_id,
            "checked_at": validated_at,
            "stage": stage,
            "suite": suite,
            "check_name": name,
            "table_name": tf.table,
            "column_name": column,
            "severity": severity,
            "status": status,
            "failing_count": result.get("unexpected_count"),
            "checked_count": result.get("element_count"),
            "failing_sample": json.dumps(sample, default=_json_default) if sample else None,
            "failing_rows": None if r.success else data_docs,
            "details": failure_detail(tf, config, r) if not r.success else _rule(config),
        })
    return rows


def expectation_severity(config: Any) -> str:
    """'warn' for an expectation built with severity="warning" (or "info"), else 'error'."""
    severity = str(getattr(getattr(config, "severity", None), "value", "") or "critical")
    return "error" if severity == "critical" else "warn"


def _rule(config: Any) -> str | None:
    notes = config.notes
    if notes and not isinstance(notes, str):
        notes = " ".join(notes)
    return _one_line(notes) if notes else None


def _sample(result: dict, id_columns: tuple[str, ...]) -> list | None:
    """Up to MAX_SAMPLE failing rows: their ID columns when GX gave them, else the failing values."""
    index_rows = result.get("partial_unexpected_index_list") or []
    rows = [{k: _fmt(v) for k, v in row.items()} for row in index_rows if isinstance(row, dict)][:MAX_SAMPLE]
    if not rows:
        rows = [_fmt(v) for v in (result.get("partial_unexpected_list") or [])[:MAX_SAMPLE]]
    return rows or None


def expectation_column(kwargs: dict) -> str | None:
    """The column(s) an expectation is about: `col`, `a,b` for pairs and compounds, None for tables."""
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if "column_list" in kwargs:
        return ",".join(map(str, kwargs["column_list"]))
    return None


def failure_detail(tf: TableInfo, config: Any, r: Any) -> str:
    """One line saying what failed: the rule, how many rows, which rows (by their ID columns)."""
    parts = [tf.problem] if tf.problem else []
    error = _exception_message(r.exception_info)
    result = r.result or {}
    notes = config.notes
    if notes and not isinstance(notes, str):
        notes = " ".join(notes)
    if notes:
        parts.append(str(notes))
    if error and not tf.problem:
        parts.append(error)
    elif "unexpected_count" in result:
        count, total = result.get("unexpected_count"), result.get("element_count")
        parts.append(f"{count} of {total} rows unexpected")
        examples = _examples(result, tf.id_columns)
        if examples:
            parts.append("e.g. " + "; ".join(examples))
    elif "observed_value" in result:
        parts.append(f"observed {_fmt(result['observed_value'])}{_bounds(config.kwargs)}")
    return " - ".join(p for p in parts if p)


def _examples(result: dict, id_columns: tuple[str, ...]) -> list[str]:
    index_rows = result.get("partial_unexpected_index_list") or []
    out = []
    for row in index_rows[:MAX_EXAMPLES]:
        if isinstance(row, dict):
            out.append(", ".join(f"{k}={_short(_fmt(v))}" for k, v in row.items()))
    if not out:
        out = [_fmt(v) for v in (result.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]]
    return out


def _short(text: str) -> str:
    return text[:12] + "..." if _HASH.match(text) else text


def _bounds(kwargs: dict) -> str:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is None and hi is None:
        return ""
    return f" (expected {_fmt(lo) if lo is not None else '-inf'}..{_fmt(hi) if hi is not None else 'inf'})"


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return _one_line(info.get("exception_message") or "expectation raised an exception")
    for nested in info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return _one_line(nested.get("exception_message") or "expectation raised an exception")
    return None


def _observed(result: dict) -> str | None:
    if "observed_value" not in result:
        return None
    return json.dumps(result["observed_value"], default=_json_default)


def _fmt(value: Any) -> str:
    if value is None or value is pd.NaT:
        return "null"
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, dt.datetime):
        midnight = (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0)
        return value.date().isoformat() if midnight else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return _fmt(value.item())
    if isinstance(value, float):
        return "null" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def _json_default(value: Any) -> Any:
    if value is pd.NaT:
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# --- writing --------------------------------------------------------------------------------

def write_results(warehouse: Path, run_id: str, suites: tuple[str, ...], rows: list[dict]) -> None:
    """Replace this run's rows for these suites in `audit.dq_checks` (one transaction)."""
    from ingest.raw.db import ensure_schema

    frame = pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot open {warehouse} to write DQ results: {_one_line(exc)}") from exc
    try:
        ensure_schema(con)  # the audit table (and the raw layer) of an older file
        con.execute("begin transaction")
        placeholders = ", ".join("?" for _ in suites)
        con.execute(
            f"delete from {AUDIT_TABLE} where run_id = ? and suite in ({placeholders})",
            [run_id, *suites],
        )
        con.register("dq_rows", frame)
        con.execute(
            f"insert into {AUDIT_TABLE} ({', '.join(AUDIT_COLUMNS)}) "
            f"select {', '.join(AUDIT_COLUMNS)} from dq_rows"
        )
        con.execute("commit")
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):  # no transaction, or a failed rollback: say why it failed
            con.execute("rollback")
        raise WarehouseUnavailable(f"cannot write DQ results to {warehouse}: {_one_line(exc)}") from exc
    finally:
        con.close()
