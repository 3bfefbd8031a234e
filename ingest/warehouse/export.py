"""`ofsted export DIR [--csv]`: every mart of the published warehouse as Parquet (and CSV).

Each file is written to a temporary name and renamed into place; the connection is the same
read-only, no-file-access one `ofsted sql` uses (Arrow streams the rows out). Parquet keeps
DuckDB's types; CSV writes every text value in quotes (codes such as `dfe_la_code` stay text)
and `<table>.schema.json` beside it gives each column's type, for readers that guess
(pandas: `dtype=`). The folder's `.ofsted-export.json` lists the files the last export wrote:
the next export removes those it did not write again, and never touches any other file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb

from ingest.settings import Settings
from ingest.warehouse.query import MARTS_SCHEMA, QueryError, readonly, with_one_line_errors

# --- the export ----------------------------------------------------------------------------

def mart_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = ? order by table_name",
        [MARTS_SCHEMA],
    ).fetchall()
    return [r[0] for r in rows]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _write_atomically(final: Path, write: Callable[[Path], int]) -> int:
    """Run `write(tmp)` on a temporary name beside `final`, then rename it into place."""
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        result = write(tmp)
        os.replace(tmp, final)
        return result
    finally:
        tmp.unlink(missing_ok=True)


def _is_nested(type_name: str) -> bool:
    t = type_name.upper()
    return t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION"))


def csv_select(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """A select of `table` fit for CSV: lists, structs and maps become JSON text."""
    cols = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [MARTS_SCHEMA, table],
    ).fetchall()
    items = [f"to_json({_quote(c)})::varchar as {_quote(c)}" if _is_nested(t) else _quote(c) for c, t in cols]
    return f"select {', '.join(items)} from {_quote(MARTS_SCHEMA)}.{_quote(table)}"


MANIFEST = ".ofsted-export.json"


def column_types(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    """Each column's DuckDB type, and the type its CSV text is read as (JSON text for nested)."""
    cols = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [MARTS_SCHEMA, table],
    ).fetchall()
    return [{"name": c, "type": t, "csv_type": "VARCHAR" if _is_nested(t) else t} for c, t in cols]


def _write_schema(tmp: Path, table: str, columns: list[dict], rows: int) -> int:
    doc = {"table": f"{MARTS_SCHEMA}.{table}", "rows": rows, "csv": f"{table}.csv", "columns": columns}
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return rows


def export_table(con: duckdb.DuckDBPyConnection, table: str, out_dir: Path, csv_too: bool) -> dict:
    """Stream one mart into `<table>.parquet` (and `.csv`) in `out_dir`; returns rows and files."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    def parquet(tmp: Path) -> int:
        reader = con.sql(f"select * from {_quote(MARTS_SCHEMA)}.{_quote(table)}").to_arrow_reader(100_000)
        n = 0
        with pq.ParquetWriter(tmp, reader.schema, compression="zstd") as w:
            for batch in reader:
                w.write_batch(batch)
                n += batch.num_rows
        return n

    def csv_file(tmp: Path) -> int:
        reader = con.sql(csv_select(con, table)).to_arrow_reader(100_000)
        n = 0
        with pacsv.CSVWriter(tmp, reader.schema) as w:
            for batch in reader:
                w.write_batch(batch)
                n += batch.num_rows
        return n

    files = [out_dir / f"{table}.parquet"]
    rows = _write_atomically(files[0], parquet)
    if csv_too:
        files.append(out_dir / f"{table}.csv")
        _write_atomically(files[-1], csv_file)
        files.append(out_dir / f"{table}.schema.json")
        columns = column_types(con, table)
        _write_atomically(files[-1], lambda tmp: _write_schema(tmp, table, columns, rows))
    return {"table": table, "rows": rows, "files": [str(f) for f in files]}


def export_marts(warehouse: Path, out_dir: Path, csv_too: bool = False) -> list[dict]:
    """Write every table of `marts` to `out_dir`; returns one {table, rows, files} per table."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise QueryError(f"{out_dir} is a file, not a folder to export into")
    with readonly(warehouse) as con:
        tables = mart_tables(con)
        if not tables:
            raise QueryError(f"no tables in schema {MARTS_SCHEMA} of {warehouse}; run `make run` first")
        out_dir.mkdir(parents=True, exist_ok=True)
        results = [export_table(con, t, out_dir, csv_too) for t in tables]
    written = sorted(Path(f).name for r in results for f in r["files"])
    for stale in sorted(set(previous_export(out_dir)) - set(written)):
        (out_dir / stale).unlink(missing_ok=True)
    _write_atomically(out_dir / MANIFEST, lambda tmp: tmp.write_text(
        json.dumps({"files": written}, indent=2) + "\n", encoding="utf-8"))
    return results


def previous_export(out_dir: Path) -> list[str]:
    """The file names the last export into `out_dir` wrote (plain names only: nothing outside)."""
    try:
        names = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [n for n in names
            if isinstance(n, str) and n == Path(n).name and n not in ("", ".", "..", MANIFEST)]


def cli_export(settings: Settings, out_dir: Path, csv: bool = False) -> int:
    """`ofsted export DIR [--csv]`: every mart as Parquet (and CSV); prints rows per table."""

    def action() -> int:
        results = export_marts(settings.published_warehouse, out_dir, csv_too=csv)
        width = max(len(r["table"]) for r in results)
        for r in results:
            unit = "row" if r["rows"] == 1 else "rows"
            print(f"{r['table'].ljust(width)}  {r['rows']:>9,} {unit}")
        kinds = "Parquet and CSV" if csv else "Parquet"
        print(f"wrote {len(results)} tables as {kinds} to {Path(out_dir).resolve()}")
        return 0

    return with_one_line_errors("export", action)
