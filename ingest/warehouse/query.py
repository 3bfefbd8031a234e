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
import re
import stat
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import duckdb

from ingest.files import UnsafeFile, open_regular, read_fd
from ingest.redact import escape_controls
from ingest.settings import Settings

MARTS_SCHEMA = "marts"
FORMATS = ("table", "csv", "json", "markdown")
MAX_CELL_WIDTH = 60  # table output only; csv/json always give whole values
TABLE_MAX_ROWS = 10_000  # table output only; csv/json stream every row
FETCH_ROWS = 10_000

_NUMERIC_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
    "FLOAT", "DOUBLE", "REAL",
}


class QueryError(Exception):
    """A problem worth one line to the user (missing warehouse, bad arguments)."""


# --- the connection ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Limits:
    """What one analyst's connection may use: DuckDB's memory limit and threads, and the time a
    statement may run (`timeout_s`, enforced by `deadline`)."""

    timeout_s: float = 60.0
    memory_bytes: int = 2 * 2**30
    threads: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.sql_timeout_s, settings.sql_memory_limit, settings.sql_threads)


EXTERNAL_CACHE_DIR = "cache"  # under the data directory: what `ext` loaded, for the next query

RESERVED_CATALOGS = {"memory", "system", "temp", "main", "ext"}


def missing_warehouse_message(path: Path) -> str:
    return f"no published warehouse at {path}; run `make run` first"


def catalog_name(path: Path) -> str:
    """The warehouse's catalog name in SQL: its file stem (`ofsted`), as DuckDB would name it."""
    stem = Path(path).stem
    return "warehouse" if stem.lower() in RESERVED_CATALOGS or not stem else stem


