"""The analyst's own files beside the warehouse: `OFSTED_EXTERNAL_DIR` -> catalog `ext`.

Every `.csv`, `.tsv` and `.parquet` file directly in the folder becomes a table `ext.<name>`
(the file name without its extension, lower-cased, other characters as `_`) when an analyst's
connection opens, before file access is switched off for the queries: queries still read and
write no file, they read tables. DuckDB never opens the files itself: each is read here (as a
regular file only, no symlink, FIFO or device; at most `max_file_bytes`) and handed to a
separate in-memory DuckDB as bytes, so DuckDB's CSV sniffer types the columns. A CSV written by
`ofsted export` has a `<name>.schema.json` beside it: its column types are used, so codes stay
text. A bad file costs one warning line naming it; the other files still load.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import stat
from pathlib import Path

import duckdb

EXT_CATALOG = "ext"
SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
SCHEMA_SUFFIX = ".schema.json"


def table_name(path: Path) -> str:
    name = re.sub(r"\W+", "_", path.stem.lower()).strip("_") or "file"
    return f"t_{name}" if name[0].isdigit() else name


def read_capped(path: Path, max_bytes: int) -> bytes:
    """The bytes of `path`, refusing anything but a regular file of at most `max_bytes`."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("a symbolic link, not a file") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > max_bytes:
            raise ValueError(f"{st.st_size:,} bytes is over OFSTED_EXTERNAL_MAX_FILE_BYTES ({max_bytes:,})")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"grew past OFSTED_EXTERNAL_MAX_FILE_BYTES ({max_bytes:,}) while read")
        return data
    finally:
        os.close(fd)


def exported_types(path: Path) -> dict[str, str] | None:
    """Column -> DuckDB type from the `<name>.schema.json` that `ofsted export` wrote beside a CSV."""
    sidecar = path.with_name(path.stem + SCHEMA_SUFFIX)
    if not sidecar.is_file():
        return None
    try:
        columns = json.loads(sidecar.read_text(encoding="utf-8"))["columns"]
        return {str(c["name"]): str(c["csv_type"]) for c in columns}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def candidates(folder: Path) -> list[Path]:
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if not e.name.startswith("."))
    return [folder / n for n in names
            if Path(n).suffix.lower() in SUFFIXES and not n.lower().endswith(SCHEMA_SUFFIX)]


def load_external(con: duckdb.DuckDBPyConnection, folder: Path, max_files: int, max_file_bytes: int,
                  limits) -> list[str]:
    """Attach catalog `ext` to `con` and load `folder`'s files into it; returns warning lines."""
    con.execute(f"attach ':memory:' as {EXT_CATALOG}")
    if not folder.is_dir():
        return [f"OFSTED_EXTERNAL_DIR {folder} is not a folder: no ext tables"]
    try:
        files = candidates(folder)
    except OSError as exc:
        return [f"OFSTED_EXTERNAL_DIR {folder} cannot be listed: {exc.strerror or exc}"]
    warnings: list[str] = []
    if len(files) > max_files:
        left = files[max_files:]
        warnings.append(f"{len(left)} files in {folder} not loaded (OFSTED_EXTERNAL_MAX_FILES is "
                        f"{max_files}), first: {left[0].name}")
        files = files[:max_files]
    loader = duckdb.connect(":memory:", config={
        "memory_limit": f"{max(limits.memory_bytes // 2**20, 1)}MiB", "threads": max(limits.threads, 1),
        "temp_directory": "", "autoload_known_extensions": False, "autoinstall_known_extensions": False,
    })
    taken: dict[str, str] = {}
    try:
        for path in files:
            name = table_name(path)
            if name in taken:
                warnings.append(f"ext file {path.name} skipped: table ext.{name} is already {taken[name]}")
                continue
            try:
                data = read_capped(path, max_file_bytes)
                table = _read(loader, path, data)
                con.register("__ext_load", table)
                try:
                    con.execute(f'create table {EXT_CATALOG}.main."{name}" as select * from __ext_load')
                finally:
                    con.unregister("__ext_load")
            except (OSError, ValueError, duckdb.Error) as exc:
                warnings.append(f"ext file {path.name} skipped: {_first_line(exc)}")
                continue
            taken[name] = path.name
    finally:
        loader.close()
    return warnings


def _read(loader: duckdb.DuckDBPyConnection, path: Path, data: bytes):
    buf = io.BytesIO(data)
    if SUFFIXES[path.suffix.lower()] == "parquet":
        rel = loader.read_parquet(buf)
    else:
        types = exported_types(path)
        sep = "\t" if path.suffix.lower() == ".tsv" else None
        kwargs = {"dtype": types} if types else {}
        rel = loader.read_csv(buf, sep=sep, **kwargs) if sep else loader.read_csv(buf, **kwargs)
    return rel.fetch_arrow_table()


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
