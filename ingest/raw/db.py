"""The one place that opens the work warehouse for writing.

`connect(path)` creates the parent folder, opens DuckDB and applies `schema.sql` (every
statement is `create ... if not exists`, so this is idempotent). A file another process holds
open gives `WarehouseLocked` with a one-line message instead of DuckDB's long IO error.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from ingest.raw.duplicates import rehash_rows

SCHEMA_SQL = Path(__file__).with_name("schema.sql")

# Columns added to the raw tables after they were first created: `create table if not exists`
# leaves an older file as it was, so these are added by `ensure_schema` when missing.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("raw.letters", "_superseded_by", "varchar"),
)


# The raw layer's rule version (raw.schema_version): 2 = content hashes include the letter date.
RAW_SCHEMA_VERSION = 2


class WarehouseLocked(RuntimeError):
    """Another process has the warehouse open (DuckDB allows one writer per file)."""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and tables if missing (idempotent)."""
    con.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
    for table, column, sql_type in _ADDED_COLUMNS:
        con.execute(f"alter table {table} add column if not exists {column} {sql_type}")
    (recorded,) = con.execute("select max(version) from raw.schema_version").fetchone()
    if recorded is None or recorded < RAW_SCHEMA_VERSION:
        _migrate(con, recorded)


def _migrate(con: duckdb.DuckDBPyConnection, recorded: int | None) -> None:
    """Bring an older file's raw rows up to RAW_SCHEMA_VERSION, once, in one transaction:
    recompute every letter's content hash from its raw rows (the rule now reads the letter date)."""
    con.begin()
    try:
        hashes = rehash_rows(
            con.execute("select _sha256, authority_name, inspection_start_date, inspection_end_date, "
                        "letter_date from raw.letters").fetchall(),
            con.execute("select _sha256, category, ordinal, finding_text from raw.findings").fetchall())
        if hashes:
            con.execute("update raw.letters as l set _content_hash = h.hash "
                        "from (select unnest(?::varchar[]) as sha, unnest(?::varchar[]) as hash) as h "
                        "where l._sha256 = h.sha", [list(hashes), list(hashes.values())])
        con.execute("insert into raw.schema_version values (?, now(), ?)",
                    [RAW_SCHEMA_VERSION, f"from {recorded or 'unrecorded'}: content hashes of "
                     f"{len(hashes)} letters recomputed with the letter date"])
        con.commit()
    except BaseException:
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