def connect_readonly(path: Path, limits: Limits | None = None, external_dir: Path | None = None,
                     external_caps: tuple[int, int] = (50, 200 * 2**20),
                     warnings: list[str] | None = None,
                     external_cache: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A connection that can read `path` and nothing else, within `limits`.

    An in-memory database of its own (so nothing is shared with other connections in this
    process) with the warehouse attached read-only and made the default catalog, `marts` first on
    the search path. When `external_dir` is given its CSV/Parquet files become tables of catalog
    `ext` first (from the cache in `external_cache` when the folder is unchanged). Then file
    access is switched off and the configuration locked: no `COPY ... TO`,
    `read_csv`, `ATTACH`, `INSTALL`. There is no spill directory (DuckDB lets a locked-down query
    write into its spill directory, so any would be a place queries can write): a query that
    needs more than the memory limit fails with one line instead of spilling.
    """
    path = Path(path)
    limits = limits or Limits()
    if not path.is_file():
        raise QueryError(missing_warehouse_message(path))
    con = duckdb.connect(":memory:", config={
        "memory_limit": f"{max(limits.memory_bytes // 2**20, 1)}MiB",
        "threads": max(limits.threads, 1),
        "temp_directory": "",
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
    })
    try:
        catalog = catalog_name(path)
        con.execute(f"attach {_literal(str(path))} as {_ident(catalog)} (read_only)")
        con.execute(f"use {_ident(catalog)}")
        if external_dir is not None:
            from ingest.warehouse.external import load_external

            found = load_external(con, Path(external_dir), *external_caps, limits, external_cache)
            if warnings is not None:
                warnings.extend(found)
        con.execute("set enable_external_access = false")
        con.execute("set TimeZone = 'UTC'")
        con.execute("set lock_configuration = true")
        has_marts = con.execute(
            "select count(*) from information_schema.schemata where catalog_name = ? and schema_name = ?",
            [catalog, MARTS_SCHEMA],
        ).fetchone()[0]
        if has_marts:  # search_path is a per-connection option, allowed after the lock
            con.execute(f"set search_path = '{MARTS_SCHEMA},main'")
    except BaseException:
        con.close()
        raise
    return con


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def readonly(path: Path, limits: Limits | None = None,
             **external: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect_readonly(path, limits, **external)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def deadline(con: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[threading.Event]:
    """Interrupt whatever `con` runs after `seconds` (DuckDB has no statement timeout setting).

    The event is set when the time is up: a caller streaming rows checks it between batches, and
    `timed_out` turns DuckDB's "Interrupted!" into one line naming the setting.
    """
    up = threading.Event()

    def stop() -> None:
        up.set()
        con.interrupt()

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield up
    except duckdb.InterruptException:
        if up.is_set():
            raise QueryTimeout(seconds) from None
        raise
    finally:
        timer.cancel()


class QueryTimeout(QueryError):
    def __init__(self, seconds: float):
        super().__init__(f"query stopped after {seconds:g} s (the limit is OFSTED_SQL_TIMEOUT_S)")


@contextmanager
def address_space_cap(extra_bytes: int) -> Iterator[None]:
    """Cap this process's address space at its current size plus `extra_bytes` (plus 1 GiB of
    headroom for Python and DuckDB's threads) while the block runs, then restore the old cap.

    DuckDB's memory_limit governs its buffer pool, not every allocation: a 1e9-element list
    (`select range(1e9)`) is one 8 GB allocation that it makes anyway. Under this cap the
    allocation fails and DuckDB reports "Out of Memory Error". For CLI entry points only: the
    cap is per process, so concurrent callers in one process would share it.
    """
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as fh:
            size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        old = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):  # not Linux: DuckDB's own limit only
        yield
        return
    cap = size + extra_bytes + 2**30
    if old[1] != resource.RLIM_INFINITY:
        cap = min(cap, old[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)


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


def _cell(v: Any, max_width: int, wrap: bool) -> list[str]:
    """A value as the lines of a table cell: NULL shown, newlines as \\n; cut with … at
    `max_width` characters, or wrapped onto several lines with `wrap` (0 = never cut)."""
    s = text_value(v)
    if s is None:
        return ["NULL"]
    s = escape_controls(s.replace("\r\n", "\\n").replace("\n", "\\n").replace("\t", " "))
    if max_width <= 0 or len(s) <= max_width:
        return [s]
    if wrap:
        return textwrap.wrap(s, max_width, break_long_words=True, break_on_hyphens=False) or [s]
    return [s[: max_width - 1] + "…"]


def format_table(columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]],
                 more: bool = False, max_width: int | None = None, wrap: bool = False) -> str:
    """An aligned text table: numbers right-aligned, NULL shown, long text cut, row count below.

    `max_width` is the widest a cell may be (default MAX_CELL_WIDTH; a single column is never
    cut; 0 = never cut); `wrap` continues a long cell on the next lines instead of cutting it.
    `more` says rows were left out after these (the footer then says how to get them all).
    """
    if max_width is None:
        max_width = 0 if len(columns) == 1 else MAX_CELL_WIDTH
    cells = [[_cell(v, max_width, wrap) for v in row] for row in rows]
    numeric = [is_numeric_type(t) for t in types]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], *(len(x) for x in c))

    def line(values: Sequence[str], align_numbers: bool) -> str:
        parts = []
        for i, v in enumerate(values):
            right = align_numbers and numeric[i] and v != "NULL"
            parts.append(v.rjust(widths[i]) if right else v.ljust(widths[i]))
        return " | ".join(parts).rstrip()

    out = [line(columns, False), "-+-".join("-" * w for w in widths)]
    for row in cells:
        for k in range(max(len(c) for c in row) if row else 1):
            out.append(line([c[k] if k < len(c) else "" for c in row], True))
    n = len(rows)
    if more:
        out.append(f"(first {n:,} rows shown; add a LIMIT, or use --format csv or json for every row)")
    else:
        out.append(f"({n:,} row{'' if n == 1 else 's'})")
    return "\n".join(out) + "\n"


def write_markdown(columns: Sequence[str], types: Sequence[str],
                   batches: Iterable[Sequence[Sequence[Any]]], out: IO[str]) -> int:
    """A GitHub-flavoured Markdown table of every row, whole values (| escaped, newlines as <br>)."""

    def cell(v: Any) -> str:
        s = text_value(v)
        if s is None:
            return "NULL"
        s = s.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")
        return escape_controls(s)

    out.write("| " + " | ".join(cell(c) for c in columns) + " |\n")
    out.write("|" + "|".join("---:" if is_numeric_type(t) else "---" for t in types) + "|\n")
    n = 0
    for batch in batches:
        for row in batch:
            out.write("| " + " | ".join(cell(v) for v in row) + " |\n")
            n += 1
    return n


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


def _batches(cur: duckdb.DuckDBPyConnection, up: threading.Event | None = None,
             seconds: float = 0.0) -> Iterator[list[tuple]]:
    while batch := cur.fetchmany(FETCH_ROWS):
        if up is not None and up.is_set():  # the time ran out while rows were being written
            raise QueryTimeout(seconds)
        yield batch


@dataclass(frozen=True)
class Output:
    """How a result is printed: `fmt` one of FORMATS; `max_width`/`wrap` for the table format."""

    fmt: str = "table"
    max_width: int | None = None
    wrap: bool = False


def write_result(cur: duckdb.DuckDBPyConnection, out: IO[str], output: Output,
                 up: threading.Event | None = None, seconds: float = 0.0) -> int:
    """Write the result of the statement `cur` ran to `out` in `output`'s format; returns rows."""
    if cur.description is None:
        return 0
    columns = [d[0] for d in cur.description]
    types = [str(d[1]) for d in cur.description]
    if output.fmt == "table":
        rows = cur.fetchmany(TABLE_MAX_ROWS + 1)
        more = len(rows) > TABLE_MAX_ROWS
        rows = rows[:TABLE_MAX_ROWS]
        out.write(format_table(columns, types, rows, more, output.max_width, output.wrap))
        return len(rows)
    batches = _batches(cur, up, seconds)
    if output.fmt == "markdown":
        return write_markdown(columns, types, batches, out)
    writer = write_csv if output.fmt == "csv" else write_json
    return writer(columns, batches, out)


# --- ofsted sql -------------------------------------------------------------------------------

SQL_FILE_MAX_BYTES = 16 * 2**20


@dataclass(frozen=True)
class SqlText:
    """The SQL to run and whether its messages may quote it: a file others cannot read
    (`-f /etc/shadow` run by someone who may read it) is never echoed in an error."""

    sql: str
    private: bool = False


def read_sql(query: str | None, file: str | Path | None) -> SqlText:
    if query and file:
        raise QueryError("give the SQL as an argument or with -f FILE, not both")
    private = False
    if file == "-":
        query = sys.stdin.read()
    elif file:
        p = Path(file)
        try:
            fd = open_regular(p)  # never blocks on a FIFO; a folder or device is one line
        except FileNotFoundError:
            raise QueryError(f"no such SQL file: {p}") from None
        except UnsafeFile as exc:
            raise QueryError(f"cannot read {p}: {str(exc).split(': ', 1)[1]}") from None
        except OSError as exc:
            raise QueryError(f"cannot read {p}: {error_line(exc)}") from None
        try:
            private = not os.fstat(fd).st_mode & stat.S_IROTH
            query = read_fd(fd, SQL_FILE_MAX_BYTES, "the SQL file cap").decode("utf-8")
        except (OSError, ValueError) as exc:
            raise QueryError(f"cannot read {p}: {error_line(exc)}") from None
        finally:
            os.close(fd)
    if not query or not query.strip():
        raise QueryError('no SQL given: ofsted sql "select ..." or ofsted sql -f FILE.sql')
    return SqlText(query, private)


def without_quotes(exc: BaseException) -> str:
    """DuckDB's first line with whatever it quotes of the SQL left out (for a private SQL file)."""
    line = error_line(exc)
    kind = line.split(":", 1)[0] if ":" in line else type(exc).__name__
    detail = "syntax error" if "syntax error" in line else "the statement failed"
    return f"{kind}: {detail} (DuckDB's message is not shown: the SQL file is not readable by others, " \
           "and the message would quote it)"


def run_query(warehouse: Path, query: str, fmt: str | Output, out: IO[str], *, limits: Limits | None = None,
              script: bool = True, warnings: list[str] | None = None,
              variables: Mapping[str, str] | None = None, **external: Any) -> int:
    """Run `query` (the last statement's result is printed) and write it to `out`; returns rows.

    `script=False` allows one statement only (`ofsted sql "..."`; a file given with -f may hold
    several). The statements run under `limits` (time, memory, threads); `external` passes
    `external_dir`/`external_caps` to the connection, whose warnings go to `warnings`.
    `variables` (`--var NAME=VALUE`) are set as DuckDB variables the SQL reads with
    `getvariable('NAME')` (text; unset ones are null): each must be one the SQL reads.
    """
    output = fmt if isinstance(fmt, Output) else Output(fmt)
    if output.fmt not in FORMATS:
        raise QueryError(f"unknown format {output.fmt!r}; choose one of {', '.join(FORMATS)}")
    limits = limits or Limits()
    with readonly(warehouse, limits, warnings=warnings, **external) as con:
        statements = con.extract_statements(query)
        if not statements:
            raise QueryError("no SQL statement given (only comments or semicolons)")
        if len(statements) > 1 and not script:
            raise QueryError(f"one statement per call ({len(statements)} given): put a script in a file "
                             "and run it with -f FILE")
        for name, value in check_variables(query, variables or {}).items():
            con.execute(f"set variable {name} = ?", [value])
        with deadline(con, limits.timeout_s) as up:
            cur = con.execute(query)
            return write_result(cur, out, output, up, limits.timeout_s)


VARIABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_GETVARIABLE = re.compile(r"getvariable\(\s*'([a-z_][a-z0-9_]*)'\s*\)", re.IGNORECASE)


def parse_variables(pairs: Sequence[str] | None) -> dict[str, str]:
    """`--var NAME=VALUE` arguments as {name: value} (a later one wins); one-line errors."""
    out: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        name = name.strip().lower()
        if not sep or not VARIABLE_NAME.fullmatch(name):
            raise QueryError(f"--var {pair!r}: give NAME=VALUE, NAME in letters, digits and _")
        out[name] = value
    return out


def query_variables(query: str) -> list[str]:
    """The variables a query reads (`getvariable('name')`), in order of first use."""
    return list(dict.fromkeys(m.lower() for m in _GETVARIABLE.findall(query)))


def check_variables(query: str, variables: Mapping[str, str]) -> Mapping[str, str]:
    """`variables`, after checking the query reads each (a misspelt --var is an error, not ignored)."""
    read = query_variables(query)
    unknown = [n for n in variables if n not in read]
    if unknown:
        takes = f"it reads {', '.join(read)}" if read else "it reads none"
        raise QueryError(f"the SQL has no parameter {unknown[0]!r} ({takes} with getvariable)")
    return variables


def with_one_line_errors(command: str, action: Callable[[], int]) -> int:
    """Run a command's action; a user-facing failure becomes `ofsted <command>: error: <one line>`, exit 1."""
    try:
        return action()
    except QueryError as exc:
        message = str(exc)
    except (duckdb.Error, OSError) as exc:
        message = error_line(exc)
    except MemoryError:
        message = "out of memory (the limit is OFSTED_SQL_MEMORY_LIMIT)"
    print(f"ofsted {command}: error: {message}", file=sys.stderr)
    return 1


def cli_sql(settings: Settings, query: str | None, file: str | Path | None, fmt: str = "table",
            max_width: int | None = None, wrap: bool = False, variables: Sequence[str] | None = None) -> int:
    """`ofsted sql`: print a query's result against the published warehouse. 0 ok, 1 on error."""

    def action() -> int:
        text = read_sql(query, file)
        given = parse_variables(variables)
        output = Output(fmt, max_width, wrap)
        try:
            run_cli_query(settings, "sql", lambda **kw: run_query(
                settings.published_warehouse, text.sql, output, sys.stdout, script=file is not None,
                variables=given, **kw))
        except duckdb.Error as exc:
            if text.private and not isinstance(exc, duckdb.InterruptException):
                raise QueryError(without_quotes(exc)) from None
            raise
        return 0

    return with_one_line_errors("sql", action)


def run_cli_query(settings: Settings, command: str, run: Callable[..., int]) -> None:
    """Run an analyst's query for a CLI command: the settings' limits, the process's address
    space capped, ext tables loaded (their warnings on stderr), a closed pipe (`| head`) quiet."""
    limits = Limits.from_settings(settings)
    warnings: list[str] = []
    try:
        with address_space_cap(limits.memory_bytes):
            run(limits=limits, warnings=warnings, external_dir=settings.external_dir,
                external_caps=(settings.external_max_files, settings.external_max_file_bytes),
                external_cache=settings.data_dir / EXTERNAL_CACHE_DIR)
        sys.stdout.flush()
    except BrokenPipeError:  # `ofsted sql ... | head`
        _silence_stdout()
    finally:
        for w in warnings:
            print(f"ofsted {command}: warning: {w}", file=sys.stderr)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
