"""The night's data-quality verdict, read from `audit.dq_checks`: the one reader.

`audit.dq_checks` (DDL in `ingest/raw/schema.sql`) holds one row per check of a run: every GX
expectation (stages `raw` and `marts`, written by the Checkpoint action) and every dbt data test
(stage `dbt`, written by dbt's on-run-end hook, macro `record_dq_results`). Each row has a
severity (error | warn) and a status (pass | warn | fail). A `warn` never fails a night and is
never hidden: the report's badge, `ofsted status` (through the night history, written from this
verdict by the night's dbt and validate steps) and the alerts all show each warning by name and count.

    read_verdict(con, run_id, stages=None) ->
        {"run_id", "checked_at", "stages", "success", "evaluated", "passed", "warned", "failed",
         "warnings": [check, ...], "failures": [check, ...]}

where a check is {"check", "stage", "table", "column", "severity", "count", "sample",
"failing_rows", "detail", "expectation"} ("expectation" repeats "check" for readers of the
older GX-only summary). `read_run_verdict(warehouse, run_id, stages)` reads it from a
warehouse file (WarehouseUnavailable, one line, when it cannot). No GX and no dbt import here.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb

AUDIT_TABLE = "audit.dq_checks"
STAGES = ("raw", "dbt", "marts")  # the order of a night

_CHECKS_SQL = f"""
select check_name, stage, table_name, column_name, severity, status, failing_count,
       failing_sample, failing_rows, details, checked_at
from {AUDIT_TABLE}
where run_id = ? and list_contains(?, stage)
order by list_position(?, stage), status = 'pass', failing_count is null, check_name
"""


class WarehouseUnavailable(RuntimeError):
    """The work warehouse could not be opened, read or written; the message is one line."""


def one_line(value: Any, limit: int = 500) -> str:
    """An error or a detail as one line: whitespace collapsed, cut to `limit` characters."""
    return " ".join(str(value).split())[:limit]


def has_audit(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this warehouse has the verdict table (an older one may not)."""
    return con.execute("select count(*) from information_schema.tables "
                       "where table_schema = 'audit' and table_name = 'dq_checks'").fetchone()[0] > 0


def latest_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run whose checks were written last, or None (no verdict recorded)."""
    if not has_audit(con):
        return None
    row = con.execute(f"select run_id from {AUDIT_TABLE} group by run_id "
                      "order by max(checked_at) desc, run_id desc limit 1").fetchone()
    return row[0] if row else None


def read_verdict(con: duckdb.DuckDBPyConnection, run_id: str,
                 stages: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The verdict of `run_id` over `stages` (default: every stage). A run with no rows is an
    empty verdict (evaluated 0, success True): the caller decides whether that is a problem.
    Checks by stage, those that did not pass first, and among them those that found rows before
    those that could not run (a dbt test skipped after its model failed: no count)."""
    wanted = list(stages or STAGES)
    rows = con.execute(_CHECKS_SQL, [run_id, wanted, wanted]).fetchall() if has_audit(con) else []
    checks = [_check(r) for r in rows]
    warnings = [c for c, r in zip(checks, rows, strict=True) if r[5] == "warn"]
    failures = [c for c, r in zip(checks, rows, strict=True) if r[5] == "fail"]
    checked_at = max((r[10] for r in rows), default=None)
    return {
        "run_id": run_id,
        "checked_at": checked_at.isoformat() if isinstance(checked_at, dt.datetime) else checked_at,
        "stages": [s for s in wanted if any(r[1] == s for r in rows)],
        "success": not failures,
        "evaluated": len(rows),
        "passed": len(rows) - len(warnings) - len(failures),
        "warned": len(warnings),
        "failed": len(failures),
        "warnings": warnings,
        "failures": failures,
    }


def read_run_verdict(warehouse: Path, run_id: str, stages: tuple[str, ...] | None = None) -> dict[str, Any]:
    """`read_verdict` on the warehouse file `warehouse` (WarehouseUnavailable if unreadable)."""
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot open {warehouse}: {one_line(exc)}") from exc
    try:
        return read_verdict(con, run_id, stages)
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot read the DQ verdict of {warehouse}: {one_line(exc)}") from exc
    finally:
        con.close()


def _check(row: tuple) -> dict[str, Any]:
    name, stage, table, column, severity, _status, count, sample, where, details, _at = row
    return {"check": name, "expectation": name, "stage": stage, "table": table, "column": column,
            "severity": severity, "count": count, "sample": _json(sample), "failing_rows": where,
            "detail": details}


def _json(text: Any) -> Any:
    if text is None or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def check_line(check: dict[str, Any]) -> str:
    """One check as one line: `name (table): N rows - detail`."""
    count = check.get("count")
    rows = "" if count is None else f": {count:,} row{'s' if count != 1 else ''}"
    where = f" ({check['table']})" if check.get("table") else ""
    detail = f" - {check['detail']}" if check.get("detail") else ""
    return " ".join(f"{check.get('check')}{where}{rows}{detail}".split())[:500]
