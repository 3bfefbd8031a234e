"""The analyst's own files beside the warehouse: `OFSTED_EXTERNAL_DIR` -> catalog `ext`.

Every `.csv`, `.tsv` and `.parquet` file directly in the folder becomes a table `ext.<name>`
(the file name without its extension, lower-cased, other characters as `_`) when an analyst's
connection opens, before file access is switched off for the queries: queries still read and
write no file, they read tables. DuckDB never opens the files itself: each is read here by
`ingest.files.read_file` (a regular file only, no symlink, FIFO or device; its size checked
against `OFSTED_EXTERNAL_MAX_FILE_BYTES` before a byte is read) and handed to a separate
in-memory DuckDB as bytes, so DuckDB's CSV sniffer types the columns. A CSV written by
`ofsted export` has a `<name>.schema.json` beside it (capped too): its column types are used,
so codes stay text.

The folder is bounded as a whole: the files are read and typed in a child process
(`python -m ingest.warehouse.external`) that is killed when `OFSTED_SQL_TIMEOUT_S` is up and
whose address space is capped at the SQL memory limit (DuckDB's CSV sniffer cannot be
interrupted from inside: a 150 MB one-line CSV took 30 s whatever the timeout). A file that
fails (too large, not a file, unparseable, out of memory, past the time) costs one warning line
naming it, and the files loaded before it are kept. What was loaded is **cached** in the data
directory (`cache/ext-<key>.duckdb`, the key a hash of every file's name, size and mtime and
the caps): the next query attaches it read-only instead of reading the folder again, until a
file changes. Where the cache cannot be written the folder is loaded into memory each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

from ingest.files import (
    UnsafeFile,
    check_target,
    fsync_file,
    open_regular,
    read_file,
    remove_file,
    write_file,
)

EXT_CATALOG = "ext"
SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
SCHEMA_SUFFIX = ".schema.json"
SIDECAR_MAX_BYTES = 4 * 2**20
FILE_CAP_ENV = "OFSTED_EXTERNAL_MAX_FILE_BYTES"
CACHE_VERSION = 1
STARTUP_S = 60.0  # the loading child's start (an interpreter, DuckDB): not counted in the SQL time


def table_name(path: Path) -> str:
    name = re.sub(r"\W+", "_", path.stem.lower()).strip("_") or "file"
    return f"t_{name}" if name[0].isdigit() else name


def read_capped(path: Path, max_bytes: int) -> bytes:
    """The bytes of `path`, refusing anything but a regular file of at most `max_bytes`."""
    return read_file(path, max_bytes, FILE_CAP_ENV)


def exported_types(path: Path) -> tuple[dict[str, str] | None, str | None]:
    """(column -> DuckDB type from the `<name>.schema.json` that `ofsted export` wrote beside a
    CSV, or None; a warning line when a sidecar is there but cannot be used)."""
    sidecar = path.with_name(path.stem + SCHEMA_SUFFIX)
    if not os.path.lexists(sidecar):
        return None, None
    try:
        columns = json.loads(read_file(sidecar, SIDECAR_MAX_BYTES, "the sidecar cap"))["columns"]
        return {str(c["name"]): str(c["csv_type"]) for c in columns}, None
    except (OSError, ValueError, KeyError, TypeError, MemoryError) as exc:
        return None, f"ext file {sidecar.name} ignored ({_first_line(exc)}): {path.name}'s types are guessed"


def candidates(folder: Path) -> list[Path]:
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if not e.name.startswith("."))
    return [folder / n for n in names
            if Path(n).suffix.lower() in SUFFIXES and not n.lower().endswith(SCHEMA_SUFFIX)]


# --- the cache key: what is in the folder now ---------------------------------------------------

def folder_key(folder: Path, files: list[Path], max_file_bytes: int) -> str:
    """A hash of each candidate's and sidecar's name, kind, size and mtime, and the cap."""
    parts: list[object] = [CACHE_VERSION, str(folder), max_file_bytes]
    for path in files:
        for p in (path, path.with_name(path.stem + SCHEMA_SUFFIX)):
            try:
                st = os.lstat(p)
                parts.append([p.name, stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, st.st_ino])
            except OSError:
                parts.append([p.name, None])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


# --- loading ------------------------------------------------------------------------------------

def load_external(con: duckdb.DuckDBPyConnection, folder: Path, max_files: int, max_file_bytes: int,
                  limits, cache_dir: Path | None = None) -> list[str]:
    """Attach catalog `ext` to `con` with `folder`'s files as tables; returns warning lines.

    From the cache in `cache_dir` when the folder is unchanged since it was written; else the
    folder is loaded (under `limits`) and the cache written for the next query."""
    if not folder.is_dir():
        con.execute(f"attach ':memory:' as {EXT_CATALOG}")
        return [f"OFSTED_EXTERNAL_DIR {folder} is not a folder: no ext tables"]
    try:
        files = candidates(folder)
    except OSError as exc:
        con.execute(f"attach ':memory:' as {EXT_CATALOG}")
        return [f"OFSTED_EXTERNAL_DIR {folder} cannot be listed: {exc.strerror or exc}"]
    warnings: list[str] = []
    if len(files) > max_files:
        left = files[max_files:]
        warnings.append(f"{len(left)} files in {folder} not loaded (OFSTED_EXTERNAL_MAX_FILES is "
                        f"{max_files}), first: {left[0].name}")
        files = files[:max_files]
    key = folder_key(folder, files, max_file_bytes)
    if cache_dir is not None:
        cached = _attach_cached(con, cache_dir, key)
        if cached is not None:
            return warnings + cached
    build_dir = _private_dir(cache_dir) or tempfile.mkdtemp(prefix="ofsted-ext-")
    try:
        loaded, found = _load_in_child(files, Path(build_dir), max_file_bytes, limits)
        db = Path(build_dir) / "ext.duckdb"
        _gather(db, loaded)
        if cache_dir is not None and Path(build_dir).parent == cache_dir:
            _keep(cache_dir, key, db, found)
            cached = _attach_cached(con, cache_dir, key)
            if cached is not None:
                return warnings + cached
        con.execute(f"attach ':memory:' as {EXT_CATALOG}")  # no cache: copied in from the build
        con.execute(f"attach {_literal(str(db))} as __ext_build (read_only)")
        try:
            names = con.execute("select table_name from information_schema.tables "
                                "where table_catalog = '__ext_build'").fetchall()
            for (name,) in names:
                con.execute(f'create table {EXT_CATALOG}.main."{name}" as '
                            f'select * from __ext_build.main."{name}"')
        finally:
            con.execute("detach __ext_build")
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return warnings + found


def _gather(db: Path, loaded: list[tuple[str, Path]]) -> None:
    """One DuckDB file `db` holding each loaded table (from the child's Parquet files)."""
    out = duckdb.connect(str(db), config={"autoload_known_extensions": False,
                                          "autoinstall_known_extensions": False})
    try:
        for name, parquet in loaded:
            out.execute(f'create table "{name}" as select * from read_parquet({_literal(str(parquet))})')
        out.execute("checkpoint")
    finally:
        out.close()


def _load_in_child(files: list[Path], build_dir: Path, max_file_bytes: int,
                   limits) -> tuple[list[tuple[str, Path]], list[str]]:
    """Read and type every file in a child process that is killed when `limits.timeout_s` is up
    and whose address space is capped (DuckDB's CSV sniffer cannot be interrupted: a 150 MB
    one-line CSV took 30 s whatever the timeout). Each file it loads becomes a Parquet file in
    `build_dir`; returns ([(table, parquet)], warning lines), the file it was on when stopped named."""
    spec = {"files": [str(f) for f in files], "out": str(build_dir), "max_file_bytes": max_file_bytes,
            "memory_bytes": limits.memory_bytes, "threads": limits.threads}
    child = subprocess.Popen([sys.executable, "-m", "ingest.warehouse.external", json.dumps(spec)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events: list[dict] = []
    ready = threading.Event()

    def read_events() -> None:
        for line in child.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("ready"):
                    ready.set()
                else:
                    events.append(event)
        ready.set()

    reader = threading.Thread(target=read_events, daemon=True)
    reader.start()
    try:
        ready.wait(STARTUP_S)  # the interpreter and DuckDB starting; then the limit runs
        child.wait(timeout=limits.timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        timed_out = True
    reader.join(5)
    loaded: list[tuple[str, Path]] = []
    warnings: list[str] = []
    started: list[str] = []
    done: set[str] = set()
    for e in events:
        if e["name"] not in started:
            started.append(e["name"])
        if e.get("table"):
            loaded.append((e["table"], Path(e["parquet"])))
            done.add(e["name"])
        if e.get("warning"):
            warnings.append(e["warning"])
            if e.get("final"):
                done.add(e["name"])
    limit = f"OFSTED_SQL_TIMEOUT_S ({limits.timeout_s:g} s)" if timed_out else \
        "the memory limit (OFSTED_SQL_MEMORY_LIMIT)" if child.returncode else None
    if limit:
        warnings += [f"ext file {n} skipped: loading it passed {limit}" for n in started if n not in done]
        rest = [f.name for f in files if f.name not in started]
        if rest:
            warnings.append(f"{len(rest)} ext files not loaded: loading the folder passed {limit}, "
                            f"first: {rest[0]}")
    return loaded, warnings


def _child(spec: dict) -> None:
    """The child of `_load_in_child`: JSON lines per file (started; its table, or why not)."""
    import pyarrow.parquet as pq

    _cap_address_space(int(spec["memory_bytes"]))
    loader = duckdb.connect(":memory:", config={
        "memory_limit": f"{max(int(spec['memory_bytes']) // 2**20, 1)}MiB",
        "threads": max(int(spec["threads"]), 1), "temp_directory": "",
        "autoload_known_extensions": False, "autoinstall_known_extensions": False,
    })
    taken: dict[str, str] = {}
    out = Path(spec["out"])

    def say(**event: object) -> None:
        print(json.dumps(event), flush=True)

    say(ready=True)

    for i, raw in enumerate(spec["files"]):
        path = Path(raw)
        name = table_name(path)
        say(name=path.name)
        if name in taken:
            say(name=path.name, final=True,
                warning=f"ext file {path.name} skipped: table ext.{name} is already {taken[name]}")
            continue
        try:
            data = read_capped(path, int(spec["max_file_bytes"]))
            table, note = _read(loader, path, data)
            del data
            parquet = out / f"{i:04d}.parquet"
            pq.write_table(table, parquet)
        except (OSError, ValueError, duckdb.Error, MemoryError) as exc:
            why = "out of memory (the limit is OFSTED_SQL_MEMORY_LIMIT)" if isinstance(exc, MemoryError) \
                else _first_line(exc)
            say(name=path.name, final=True, warning=f"ext file {path.name} skipped: {why}")
            continue
        if note:
            say(name=path.name, warning=note)
        taken[name] = path.name
        say(name=path.name, table=name, parquet=str(parquet))


def _cap_address_space(extra_bytes: int) -> None:
    """This process's address space capped at its size now plus `extra_bytes` and 1 GiB."""
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as fh:
            size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (size + extra_bytes + 2**30, resource.RLIM_INFINITY))
    except (ImportError, OSError, ValueError):
        pass


def _read(loader: duckdb.DuckDBPyConnection, path: Path, data: bytes):
    buf = io.BytesIO(data)
    note = None
    if SUFFIXES[path.suffix.lower()] == "parquet":
        rel = loader.read_parquet(buf)
    else:
        types, note = exported_types(path)
        sep = "\t" if path.suffix.lower() == ".tsv" else None
        kwargs = {"dtype": types} if types else {}
        rel = loader.read_csv(buf, sep=sep, **kwargs) if sep else loader.read_csv(buf, **kwargs)
    return rel.fetch_arrow_table(), note


# --- the cache ----------------------------------------------------------------------------------

def _cache_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"ext-{key}.duckdb"


def _private_dir(cache_dir: Path | None) -> str | None:
    """A new folder only this process writes in (mode 0700), inside `cache_dir`; None when the
    cache cannot be written (a read-only data directory: the folder is loaded into memory)."""
    if cache_dir is None:
        return None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if cache_dir.is_symlink() or not cache_dir.is_dir():
            return None
        return tempfile.mkdtemp(prefix=".ext-build-", dir=cache_dir)
    except OSError:
        return None


def _attach_cached(con: duckdb.DuckDBPyConnection, cache_dir: Path, key: str) -> list[str] | None:
    """Attach the cache for `key` as catalog `ext` (its warnings returned), or None when there is
    none usable. The file is opened here (a regular file of ours, never through a link) and
    DuckDB attaches that open file, so what is attached is what was checked."""
    path = _cache_file(cache_dir, key)
    try:
        fd = open_regular(path)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return None
        notes = json.loads(read_file(path.with_suffix(".json"), SIDECAR_MAX_BYTES, "the cache's cap"))
        con.execute(f"attach {_literal(f'/proc/self/fd/{fd}')} as {EXT_CATALOG} (read_only)")
        return [str(n) for n in notes] if isinstance(notes, list) else []
    except (OSError, ValueError, duckdb.Error):
        with contextlib.suppress(duckdb.Error):
            con.execute(f"detach database if exists {EXT_CATALOG}")
        return None
    finally:
        os.close(fd)  # DuckDB holds its own descriptor on the attached file


def _keep(cache_dir: Path, key: str, built: Path, warnings: list[str]) -> None:
    """Move the freshly built cache into place (never over a link or a folder) and drop the old ones."""
    final = _cache_file(cache_dir, key)
    try:
        write_file(final.with_suffix(".json"), json.dumps(warnings) + "\n")
        fsync_file(built)
        check_target(final)
        os.replace(built, final)
    except OSError:
        return
    now = time.time()
    with contextlib.suppress(OSError):
        for old in cache_dir.glob("ext-*"):
            if not old.name.startswith(f"ext-{key}.") and now - old.lstat().st_mtime > 60:
                with contextlib.suppress(OSError, UnsafeFile):
                    remove_file(old)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, UnsafeFile):
        return f"not a regular file: {exc.kind}" if exc.kind else str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


if __name__ == "__main__":  # the loading child (see `_load_in_child`)
    _child(json.loads(sys.argv[1]))
