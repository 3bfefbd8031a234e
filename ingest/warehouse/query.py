"""Analysts' access to the published warehouse: `ofsted sql` and `ofsted export`.

Every read goes through `connect_readonly`: a read-only DuckDB connection with external
access disabled and the configuration locked, so a query can read the warehouse and
nothing else (no `COPY ... TO`, `read_csv('/etc/passwd')`, `ATTACH`, `INSTALL`/`LOAD`).
The published file is only ever replaced by an atomic `os.replace`, never written in place,
so a read-only open succeeds while a nightly run writes the working copy.

`ofsted export` still needs to write files: it reads each mart into Arrow through the same
locked connection and writes Parquet/CSV with pyarrow, so external access is never enabled.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import math
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import duckdb

from ingest.settings import Settings

MARTS_SCHEMA = "marts"
FORMATS = ("table", "csv", "json")
MAX_CELL_WIDTH = 60  # table output only; csv/json always give whole values
TABLE_MAX_ROWS = 10_000  # table output only; csv/json stream every row
FETCH_ROWS = 10_000

_NUMERIC_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
    "FLOAT", "DOUBLE", "REAL",
}


_CONNECT_LOCK = threading.Lock()


class QueryError(Exception):
    """A problem worth one line to the user (missing warehouse, bad arguments)."""


# --- the connection ---------------------------------------------------------------------------

def missing_warehouse_message(path: Path) -> str:
    return f"no published warehouse at {path}; run `make run` first"


def connect_readonly(path: Path) -> duckdb.DuckDBPyConnection:
    """Open `path` read-only, external access off, `marts` first on the search path, config locked."""
    path = Path(path)
    if not path.is_file():
        raise QueryError(missing_warehouse_message(path))
    with _CONNECT_LOCK:
        con = duckdb.connect(
            str(path),
            read_only=True,
            config={"enable_external_access": False, "autoload_known_extensions": False},
        )
    try:
        with _CONNECT_LOCK:
            # DuckDB shares one database instance between connections to the same file in a
            # process: the first connection sets the global options and locks them.
            if not con.execute("select current_setting('lock_configuration')").fetchone()[0]:
                con.execute("set TimeZone = 'UTC'")
                con.execute("set lock_configuration = true")
        has_marts = con.execute(
            "select count(*) from information_schema.schemata where schema_name = ?", [MARTS_SCHEMA]
        ).fetchone()[0]
        if has_marts:  # search_path is a per-connection option, allowed after the lock
            con.execute(f"set search_path = '{MARTS_SCHEMA},main'")
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def readonly(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect_readonly(path)
    try:
        yield con
    finally:
        con.close()


def error_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (DuckDB's errors are multi-line)."""
    for line in str(exc).splitlines():
        if line.strip():
            line = line.strip()
            if "Could not set lock on file" in line:
                line += " (another process is writing this file: read the published warehouse, " \
                        "which a night only ever replaces, never writes)"
            return line
    return type(exc).__name__


# --- rendering values -------------------------------------------------------------------------

def is_numeric_type(type_name: str) -> bool:
    t = type_name.upper()
    return t in _NUMERIC_TYPES or t.startswith("DECIMAL")


def text_value(v: Any) -> str | None:
    """A value as text for table/CSV output; None stays None (the caller decides how NULL looks)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, bytes | bytearray | memoryview):
        return "\\x" + bytes(v).hex()
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, list | tuple | dict):
        return json.dumps(json_value(v), ensure_ascii=False)
    return str(v)


def json_value(v: Any) -> Any:
    """A value as JSON: dates ISO, decimals as numbers, NaN/inf as null, nested types kept."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() and v.as_tuple().exponent >= 0 else float(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return "\\x" + bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_value(x) for x in v]
    return str(v)


def _cell(v: Any) -> str:
    s = text_value(v)
    if s is None:
        return "NULL"
    s = s.replace("\r\n", "\\n").replace("\n", "\\n").replace("\t", " ")
    if len(s) > MAX_CELL_WIDTH:
        s = s[: MAX_CELL_WIDTH - 1] + "…"
    return s


