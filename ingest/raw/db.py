"""The one place that opens the work warehouse for writing.

`connect(path)` creates the parent folder, opens DuckDB and applies `schema.sql` (every
statement is `create ... if not exists`, so this is idempotent). A file another process holds
open gives `WarehouseLocked` with a one-line message instead of DuckDB's long IO error.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import duckdb

SCHEMA_SQL = Path(__file__).with_name("schema.sql")

# Columns added to the raw tables after they were first created: `create table if not exists`
# leaves an older file as it was, so these are added by `ensure_schema` when missing.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("raw.letters", "_superseded_by", "varchar"),
)


# The key of raw.rejected_documents, from a batch's columns (sha256, source_uri, fetched_at).
REJECTION_KEY_SQL = ("coalesce(sha256, source_uri || ' @ ' || "
                     "strftime(fetched_at at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ'))")


class WarehouseLocked(RuntimeError):
    """Another process has the warehouse open (DuckDB allows one writer per file)."""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and tables if missing (idempotent)."""
    _migrate_rejected_documents(con)
    con.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
    for table, column, sql_type in _ADDED_COLUMNS:
        con.execute(f"alter table {table} add column if not exists {column} {sql_type}")


def _migrate_rejected_documents(con: duckdb.DuckDBPyConnection) -> None:
    """Warehouses made before rejections could lack a hash keyed raw.rejected_documents by
    `_sha256`: rebuild it keyed by `_rejection_key` (= the sha256 of each existing row)."""
    cols = [r[0] for r in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'rejected_documents'").fetchall()]
    if not cols or "_rejection_key" in cols:
        return
    con.begin()
    try:
        con.execute("alter table raw.rejected_documents rename to rejected_documents_old")
        con.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
        con.execute("""
            insert into raw.rejected_documents
            select _sha256, _sha256, _source_uri, _archive_path, _parser_version, reason,
                   first_seen_at, last_seen_at
            from raw.rejected_documents_old
        """)
        con.execute("drop table raw.rejected_documents_old")
        con.commit()
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # never hides the error being raised
            con.rollback()
        raise


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
