"""The one place that opens the work warehouse for writing.

`connect(path)` creates the parent folder, opens DuckDB and applies `schema.sql` (every
statement is `create ... if not exists`, so this is idempotent). A file another process holds
open gives `WarehouseLocked` with a one-line message instead of DuckDB's long IO error.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

SCHEMA_SQL = Path(__file__).with_name("schema.sql")

# Columns added to the raw tables after they were first created: `create table if not exists`
# leaves an older file as it was, so these are added by `ensure_schema` when missing.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("raw.letters", "_superseded_by", "varchar"),
)


class WarehouseLocked(RuntimeError):
    """Another process has the warehouse open (DuckDB allows one writer per file)."""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and tables if missing (idempotent)."""
    con.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
    for table, column, sql_type in _ADDED_COLUMNS:
        con.execute(f"alter table {table} add column if not exists {column} {sql_type}")


def connect(path: Path | str, *, apply_schema: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the warehouse at `path` for writing (creating its folder), with the raw schema applied."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if _is_lock_error(exc):
            raise WarehouseLocked(
                f"warehouse {path} is in use by another process (DuckDB allows one writer); "
                "try again when it has finished"
            ) from exc
        raise
    try:
        con.execute("set timezone = 'UTC'")
        if apply_schema:
            ensure_schema(con)
    except BaseException:
        con.close()
        raise
    return con


def _is_lock_error(exc: Exception) -> bool:
    return bool(re.search(r"lock|already open|in use", str(exc), re.IGNORECASE))
