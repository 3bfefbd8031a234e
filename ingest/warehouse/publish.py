"""Write-audit-publish: the night's work warehouse becomes the published one atomically.

The night writes only the *work* warehouse (`settings.work_warehouse`) and a per-run
*staging* report directory. Once dbt's tests and the GX suites have passed, `publish`:

1. checkpoints the work warehouse (its WAL is merged, the file is closed and complete),
2. copies it to a temporary file beside the published path, fsyncs it, and opens the copy
   read-only to check it is a readable warehouse (the "audit" of the copy itself),
3. swaps it in with `os.replace` — one atomic rename. A reader that already holds the old
   published file open keeps reading yesterday's data (its inode lives on until closed);
   a reader that opens after the rename sees tonight's. Nobody ever sees a half-built file.

A failed night never calls `publish`, so the published warehouse stays byte-for-byte as
it was; `publish_failed_night` then publishes only that night's DQ results and data docs
(under `failed_night/` of a new report version, the report re-rendered beside the last good
warehouse). `clean_orphans` removes the `.publishing-PID` copies and `.link-PID` links
left by a publish that was killed, at the start of the next run.

Directories (report, GX data docs, dbt docs) cannot be renamed over a non-empty directory,
so `report_dir` is a symbolic link to a versioned directory and the link is swapped
with `os.replace` — also one atomic rename.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from ingest.files import UnsafeFile, copy_file, fsync_dir, own_dir, remove_specials, sha256_file, write_file
from ingest.settings import Settings

DOCS_MAX_BYTES = 1 << 30  # dbt docs' files copied into the report
KEEP_REPORT_VERSIONS = 2  # the live one and the one before (for a reader mid-page)

log = logging.getLogger(__name__)


# --- names ----------------------------------------------------------------------------------

def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:120] or "run"


def staging_report_dir(settings: Settings, run_id: str) -> Path:
    """The directory a night builds its report, GX data docs and dbt docs into (its name is
    predictable for a scheduled night: the steps that write there call `prepare_staging`)."""
    return settings.report_dir.parent / f".{settings.report_dir.name}.staging" / _safe(run_id)


def staging_settings(settings: Settings, run_id: str) -> Settings:
    """Settings for the tasks that write report files: they write into the staging dir, made
    safe first (`prepare_staging`)."""
    return settings.with_overrides(report_dir=prepare_staging(settings, run_id))


def prepare_staging(settings: Settings, run_id: str) -> Path:
    """The run's staging directory, safe to write into by path (GX, dbt docs and the report
    follow links when they write): called at the start of every step that writes there.

    Its folder `.<report>.staging` and the run's folder are made real directories of this user
    that no one else may write (`ingest.files.own_dir`: a link planted at either name is removed,
    never followed; another user's folder is removed and made again; a file or a FIFO is
    refused with one line). Inside, what earlier steps of the night wrote is kept; any link,
    FIFO or other special file is removed (`ingest.files.remove_specials`)."""
    staging = staging_report_dir(settings, run_id)
    own_dir(staging.parent)
    own_dir(staging)
    remove_specials(staging)
    return staging


# --- the warehouse --------------------------------------------------------------------------

def checkpoint(path: Path) -> None:
    """Merge the WAL into the file and close it, so its bytes on disk are the whole database."""
    con = duckdb.connect(str(path))
    try:
        con.execute("checkpoint")
    finally:
        con.close()


def mart_row_counts(path: Path) -> dict[str, int]:
    """Rows per table in schema `marts` of a warehouse file, opened read-only."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' and table_type = 'BASE TABLE' order by 1").fetchall()]
        return {t: con.execute(f'select count(*) from marts."{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


def publish_warehouse(work: Path, published: Path) -> dict:
    """Copy `work` (checkpointed, closed) beside `published` and swap it in atomically."""
    if not work.is_file():
        raise FileNotFoundError(f"work warehouse not found: {work}")
    checkpoint(work)
    published.parent.mkdir(parents=True, exist_ok=True)
    tmp = published.with_name(f".{published.name}.publishing-{os.getpid()}")
    try:
        with work.open("rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        counts = mart_row_counts(tmp)  # the copy opens and reads: it is a whole warehouse
        digest = sha256_file(tmp)
        os.replace(tmp, published)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(published.parent)
    return {"path": str(published), "sha256": digest, "bytes": published.stat().st_size,
            "marts": counts}


# --- the report directory -------------------------------------------------------------------

def publish_directory(build_dir: Path, live: Path, keep: int = KEEP_REPORT_VERSIONS) -> Path:
    """Make `live` (a symlink) point at a copy of `build_dir`, swapped in atomically.

    `build_dir` is moved (renamed) into the versions folder, so it must be on the same file
    system; a `live` that is still a real directory (a first run by older code) is moved
    into the versions folder first. Old versions beyond `keep` are removed.
    """
    if not build_dir.is_dir():
        raise FileNotFoundError(f"nothing to publish: {build_dir}")
    versions = live.parent / f".{live.name}.versions"
    versions.mkdir(parents=True, exist_ok=True)
    if live.is_dir() and not live.is_symlink():
        live.rename(versions / f"legacy-{time.time_ns()}")
    version = versions / f"{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}"
    build_dir.rename(version)
    link_tmp = live.with_name(f".{live.name}.link-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        link_tmp.unlink()
    os.symlink(os.path.relpath(version, live.parent), link_tmp)
    os.replace(link_tmp, live)
    fsync_dir(live.parent)
    current = live.resolve()
    old = sorted((p for p in versions.iterdir() if p.resolve() != current), key=lambda p: p.name)
    for stale in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(stale, ignore_errors=True)
    return version


def generate_dbt_docs(settings: Settings, out_dir: Path) -> Path:
    """dbt docs of the night's own build, into `out_dir` (index.html opens from file://).

    `dbt docs generate --static --no-compile --no-write-json` in this process on the night's
    target directory: dbt's saved parse (no parse), no compiling again, only the catalog's
    queries on the work warehouse; the page and `manifest.json` are the build's own manifest
    (compiled SQL included), which `--no-write-json` keeps from being overwritten. With no
    build manifest in the target directory (docs of a warehouse built elsewhere) dbt writes
    one from its parse."""
    from ingest.warehouse.build import EXIT_OK, run_dbt

    out_dir.mkdir(parents=True, exist_ok=True)
    target = settings.dbt_target_dir
    keep = ["--no-write-json"] if (target / "manifest.json").is_file() else []
    with contextlib.suppress(FileNotFoundError):
        (target / "catalog.json").unlink()  # a stale one must not pass for tonight's
    code = run_dbt(settings, ["docs", "generate", "--static", "--no-compile", *keep])
    if code != EXIT_OK or not (target / "catalog.json").is_file():
        raise RuntimeError(f"dbt docs generate failed (exit {code}; dbt's output is in the night's log)")
    copy_file(target / "static_index.html", out_dir / "index.html", DOCS_MAX_BYTES)  # never through
    for name in ("manifest.json", "catalog.json"):                                 # a planted link
        copy_file(target / name, out_dir / name, DOCS_MAX_BYTES)
    return out_dir


def publish(settings: Settings) -> dict:
    """Publish the night's work warehouse. Call only after dbt tests and GX have passed."""
    return {"warehouse": publish_warehouse(settings.work_warehouse, settings.published_warehouse)}


def publish_report(settings: Settings, run_id: str) -> dict:
    """Publish the run's staging report directory (report, GX data docs, dbt docs)."""
    staging = staging_report_dir(settings, run_id)
    version = publish_directory(staging, settings.report_dir)
    discard_staging(settings)
    return {"report_dir": str(settings.report_dir), "version": str(version)}


def clean_orphans(settings: Settings) -> list[Path]:
    """Remove what a killed publish left: `.<name>.publishing-PID` copies beside the published
    warehouse and `.<report>.link-PID` links, whose process is gone; and what a killed night
    left under `runs_dir` (its parsed batches, fetched temp files). Called by a writer holding
    the data directory's lock, before its night starts: nothing there belongs to a live night.
    A link planted there is removed as a link (never followed). Returns what it removed."""
    from ingest.lock import pid_alive

    removed = _clean_runs(settings.runs_dir)
    candidates = []
    wh, rep = settings.published_warehouse, settings.report_dir
    if wh.parent.is_dir():
        candidates += [(p, f".{wh.name}.publishing-") for p in wh.parent.iterdir()]
    if rep.parent.is_dir():
        candidates += [(p, f".{rep.name}.link-") for p in rep.parent.iterdir()]
    for path, prefix in candidates:
        if not path.name.startswith(prefix):
            continue
        pid = path.name[len(prefix):]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            removed.append(path)
    return removed


def _clean_runs(runs: Path) -> list[Path]:
    removed: list[Path] = []
    try:
        entries = sorted(runs.iterdir()) if runs.is_dir() and not runs.is_symlink() else []
    except OSError:
        return removed
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                if not any(entry.iterdir()):
                    continue  # an empty folder (incoming/ after a good night): nothing left behind
                shutil.rmtree(entry)  # fd-based: never follows a link inside
            else:
                entry.unlink()  # a file, or a link itself (never its target)
            removed.append(entry)
    return removed


FAILED_NIGHT_DIR = "failed_night"


def publish_failed_night(settings: Settings, run_id: str, render: Callable[[Settings], object]) -> dict:
    """Publish a failed night's DQ results and data docs beside the last good warehouse.

    The published warehouse is not touched. A new report version is made of the live one
    (the last good night's report, data docs and dbt docs) with `failed_night/` holding this
    run's staging directory (its GX data docs and whatever else it wrote) and `night.json`
    (its record in the night history); `render` (the caller passes the report's writer: the
    warehouse layer does not import the report) then re-writes `index.html` in it, so the
    report shows the latest night's outcome; the version is swapped in like any report.
    Returns the paths."""
    from ingest.nights import read_nights

    staging = staging_report_dir(settings, run_id)
    build = staging.with_name(f"{staging.name}.failed-night")
    try:
        prepare_staging(settings, run_id)  # what it copies: no planted link, never another folder
    except UnsafeFile as exc:  # the failure is still recorded and shown, without its docs
        log.warning("%s", exc)
    shutil.rmtree(build, ignore_errors=True)
    live = settings.report_dir
    if live.is_dir():
        shutil.copytree(live, build, symlinks=True,
                        ignore=lambda d, names: [FAILED_NIGHT_DIR] if Path(d) == live else [])
    build.mkdir(parents=True, exist_ok=True)
    failed = build / FAILED_NIGHT_DIR
    if staging.is_dir() and not staging.is_symlink():
        shutil.copytree(staging, failed, symlinks=True)
    failed.mkdir(parents=True, exist_ok=True)
    night = next((n for n in read_nights(settings, limit=10**6) if n["run_id"] == run_id), {"run_id": run_id})
    write_file(failed / "night.json", json.dumps(night, indent=2, default=str) + "\n")
    rendered = None
    if settings.published_warehouse.is_file():  # a first night that fails has no warehouse to show
        rendered = render(settings.with_overrides(report_dir=build))
    version = publish_directory(build, live)
    discard_staging(settings)
    return {"report_dir": str(live), "version": str(version), "failed_night": str(live / FAILED_NIGHT_DIR),
            "report": str(rendered) if rendered else None}


def discard_staging(settings: Settings, keep: int = 3) -> None:
    """Remove all but the newest `keep` staging dirs left by failed nights (their data docs
    are what the failure alert pointed at, so the latest few are kept)."""
    root = staging_report_dir(settings, "x").parent
    if not root.is_dir() or root.is_symlink():  # a planted link: never listed, never emptied
        return
    dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink()),
                  key=lambda p: p.lstat().st_mtime)
    for stale in dirs[: max(0, len(dirs) - keep)]:
        shutil.rmtree(stale, ignore_errors=True)