def format_table(columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]],
                 more: bool = False) -> str:
    """An aligned text table: numbers right-aligned, NULL shown, long text cut, row count below.

    `more` says rows were left out after these (the footer then says how to get them all).
    """
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [is_numeric_type(t) for t in types]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def line(values: Sequence[str], align_numbers: bool) -> str:
        parts = []
        for i, v in enumerate(values):
            right = align_numbers and numeric[i] and v != "NULL"
            parts.append(v.rjust(widths[i]) if right else v.ljust(widths[i]))
        return " | ".join(parts).rstrip()

    out = [line(columns, False), "-+-".join("-" * w for w in widths)]
    out.extend(line(r, True) for r in cells)
    n = len(rows)
    if more:
        out.append(f"(first {n:,} rows shown; add a LIMIT, or use --format csv or json for every row)")
    else:
        out.append(f"({n:,} row{'' if n == 1 else 's'})")
    return "\n".join(out) + "\n"


def write_csv(columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]], out: IO[str]) -> int:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    n = 0
    for batch in batches:
        for row in batch:
            w.writerow(["" if (s := text_value(v)) is None else s for v in row])
            n += 1
    return n


def write_json(columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]], out: IO[str]) -> int:
    """A JSON array of records, one record per line (streams: never holds the whole result)."""
    n = 0
    out.write("[")
    for batch in batches:
        for row in batch:
            rec = {c: json_value(v) for c, v in zip(columns, row, strict=True)}
            out.write(("\n" if n == 0 else ",\n") + json.dumps(rec, ensure_ascii=False))
            n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _batches(cur: duckdb.DuckDBPyConnection) -> Iterator[list[tuple]]:
    while batch := cur.fetchmany(FETCH_ROWS):
        yield batch


# --- ofsted sql -------------------------------------------------------------------------------

def read_query(query: str | None, file: str | Path | None) -> str:
    if query and file:
        raise QueryError("give the SQL as an argument or with -f FILE, not both")
    if file == "-":
        query = sys.stdin.read()
    elif file:
        p = Path(file)
        try:
            query = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise QueryError(f"no such SQL file: {p}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise QueryError(f"cannot read {p}: {error_line(exc)}") from None
    if not query or not query.strip():
        raise QueryError('no SQL given: ofsted sql "select ..." or ofsted sql -f FILE.sql')
    return query


def run_query(warehouse: Path, query: str, fmt: str, out: IO[str]) -> int:
    """Run `query` (the last statement's result is printed) and write it to `out`; returns rows."""
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with readonly(warehouse) as con:
        cur = con.execute(query)
        if cur.description is None:
            return 0
        columns = [d[0] for d in cur.description]
        types = [str(d[1]) for d in cur.description]
        if fmt == "table":
            rows = cur.fetchmany(TABLE_MAX_ROWS + 1)
            more = len(rows) > TABLE_MAX_ROWS
            rows = rows[:TABLE_MAX_ROWS]
            out.write(format_table(columns, types, rows, more))
            return len(rows)
        writer = write_csv if fmt == "csv" else write_json
        return writer(columns, _batches(cur), out)


def with_one_line_errors(command: str, action: Callable[[], int]) -> int:
    """Run a command's action; a user-facing failure becomes `ofsted <command>: error: <one line>`, exit 1."""
    try:
        return action()
    except QueryError as exc:
        message = str(exc)
    except (duckdb.Error, OSError) as exc:
        message = error_line(exc)
    print(f"ofsted {command}: error: {message}", file=sys.stderr)
    return 1


def cli_sql(settings: Settings, query: str | None, file: str | Path | None, fmt: str = "table") -> int:
    """`ofsted sql`: print a query's result against the published warehouse. 0 ok, 1 on error."""

    def action() -> int:
        sql = read_query(query, file)
        try:
            run_query(settings.published_warehouse, sql, fmt, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # `ofsted sql ... | head`
            _silence_stdout()
        return 0

    return with_one_line_errors("sql", action)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
