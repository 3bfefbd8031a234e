"""`ofsted export DIR [--csv | --excel]`: every mart of the published warehouse as Parquet (and CSV).

The connection is the same read-only, no-file-access one `ofsted sql` uses (Arrow streams the
rows out). Parquet keeps DuckDB's types; CSV writes every text value in quotes (codes such as
`dfe_la_code` stay text) and `<table>.schema.json` beside it gives each column's type, for
readers that guess (pandas: `dtype=`). `--excel` writes the CSV with a UTF-8 byte-order mark,
so Excel on Windows reads curly quotes and accents as written.

The export folder is the analyst's, and others may write there too: **export owns only what
it wrote.** `.ofsted-export.json` records each file it wrote with its sha256. Before writing
anything, every name the export would write is checked: absent, or a regular file unchanged
since the export that recorded it; anything else there (a user's own `fct_findings.csv`, a
file changed since, a link, a folder, a FIFO) refuses the whole export in one line naming it.
Each file is written by `ingest.files.write_file` (a new file under an unpredictable name,
fsynced, renamed into place) and the manifest is re-written after each table, so a killed
export still knows what it wrote. Files of the previous export not written again (a mart
gone, the CSVs of an export without `--csv`) are removed only when unchanged; an entry of the
manifest that cannot be trusted (a path, changed content, not a regular file) is named on
stderr and left alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import IO

import duckdb

from ingest.files import UnsafeFile, check_target, read_file, remove_file, sha256_file, write_file
from ingest.settings import Settings
from ingest.warehouse.query import MARTS_SCHEMA, QueryError, readonly, with_one_line_errors

MANIFEST = ".ofsted-export.json"
MANIFEST_MAX_BYTES = 4 * 2**20
BOM = b"\xef\xbb\xbf"

# --- the export ----------------------------------------------------------------------------

def mart_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = ? order by table_name",
        [MARTS_SCHEMA],
    ).fetchall()
    return [r[0] for r in rows]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Hashing:
    """A binary sink that hashes what goes through it (pyarrow's writers write to it)."""

    def __init__(self, fh: IO[bytes]):
        self.fh, self.sha = fh, hashlib.sha256()
        self.closed, self.size = False, 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()

    def tell(self) -> int:
        return self.size

    def close(self) -> None:  # the file itself is closed by write_file
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _write(final: Path, fill) -> tuple[int, str]:
    """Write `final` by `fill(sink) -> rows` through `write_file`; returns (rows, sha256)."""
    def body(fh: IO[bytes]) -> tuple[int, str]:
        sink = _Hashing(fh)
        return fill(sink), sink.sha.hexdigest()

    return write_file(final, body)


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


def column_types(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    """Each column's DuckDB type, and the type its CSV text is read as (JSON text for nested)."""
    cols = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [MARTS_SCHEMA, table],
    ).fetchall()
    return [{"name": c, "type": t, "csv_type": "VARCHAR" if _is_nested(t) else t} for c, t in cols]


def table_files(table: str, csv_too: bool) -> list[str]:
    """The names one mart is exported as."""
    return [f"{table}.parquet", *([f"{table}.csv", f"{table}.schema.json"] if csv_too else [])]


def export_table(con: duckdb.DuckDBPyConnection, table: str, out_dir: Path, csv_too: bool,
                 excel: bool = False) -> dict:
    """Stream one mart into `<table>.parquet` (and `.csv`, `.schema.json`) in `out_dir`;
    returns its rows and {file name: sha256}."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    def parquet(sink: _Hashing) -> int:
        reader = con.sql(f"select * from {_quote(MARTS_SCHEMA)}.{_quote(table)}").to_arrow_reader(100_000)
        n = 0
        with pq.ParquetWriter(sink, reader.schema, compression="zstd") as w:
            for batch in reader:
                w.write_batch(batch)
                n += batch.num_rows
        return n

    def csv_file(sink: _Hashing) -> int:
        reader = con.sql(csv_select(con, table)).to_arrow_reader(100_000)
        if excel:
            sink.write(BOM)
        n = 0
        with pacsv.CSVWriter(sink, reader.schema) as w:
            for batch in reader:
                w.write_batch(batch)
                n += batch.num_rows
        return n

    names = table_files(table, csv_too)
    hashes: dict[str, str] = {}
    rows, hashes[names[0]] = _write(out_dir / names[0], parquet)
    if csv_too:
        _, hashes[names[1]] = _write(out_dir / names[1], csv_file)
        doc = {"table": f"{MARTS_SCHEMA}.{table}", "rows": rows, "csv": names[1],
               "columns": column_types(con, table)}
        text = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
        write_file(out_dir / names[2], text)
        hashes[names[2]] = hashlib.sha256(text).hexdigest()
    return {"table": table, "rows": rows, "files": [str(out_dir / n) for n in names], "hashes": hashes}


# --- what the folder holds, and whose it is -----------------------------------------------------

def _plain(name: object) -> bool:
    return isinstance(name, str) and name == Path(name).name and name not in ("", ".", "..", MANIFEST) \
        and "\x00" not in name


def previous_export(out_dir: Path) -> tuple[dict[str, str], list[str]]:
    """({file name: sha256} the last export into `out_dir` recorded, [one line per manifest entry
    that cannot be trusted]). A manifest that is not a regular file, or unreadable, is an error."""
    path = out_dir / MANIFEST
    try:
        doc = json.loads(read_file(path, MANIFEST_MAX_BYTES, "the export manifest's cap"))
    except FileNotFoundError:
        return {}, []
    except UnsafeFile as exc:
        article = "an" if (exc.kind or "x")[0] in "aeiou" else "a"
        raise QueryError(f"refusing to export into {out_dir}: {MANIFEST} is there and it is {article} "
                         f"{exc.kind}, not a regular file (export keeps the list of its files there)"
                         ) from None
    except (OSError, ValueError) as exc:
        return {}, [f"{MANIFEST} cannot be read ({type(exc).__name__}); nothing it lists is removed"]
    files = doc.get("files") if isinstance(doc, dict) else None
    owned: dict[str, str] = {}
    untrusted: list[str] = []
    if isinstance(files, list):  # the first manifests listed names without hashes: never trusted
        untrusted += [f"{MANIFEST} lists {n!r} without its hash (an older export): left alone"
                      for n in files if isinstance(n, str)][:20]
    elif isinstance(files, dict):
        for name, sha in files.items():
            if _plain(name) and isinstance(sha, str) and len(sha) == 64:
                owned[name] = sha
            else:
                untrusted.append(f"{MANIFEST} lists {str(name)[:200]!r}, which is not a file name in "
                                 "this folder with a hash: left alone")
    else:
        untrusted.append(f"{MANIFEST} is not a manifest of this tool: nothing it lists is removed")
    return owned, untrusted


def ownership(path: Path, owned: dict[str, str]) -> str | None:
    """None when export may replace or remove `path` (absent, or its own file unchanged), else why not."""
    try:
        if not check_target(path):
            return None
    except UnsafeFile as exc:
        return str(exc).split(": ", 1)[1]
    if path.name not in owned:
        return "it was not written by an export (not in " + MANIFEST + ")"
    try:
        if sha256_file(path) != owned[path.name]:
            return "it changed since the export that wrote it"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    return None


def export_marts(warehouse: Path, out_dir: Path, csv_too: bool = False, excel: bool = False,
                 warnings: list[str] | None = None) -> list[dict]:
    """Write every table of `marts` to `out_dir`; returns one {table, rows, files, hashes} per table.

    Refuses (one line, before writing anything) when a name it would write holds anything but
    its own unchanged file; lines about what it left alone go to `warnings`."""
    out_dir = Path(out_dir)
    csv_too = csv_too or excel
    if out_dir.exists() and not out_dir.is_dir():
        raise QueryError(f"{out_dir} is a file, not a folder to export into")
    warnings = warnings if warnings is not None else []
    with readonly(warehouse) as con:
        tables = mart_tables(con)
        if not tables:
            raise QueryError(f"no tables in schema {MARTS_SCHEMA} of {warehouse}; run `make run` first")
        owned, untrusted = previous_export(out_dir) if out_dir.is_dir() else ({}, [])
        warnings += untrusted
        names = [n for t in tables for n in table_files(t, csv_too)]
        refused = [(n, why) for n in names if (why := ownership(out_dir / n, owned))]
        if refused:
            first, why = refused[0]
            more = f" (and {len(refused) - 1} more: {', '.join(n for n, _ in refused[1:4])}" \
                   f"{', ...' if len(refused) > 4 else ''})" if len(refused) > 1 else ""
            raise QueryError(f"refusing to export into {out_dir}: {first} is there and {why}{more}; "
                             "move it away or export into another folder")
        out_dir.mkdir(parents=True, exist_ok=True)
        record = dict(owned)
        results = []
        for t in tables:
            r = export_table(con, t, out_dir, csv_too, excel)
            record.update(r["hashes"])
            _write_manifest(out_dir, record)  # after each table: a killed export knows its files
            results.append(r)
    written = {n for r in results for n in r["hashes"]}
    for stale in sorted(set(owned) - written):
        why = ownership(out_dir / stale, owned)
        if why is None:
            remove_file(out_dir / stale)
        elif (out_dir / stale).exists() or Path(out_dir / stale).is_symlink():
            warnings.append(f"left {stale} of an earlier export in place: {why}")
        record.pop(stale, None)
    _write_manifest(out_dir, record)
    return results


def _write_manifest(out_dir: Path, files: dict[str, str]) -> None:
    doc = {"written_by": "ofsted export", "files": dict(sorted(files.items()))}
    write_file(out_dir / MANIFEST, json.dumps(doc, indent=2) + "\n")


def cli_export(settings: Settings, out_dir: Path, csv: bool = False, excel: bool = False) -> int:
    """`ofsted export DIR [--csv | --excel]`: every mart as Parquet (and CSV); prints rows per table."""
    import sys

    def action() -> int:
        warnings: list[str] = []
        try:
            results = export_marts(settings.published_warehouse, out_dir, csv_too=csv, excel=excel,
                                   warnings=warnings)
        finally:
            for w in warnings:
                print(f"ofsted export: warning: {w}", file=sys.stderr)
        width = max(len(r["table"]) for r in results)
        for r in results:
            unit = "row" if r["rows"] == 1 else "rows"
            print(f"{r['table'].ljust(width)}  {r['rows']:>9,} {unit}")
        kinds = "Parquet and CSV (with a byte-order mark, for Excel)" if excel else \
            "Parquet and CSV" if csv else "Parquet"
        print(f"wrote {len(results)} tables as {kinds} to {Path(out_dir).resolve()}")
        return 0

    return with_one_line_errors("export", action)
