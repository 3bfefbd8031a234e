"""One writer at a time on a data directory: a lock file with who holds it.

Every command that writes under the data directory (`run`, `load`, `reparse`, `build`,
`rerun`, `quarantine`, `release`) and every writing task of the DAG takes
`<data_dir>/.ofsted.lock` with a POSIX record lock (`fcntl.lockf`): the kernel releases it
when the holder dies, so a stale lock of a dead process is simply taken over (and the
takeover is said). The file's content says who holds it (pid, since when, what command):
a second writer fails at once with that in one line (`DataDirLocked`).

The lock is re-entrant for its holder and the holder's descendants: `ofsted run` holds it
and runs the night's steps (with `--airflow`, the DAG's tasks) in its own process (or in child
processes), and those tasks ask for it again. POSIX locks belong to a process and are dropped
when *any* descriptor of the file is closed, so the holder never opens the file a second time
(the held locks are kept here).

Across machines this lock does not reach: there the Airflow pool `duckdb_writer` and the
DAG's `max_active_runs=1` serialise nights.

The file is opened by `ingest.files.open_regular` like every file in a folder others may
write: never through a symbolic link, never a FIFO or a folder (`UnsafeFile`, one line), so
the truncation on taking and releasing it can only ever empty the lock file itself. Taking
it also checks the data directory's fixed file names (`data_files`: the warehouses and their
WAL, the night history, the log and the alert log): a link, FIFO or folder planted at any of
them refuses the writer in one line before it writes anything (DuckDB, dbt and GX would follow
a link at a warehouse's name).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.files import UnsafeFile, open_regular, planted
from ingest.settings import Settings

LOCK_NAME = ".ofsted.lock"

_held: dict[Path, tuple[int, int]] = {}  # lock path -> (fd, depth), in the holding process


class DataDirLocked(RuntimeError):
    """Another process is writing in the data directory (the message is one line)."""


def lock_path(settings: Settings) -> Path:
    return settings.data_dir / LOCK_NAME


def data_files(settings: Settings) -> list[Path]:
    """The files at fixed names a writer of the data directory writes (and tools it runs follow)."""
    from ingest.nights import history_path

    wal = [p.with_name(p.name + ".wal") for p in (settings.work_warehouse, settings.published_warehouse)]
    return [settings.work_warehouse, settings.published_warehouse, *wal, history_path(settings),
            settings.log_file, settings.alert_log]


def refuse_planted(settings: Settings) -> None:
    """`UnsafeFile` (one line) when anything but a regular file is at a name of `data_files`."""
    found = planted(data_files(settings))
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UnsafeFile(found[0] + more)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ancestors() -> set[int]:
    """This process and its ancestors (from /proc; the parent at least where there is none)."""
    out = {os.getpid()}
    pid = os.getppid()
    for _ in range(64):
        if pid <= 1 or pid in out:
            break
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def _read(path: Path) -> dict[str, Any] | None:
    try:
        fd = open_regular(path)
    except OSError:
        return None
    try:
        meta = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return meta if isinstance(meta, dict) else None


def describe(meta: dict[str, Any] | None) -> str:
    if not meta:
        return "another process"
    what = f"`ofsted {meta['command']}`" if meta.get("command") else "a process"
    host = f" on {meta['host']}" if meta.get("host") and meta["host"] != socket.gethostname() else ""
    return f"{what} (pid {meta.get('pid', '?')}{host}, since {meta.get('since', '?')})"


def holder(settings: Settings) -> dict[str, Any] | None:
    """Who holds the lock now (its metadata), or None when nobody does. Never takes it."""
    path = lock_path(settings)
    if path in _held:
        return _read_own(path)
    if not os.path.lexists(path):
        return None
    try:  # read-only, a shared lock: a reader of a read-only data directory can ask too
        fd = open_regular(path, doing="use {} as a lock")
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read(path) or {}
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_own(path: Path) -> dict[str, Any] | None:
    fd, _ = _held[path]
    if fd < 0:  # held by an ancestor: reading (and closing) the file drops nothing of ours
        return _read(path)
    try:
        meta = json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def is_held(settings: Settings) -> bool:
    """Whether this process holds the lock (itself, or through an ancestor)."""
    return lock_path(settings) in _held


def acquire(settings: Settings, command: str, wait_s: float = 0.0) -> str | None:
    """Take the lock for `command`, or raise `DataDirLocked` (after waiting up to `wait_s`
    seconds for the holder to finish). Returns a line to show when a stale lock of a dead
    process was taken over (else None). Re-entrant (see the module)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return _acquire(settings, command)
        except DataDirLocked:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


def _acquire(settings: Settings, command: str) -> str | None:
    path = lock_path(settings)
    if path in _held:
        fd, depth = _held[path]
        _held[path] = (fd, depth + 1)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_regular(path, os.O_RDWR | os.O_CREAT, doing="use {} as a lock")
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)  # never held here: closing drops nothing of ours
        meta = _read(path)
        if meta and isinstance(meta.get("pid"), int) and meta.get("host") in (None, socket.gethostname()) \
                and meta["pid"] in _ancestors():
            _held[path] = (-1, 1)  # an ancestor holds it for us: nothing to release
            return None
        raise DataDirLocked(f"data directory {settings.data_dir} is in use by {describe(meta)}; "
                            "try again when it has finished") from None
    try:
        refuse_planted(settings)
    except UnsafeFile:
        os.close(fd)  # releases the lock: nothing was written
        raise
    previous = _stale_meta(fd)
    meta = {"pid": os.getpid(), "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": command, "host": socket.gethostname()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(meta).encode(), 0)
    os.fsync(fd)
    _held[path] = (fd, 1)
    if previous and previous.get("pid") and previous.get("host") in (None, socket.gethostname()) \
            and not pid_alive(int(previous["pid"])):
        return f"took over a stale lock of {describe(previous)}: that process is gone"
    return None


def _stale_meta(fd: int) -> dict[str, Any] | None:
    """What an earlier holder left in the file (the lock is released: it exited)."""
    try:
        meta = json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def release(settings: Settings) -> None:
    path = lock_path(settings)
    if path not in _held:
        return
    fd, depth = _held[path]
    if depth > 1:
        _held[path] = (fd, depth - 1)
        return
    del _held[path]
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # nobody holds it: leave no stale holder to report
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def data_dir_lock(settings: Settings, command: str, echo: Any = None) -> Iterator[None]:
    """Hold the data directory's lock for the block (see `acquire`); `echo` gets the takeover line."""
    note = acquire(settings, command)
    if note and echo is not None:
        echo(note)
    try:
        yield
    finally:
        release(settings)
