"""Validation results as rows of `audit.dq_results`, one-line failure details, and the summary
the DAG and `ofsted run` read. No GX import: the rows are read from GX's result objects.
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

MAX_EXAMPLES = 3  # failing rows named in a failure's detail
_HASH = re.compile(r"^[0-9a-f]{32,}$")  # sha256 / md5 surrogate keys: shown by their first 12

AUDIT_DDL = """
create schema if not exists audit;
create table if not exists audit.dq_results (
    run_id varchar not null,
    validated_at timestamptz not null,
    suite varchar not null,
    table_name varchar not null,
    expectation_type varchar not null,
    column_name varchar,
    kwargs json,
    success boolean not null,
    element_count bigint,
    unexpected_count bigint,
    observed_value varchar,
    details varchar
);
"""
AUDIT_COLUMNS = (
    "run_id", "validated_at", "suite", "table_name", "expectation_type", "column_name",
    "kwargs", "success", "element_count", "unexpected_count", "observed_value", "details",
)



class WarehouseUnavailable(RuntimeError):
    """The work warehouse could not be opened, read or written; the message is one line."""


@dataclass(frozen=True)
class TableInfo:
    """What a failure detail names besides GX's result: the table, the columns that name a
    failing row, and why the table could not be read (then every expectation fails)."""

    table: str
    id_columns: tuple[str, ...]
    problem: str | None = None


# --- results --------------------------------------------------------------------------------

def result_rows(
    tf: TableInfo, suite: str, suite_result: Any, run_id: str, validated_at: dt.datetime
) -> list[dict]:
    """One audit row per expectation of a suite's validation result."""
    rows = []
    for r in suite_result.results:
        config = r.expectation_config
        kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        result = r.result or {}
        rows.append({
            "run_id": run_id,
            "validated_at": validated_at,
            "suite": suite,
            "table_name": tf.table,
            "expectation_type": config.type,
            "column_name": expectation_column(kwargs),
            "kwargs": json.dumps(kwargs, default=_json_default, sort_keys=True),
            "success": bool(r.success),
            "element_count": result.get("element_count"),
            "unexpected_count": result.get("unexpected_count"),
            "observed_value": _observed(result),
            "details": None if r.success else failure_detail(tf, config, r),
        })
    return rows


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


def _one_line(exc: Any) -> str:
    return " ".join(str(exc).split())[:500]


def summarise(rows: list[dict], data_docs: str) -> dict:
    failed = [r for r in rows if not r["success"]]
    return {
        "success": not failed,
        "evaluated": len(rows),
        "failed": len(failed),
        "failures": [
            {
                "table": r["table_name"],
                "expectation": r["expectation_type"],
                "column": r["column_name"],
                "detail": r["details"],
            }
            for r in failed
        ],
        "data_docs": data_docs,
    }


# --- writing --------------------------------------------------------------------------------

def write_results(warehouse: Path, run_id: str, suites: tuple[str, ...], rows: list[dict]) -> None:
    """Replace this run's rows for these suites in `audit.dq_results` (one transaction)."""
    frame = pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot open {warehouse} to write DQ results: {_one_line(exc)}") from exc
    try:
        con.execute("begin transaction")  # DDL included: DuckDB's DDL is transactional
        con.execute(AUDIT_DDL)
        placeholders = ", ".join("?" for _ in suites)
        con.execute(
            f"delete from audit.dq_results where run_id = ? and suite in ({placeholders})",
            [run_id, *suites],
        )
        con.register("dq_rows", frame)
        con.execute(
            f"insert into audit.dq_results ({', '.join(AUDIT_COLUMNS)}) "
            f"select {', '.join(AUDIT_COLUMNS)} from dq_rows"
        )
        con.execute("commit")
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):  # no transaction, or a failed rollback: say why it failed
            con.execute("rollback")
        raise WarehouseUnavailable(f"cannot write DQ results to {warehouse}: {_one_line(exc)}") from exc
    finally:
        con.close()
