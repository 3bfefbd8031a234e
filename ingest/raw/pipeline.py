"""Fetch -> archive -> parse batches -> bulk load: what `ofsted load` and the nightly DAG call.

Every function returns JSON-serialisable values (the DAG passes them through XCom):

- `fetch_and_archive(settings)` reads `raw.manifest`, fetches what is new or changed, writes
  each fetched file unchanged into the content-addressed archive and returns the documents
  to parse (plus one entry per fetch failure, so the load step can report it).
- `make_batches(docs, size)` splits them; `parse_batch(settings, docs, run_id, batch_no)`
  parses one batch into one Parquet file (no DuckDB: batches run in parallel on workers);
  `load_batches(settings, paths)` bulk-loads the files, one transaction per batch
  (`ingest.raw.load`).
- With a batch store (`OFSTED_BATCH_STORE`, an fsspec URL such as `s3://bucket/ofsted`), the
  store carries everything a parse task needs, so a parse worker needs no shared disk:
  `fetch_and_archive` copies each document to parse from the archive to
  `<store>/documents/<sha[:2]>/<sha>.<ext>` and parse reads it from there; batches go to
  `<store>/runs/<run>/batch_<n>.parquet`. The store is scratch: a night's end removes its
  files, and the next night's fetch removes whatever a failed night left. Without a store,
  documents are read from the local archive and batches written under `OFSTED_RUNS_DIR`.
- `run_load(settings)` runs the three steps in-process, streaming batch by batch so memory
  stays flat as the corpus grows; `run_reparse` feeds archived documents down the same path
  (`_run`).

Every document is parsed by `parse_table`, in the process's pool of isolated worker processes
(`ingest.letters.isolate`), whichever way the night runs: a document that breaches its CPU,
wall-time or memory limit is a rejected row, never a dead loader. A fetch that fails as a whole
(`SourceUnavailable`) raises once what could be read is archived (and, in-process, loaded).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import queue
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from ingest import sources as fetch
from ingest.files import too_large
from ingest.letters import isolate, parse
from ingest.letters.models import FetchResult, KnownDocument, Letter
from ingest.raw import archive, load
from ingest.raw.duplicates import content_hash  # the duplicate rule (re-exported)
from ingest.settings import Settings

log = logging.getLogger(__name__)

# One row per document of a batch; findings and copy recipients nested as lists of structs.
FINDING_TYPE = pa.struct([
    ("category", pa.string()), ("heading", pa.string()), ("ordinal", pa.int32()),
    ("finding_text", pa.string()),
])
COPY_TYPE = pa.struct([("ordinal", pa.int32()), ("name", pa.string()), ("role", pa.string())])
BATCH_SCHEMA = pa.schema([
    ("source_uri", pa.string()),
    ("sha256", pa.string()),
    ("archive_path", pa.string()),
    ("fetched_at", pa.timestamp("us", tz="UTC")),
    ("etag", pa.string()),
    ("last_modified", pa.string()),
    ("replaces_sha256", pa.string()),  # what this URI held before (a corrected letter supersedes it)
    ("outcome", pa.string()),  # parsed | rejected | failed
    ("reason", pa.string()),
    ("parser_version", pa.string()),
    ("parsed_at", pa.timestamp("us", tz="UTC")),
    ("content_hash", pa.string()),
    ("source_format", pa.string()),
    ("letter_date", pa.date32()),
    ("recipient_name", pa.string()),
    ("recipient_title", pa.string()),
    ("authority_name", pa.string()),
    ("inspection_start_date", pa.date32()),
    ("inspection_end_date", pa.date32()),
    ("statutory_basis", pa.string()),
    ("previous_inspection", pa.string()),
    ("summary", pa.string()),
    ("inspector_name", pa.string()),
    ("finding_count", pa.int32()),
    ("findings", pa.list_(FINDING_TYPE)),
    ("copy_recipients", pa.list_(COPY_TYPE)),
])
# in-process runs hand a fetched document's bytes to the parser when it is at most this big
KEEP_BYTES_MAX = 256 * 1024
_LETTER_FIELDS = (
    "source_format", "letter_date", "recipient_name", "recipient_title", "authority_name",
    "inspection_start_date", "inspection_end_date", "statutory_basis", "previous_inspection",
    "summary", "inspector_name",
)


# --- fetch and archive ----------------------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _filename_from_uri(uri: str) -> str:
    return unquote(urlsplit(uri).path.rsplit("/", 1)[-1]) or "document"


def _archived_rel(archive_dir: Path, sha256: str) -> str | None:
    """The archived copy of these bytes, whatever its extension (None if not archived)."""
    folder = archive_dir / sha256[:2]
    for p in sorted(folder.glob(f"{sha256}.*")) if folder.is_dir() else ():
        if not p.name.endswith(".tmp"):
            return f"{sha256[:2]}/{p.name}"
    return None


def _archived_shas(archive_dir: Path) -> set[str]:
    """The sha256 of every file in the archive (one directory listing per folder)."""
    found: set[str] = set()
    if not archive_dir.is_dir():
        return found
    for folder in os.scandir(archive_dir):
        if folder.is_dir() and len(folder.name) == 2:
            found.update(e.name.split(".", 1)[0] for e in os.scandir(folder.path)
                         if not e.name.startswith("."))
    return found


def fetch_and_archive(settings: Settings) -> list[dict[str, Any]]:
    """Fetch new/changed documents, archive them, and return what needs parsing.

    Each returned dict has `source_uri, sha256, archive_path, ext, filename, fetched_at, etag,
    last_modified, status`; `status` is "fetched", or "failed" (with `reason`) for a document
    that could not be fetched (recorded in the manifest; the load step reports it). A
    document whose bytes are already loaded or rejected under the current parser version is
    not returned; one archived but never loaded (an interrupted run) or loaded by an older
    parser is returned even when the source says it has not changed. Fetched documents are
    recorded in the manifest with status `archived` until they are loaded.
    """

    remove_earlier_runs(settings)  # one night at a time: whatever is left belongs to a failed night
    con = load.open_warehouse(settings)
    try:
        state = load.read_state(con, parse.PARSER_VERSION)
        now = _now()
        record = lambda seen, failed: load.record_fetches(con, seen, failed, now)  # noqa: E731
        docs = [d for chunk in _fetch_chunks(settings, state, {}, record) for d in chunk]
    finally:
        con.close()
    if settings.batch_store:
        stage_documents(settings, docs)
    return docs


def _fetch_chunks(settings: Settings, state: Any, stats: dict[str, int],
                  record: Callable[[list[dict], list[dict]], None], chunk_size: int | None = None,
                  stop: threading.Event | None = None,
                  keep_bytes: bool = False) -> Iterator[list[dict[str, Any]]]:
    """`fetch_and_archive` as a stream: lists of up to `chunk_size` documents to parse, each
    durable in the archive, and its manifest rows handed to `record`, before it is yielded.
    `stats` counts documents seen, archived and left alone (unchanged).

    The local source is read into memory and written straight into the archive (no temp
    file); with `keep_bytes` (in-process runs) a small document also keeps its bytes under
    `data`, so the parser need not read the archived copy back (not JSON: never for XCom)."""
    for k in ("seen", "unchanged", "archived"):
        stats.setdefault(k, 0)
    archive.clean_orphans(settings.archive_dir)  # temp files of a run that died mid-write
    # a document whose archived copy has been lost is fetched in full again (nothing fetched is lost)
    archived = _archived_shas(settings.archive_dir) if state.manifest else set()
    known = {uri: KnownDocument(m.etag, m.last_modified, m.sha256) for uri, m in state.manifest.items()
             if m.sha256 is None or m.sha256 in archived}
    night = _Night(settings, archive.Archiver(settings.archive_dir), state, _now(), stats)
    out: list[dict[str, Any]] = []

    def flush() -> list[dict[str, Any]]:
        nonlocal out
        # every file durable under its final name before the manifest says it is archived
        errors = night.archiver.finish()
        done, seen, failed = out, night.seen_rows, night.failed_rows
        if errors:
            done, seen, failed = _drop_unarchived(done, seen, failed, errors)
        record(seen, failed)
        out, night.seen_rows, night.failed_rows = [], [], []
        return done

    if settings.source == "local":
        results: Iterable[tuple[FetchResult, bytes | None]] = fetch.read_local_documents(settings, known)
    else:
        results = ((r, None) for r in fetch.fetch_documents(settings, known))
    unavailable: fetch.SourceUnavailable | None = None
    try:
        for r, data in results:
            if stop is not None and stop.is_set():
                return
            stats["seen"] += 1
            doc = night.document(r, data)
            if doc is not None and data is not None and keep_bytes and len(data) <= KEEP_BYTES_MAX:
                doc["data"] = data
            if doc is not None:
                out.append(doc)
            if (chunk_size and len(out) >= chunk_size) or len(night.seen_rows) >= 10_000:
                yield flush()
    except fetch.SourceUnavailable as exc:  # what was read is still archived and loaded, then it fails
        unavailable = exc
    last = flush()
    if last:
        yield last
    if unavailable is not None:
        raise unavailable


class _Night:
    """One fetch pass: archives each fetch result and notes its manifest row."""

    def __init__(self, settings: Settings, archiver: archive.Archiver, state: Any, now: dt.datetime,
                 stats: dict[str, int]):
        self.settings, self.archiver, self.state, self.now, self.stats = settings, archiver, state, now, stats
        self.seen_rows: list[dict[str, Any]] = []
        self.failed_rows: list[dict[str, Any]] = []

    def document(self, r: FetchResult, data: bytes | None) -> dict[str, Any] | None:
        """Archive one fetch result and note its manifest row; the document to parse, or None."""
        prev = self.state.manifest.get(r.source_uri)
        if r.status in ("failed", "skipped"):
            reason = r.reason or "fetch failed"
            self.failed_rows.append({"source_uri": r.source_uri, "detail": reason, "status": r.status})
            if r.status == "skipped":
                return None
            return {"source_uri": r.source_uri, "status": "failed", "reason": reason,
                    "sha256": prev.sha256 if prev else None}
        if r.status == "rejected":  # refused by a limit before it had a hash: recorded, never parsed
            return {"source_uri": r.source_uri, "status": "rejected", "reason": r.reason, "sha256": None,
                    "fetched_at": (r.fetched_at or self.now).isoformat(), "etag": r.etag,
                    "last_modified": r.last_modified}
        sha = r.sha256 or (prev.sha256 if prev else None)
        if r.status == "fetched" and (r.path or data is not None) and sha:
            ext = archive.extension(r.filename or _filename_from_uri(r.source_uri))
            if data is not None:
                rel = self.archiver.add_bytes(data, sha, ext)
            else:
                rel = self.archiver.add(Path(r.path), sha, ext, move=True)
            self.stats["archived"] += 1
            fetched_at = r.fetched_at or self.now
        elif sha:
            rel = _archived_rel(self.settings.archive_dir, sha)
            fetched_at = prev.last_seen_at if prev else self.now
            ext = rel.rsplit(".", 1)[-1] if rel else None
        else:
            return None
        unchanged_uri = prev is not None and prev.sha256 == sha
        settled = self.state.is_settled(sha, prev.status if unchanged_uri and prev else None)
        status = prev.status if unchanged_uri and prev and settled else "archived"
        if sha in self.state.quarantined:  # taken out by the data team: kept, not loaded until released
            status, unchanged_uri = "quarantined", True
        self.seen_rows.append({"source_uri": r.source_uri, "etag": r.etag, "last_modified": r.last_modified,
                               "sha256": sha, "status": status})
        if unchanged_uri and settled:
            self.stats["unchanged"] += 1
            return None
        if rel is None:  # the manifest knows the bytes but the archive lost them: fetch again next run
            self.failed_rows.append({"source_uri": r.source_uri, "detail": "archived copy missing",
                                     "clear": True})
            return {"source_uri": r.source_uri, "status": "failed", "sha256": sha,
                    "reason": "archived copy missing from the archive; it will be fetched again"}
        return {
            "source_uri": r.source_uri, "status": "fetched", "sha256": sha, "archive_path": rel,
            "ext": ext, "filename": r.filename or _filename_from_uri(r.source_uri),
            "fetched_at": fetched_at.isoformat(), "etag": r.etag, "last_modified": r.last_modified,
            # the bytes this URI held before: that letter is superseded if this one is loaded
            "replaces": prev.sha256 if prev is not None and prev.sha256 not in (None, sha) else None,
        }


def _drop_unarchived(out: list[dict], seen: list[dict], failed: list[dict],
                     errors: dict[str, str]) -> tuple[list[dict], list[dict], list[dict]]:
    """Documents whose archive write failed (disk full...) become fetch failures: retried next run."""
    bad = {d["source_uri"]: errors[d["archive_path"]] for d in out if d.get("archive_path") in errors}
    out = [d if d["source_uri"] not in bad else
           {"source_uri": d["source_uri"], "status": "failed", "sha256": d["sha256"],
            "reason": bad[d["source_uri"]]}
           for d in out]
    seen = [r for r in seen if r["source_uri"] not in bad]
    failed = failed + [{"source_uri": u, "detail": reason, "clear": True} for u, reason in bad.items()]
    return out, seen, failed


# --- batches ------------------------------------------------------------------------------------------

def make_batches(docs: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """Consecutive batches of at most `size` documents (order kept)."""
    size = max(1, int(size))
    return [docs[i:i + size] for i in range(0, len(docs), size)]


def batch_path(settings: Settings, run_id: str, batch_no: int) -> Path:
    """`runs_dir/<run_id>/batch_<n>.parquet`; the run id (an Airflow run id, say) made folder-safe."""
    folder = re.sub(r"[^A-Za-z0-9_.:+-]", "_", str(run_id)).lstrip(".") or "run"
    return settings.runs_dir / folder / f"batch_{int(batch_no):05d}.parquet"


def _store(settings: Settings, *parts: str) -> str:
    """A URL under the batch store (`settings.batch_store`, shared by workers on other machines)."""
    return "/".join([str(settings.batch_store).rstrip("/"), *parts])


def batch_url(settings: Settings, run_id: str, batch_no: int) -> str:
    """Where a batch goes: `batch_path` on the local disk, or `<store>/runs/<run>/batch_<n>.parquet`."""
    local = batch_path(settings, run_id, batch_no)
    if not settings.batch_store:
        return str(local)
    return _store(settings, "runs", local.parent.name, local.name)


def staged_url(settings: Settings, archive_path: str) -> str:
    """Where the batch store keeps the copy of an archived document a parse task reads."""
    return _store(settings, "documents", archive_path)


def stage_documents(settings: Settings, docs: list[dict[str, Any]]) -> int:
    """Copy each document to parse from the archive into the batch store (content-addressed:
    one already there is left as it is). Returns how many were copied."""
    fs, _ = fsspec.core.url_to_fs(_store(settings))
    copied = 0
    for d in docs:
        rel = d.get("archive_path")
        if d.get("status") != "fetched" or not rel:
            continue
        url = staged_url(settings, rel)
        if fs.exists(url):
            continue
        fs.put_file(str(settings.archive_dir / rel), url)
        copied += 1
    return copied


def _remove_url(url: str) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def remove_run_files(settings: Settings, run_id: str) -> None:
    """Delete a run's scratch (its batch files; in the batch store, the documents staged for
    it too) once its load has committed: for the night's last step."""
    if not settings.batch_store:
        shutil.rmtree(batch_path(settings, run_id, 0).parent, ignore_errors=True)
        return
    _remove_url(batch_url(settings, run_id, 0).rsplit("/", 1)[0])
    _remove_url(_store(settings, "documents"))  # one night at a time: they were all this night's


def remove_earlier_runs(settings: Settings) -> None:
    """What failed nights left behind (a night removes its own scratch only when it succeeds):
    for the first step of the next night. Only batch files and staged documents are removed."""
    if settings.batch_store:
        _remove_url(_store(settings, "runs"))
        _remove_url(_store(settings, "documents"))
        return
    if not settings.runs_dir.is_dir():
        return
    for folder in settings.runs_dir.iterdir():
        if folder.is_dir() and not folder.is_symlink():
            for f in folder.glob("batch_*.parquet"):
                if f.is_file() and not f.is_symlink():
                    f.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # left when anything else is in it
                folder.rmdir()


def _ts(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _row(doc: dict[str, Any], parsed_at: dt.datetime) -> dict[str, Any]:
    """A batch row's lineage columns; the outcome is filled in by `parse_table`."""
    return {
        "source_uri": doc["source_uri"], "sha256": doc.get("sha256"), "archive_path": doc.get("archive_path"),
        "fetched_at": _ts(doc.get("fetched_at")) or parsed_at, "etag": doc.get("etag"),
        "last_modified": doc.get("last_modified"), "replaces_sha256": doc.get("replaces"),
        "parser_version": parse.PARSER_VERSION,
        "parsed_at": parsed_at, "findings": [], "copy_recipients": [],
    }


def _letter_columns(letter: Letter) -> dict[str, Any]:
    return {f: getattr(letter, f) for f in _LETTER_FIELDS} | {
        "outcome": "parsed",
        "parser_version": letter.parser_version,
        "content_hash": content_hash(letter),
        "finding_count": len(letter.findings),
        "findings": [{"category": f.category, "heading": f.heading, "ordinal": f.ordinal,
                      "finding_text": f.text} for f in letter.findings],
        "copy_recipients": [{"ordinal": c.ordinal, "name": c.name, "role": c.role}
                            for c in letter.copy_recipients],
    }


def parse_table(settings: Settings, docs: list[dict[str, Any]]) -> pa.Table:
    """Parse one batch of archived documents into an Arrow table of `BATCH_SCHEMA` (one row
    per document; rejections and fetch failures are rows too, with outcome and reason).

    Each document is parsed in the process's pool of isolated workers (`ingest.letters.isolate`):
    one that breaches its CPU, wall-time or memory limit, or kills its worker, is rejected
    with the limit named, and the rest of the batch is parsed by a fresh worker."""
    parsed_at = _now()
    rows = [_row(d, parsed_at) for d in docs]
    jobs = []
    for i, (d, row) in enumerate(zip(docs, rows, strict=True)):
        if d.get("status") in ("failed", "rejected"):
            row |= {"outcome": d["status"], "reason": d.get("reason") or f"fetch {d['status']}"}
        elif d.get("data") is None and settings.batch_store:  # from the store: no local disk needed
            data, problem = _read_staged(settings, d["archive_path"])
            if problem is not None:
                row |= problem
            else:
                jobs.append((i, data, None, d.get("filename") or d["archive_path"]))
        else:
            path = None if d.get("data") is not None else str(settings.archive_dir / d["archive_path"])
            jobs.append((i, d.get("data"), path, d.get("filename") or d["archive_path"]))
    if jobs:
        pool = isolate.shared_parser(isolate.Limits.from_settings(settings), parse_workers(settings))
        for i, got in pool.parse_many(jobs).items():
            if got.letter is not None:
                rows[i] |= _letter_columns(got.letter)
            elif got.failed is not None:
                rows[i] |= {"outcome": "failed", "reason": got.failed}
            else:
                rows[i] |= {"outcome": "rejected", "reason": got.rejected}
    # column by column: much faster than Table.from_pylist for nested rows
    return pa.Table.from_pydict({name: [r.get(name) for r in rows] for name in BATCH_SCHEMA.names},
                                schema=BATCH_SCHEMA)


def _read_staged(settings: Settings, archive_path: str) -> tuple[bytes | None, dict[str, str] | None]:
    """A staged document's bytes, read from the batch store (at most OFSTED_MAX_FILE_BYTES + 1),
    or the row's outcome when it cannot be: rejected when too large, failed when missing."""
    cap = settings.max_file_bytes
    try:
        with fsspec.open(staged_url(settings, archive_path), "rb") as fh:
            data = fh.read(cap + 1)
    except (FileNotFoundError, OSError) as exc:
        return None, {"outcome": "failed", "reason": f"cannot read the staged copy from the batch store: "
                                                     f"{type(exc).__name__}: {exc}"[:300]}
    if len(data) > cap:
        return None, {"outcome": "rejected", "reason": too_large(None, cap)}
    return data, None


def parse_batch(settings: Settings, docs: list[dict[str, Any]], run_id: str, batch_no: int) -> str:
    """Parse one batch of documents into `runs_dir/<run_id>/batch_<n>.parquet` (with a batch
    store: from the store's staged copies into `<store>/runs/<run>/batch_<n>.parquet`).

    No DuckDB here. Rejections and fetch failures are rows too (outcome/reason), so the load
    step can record them. Re-running the same run_id/batch_no rewrites the same file
    atomically.
    """
    table = parse_table(settings, docs)
    if settings.batch_store:  # an object store's put is atomic: no temp file, no rename
        url = batch_url(settings, run_id, batch_no)
        with fsspec.open(url, "wb", auto_mkdir=True) as fh:
            pq.write_table(table, fh, compression="zstd")
        return url
    path = batch_path(settings, run_id, batch_no)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return str(path)


# --- load ---------------------------------------------------------------------------------------------

def empty_counts() -> dict[str, Any]:
    return {"new": 0, "unchanged": 0, "duplicate": 0, "rejected": 0, "failed": 0, "reparsed": 0,
            "batches": 0, "rejections": [], "failures": [], "duplicates": [], "documents": []}


def merge_counts(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    for k, v in part.items():
        if isinstance(v, list):
            total.setdefault(k, []).extend(v)
        elif isinstance(v, int):
            total[k] = total.get(k, 0) + v
    return total


def load_batches(settings: Settings, batch_paths: Iterable[str], *, replace: bool = False) -> dict[str, Any]:
    """Bulk-load parsed batch files into the raw tables, one transaction per batch.

    Returns counts `{new, unchanged, duplicate, rejected, failed, reparsed, batches}` and the
    lists `rejections` / `failures` (`{source_uri, reason}`), `duplicates`
    (`{source_uri, duplicate_of, duplicate_of_uri, how}`) and `documents` (one
    `{source_uri, outcome, detail}` per document that was not unchanged). With `replace`
    (`ofsted reparse`), letters already loaded get their rows replaced by the new parse.
    A batch that cannot be loaded raises after rolling back that batch only.
    """

    total = empty_counts()
    con = load.open_warehouse(settings)
    try:
        for p in map(str, batch_paths):
            if "://" in p:  # written by parse_batch to settings.batch_store
                with fsspec.open(p, "rb") as fh:
                    table = pq.read_table(fh)
                merge_counts(total, load.load_batch_table(con, table, replace=replace))
            else:
                merge_counts(total, load.load_batch_file(con, Path(p), replace=replace))
    finally:
        con.close()
    return total


# --- in-process runs ------------------------------------------------------------------------------------

def new_run_id(prefix: str = "load") -> str:
    return f"{prefix}-{_now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def parse_workers(settings: Settings) -> int:
    """Isolated parse processes: `OFSTED_PARSE_WORKERS`, or (0) one per core beyond the one
    this process fetches and loads on, at least one, at most four."""
    if settings.parse_workers > 0:
        return settings.parse_workers
    return max(1, min(4, (os.cpu_count() or 1) - 1))


class _BatchRunner:
    """Parses batches (in the isolated worker pool, `parse_table`) into Arrow tables (no
    Parquet round trip in-process; the DAG's mapped tasks use `parse_batch` files) and hands
    them to a loader thread that loads them in order, one transaction each, on the run's one
    warehouse connection; DuckDB releases the GIL while it writes, so loading batch n overlaps
    parsing batch n+1. Only the loader thread touches DuckDB once the runner has started.
    Queues are bounded: a few batches in flight at most, so memory stays flat however large
    the corpus."""

    def __init__(self, settings: Settings, con: Any, run_id: str, *, replace: bool,
                 on_document: Callable[[dict[str, Any]], None] | None = None):
        self.settings, self.con, self.run_id, self.replace = settings, con, run_id, replace
        self.on_document = on_document
        self.batch_no = 0
        self.total = empty_counts()
        self.error: BaseException | None = None
        self._tasks: queue.Queue = queue.Queue(maxsize=2)
        self._loader = threading.Thread(target=self._load_loop, name="load", daemon=True)
        self._loader.start()

    # --- called by the run's thread ---------------------------------------------------------
    def submit(self, docs: list[dict[str, Any]]) -> None:
        self._raise_if_failed()
        self.batch_no += 1
        self._put(("batch", parse_table(self.settings, docs)))

    def record(self, seen: list[dict[str, Any]], failed: list[dict[str, Any]], now: dt.datetime) -> None:
        """Manifest rows of documents that need no parsing (unchanged, failed), in order with the batches."""
        self._put(("manifest", seen, failed, now))

    def finish(self) -> dict[str, Any]:
        self._put(("end",))
        self._loader.join()
        self._raise_if_failed()
        self.close()
        remove_run_files(self.settings, self.run_id)
        return self.total

    def close(self) -> None:
        if self._loader.is_alive():
            self.error = self.error or RuntimeError("run stopped")
            self._drain()
            self._loader.join()

    def _put(self, task: tuple) -> None:
        while True:
            self._raise_if_failed()
            try:
                self._tasks.put(task, timeout=0.2)
                return
            except queue.Full:
                continue

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    def _drain(self) -> None:
        try:
            while True:
                self._tasks.get_nowait()
        except queue.Empty:
            pass
        self._tasks.put(("end",))

    # --- the loader thread ------------------------------------------------------------------
    def _load_loop(self) -> None:

        while True:
            task = self._tasks.get()
            if task[0] == "end" or self.error is not None:
                return
            try:
                if task[0] == "manifest":
                    load.record_fetches(self.con, task[1], task[2], task[3])
                    continue
                part = load.load_batch_table(self.con, task[1], replace=self.replace)
                if self.on_document is not None:  # handed on as they happen, not kept
                    for d in part.pop("documents"):
                        self.on_document(d)
                merge_counts(self.total, part)
            except BaseException as exc:  # raised in the run's thread at its next call
                self.error = exc
                return


def _in_thread(produce: Callable[[Callable[[tuple], None]], None], stop: threading.Event) -> Iterator[tuple]:
    """The items `produce(put)` puts, yielded here as a thread makes them (at most two ahead);
    an exception in the thread is raised here."""
    items: queue.Queue = queue.Queue(maxsize=2)

    def put(item: tuple) -> None:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def run() -> None:
        try:
            produce(put)
            put(("end",))
        except BaseException as exc:  # handed to the consuming thread, which raises it
            put(("error", exc))

    thread = threading.Thread(target=run, name="fetch-archive", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item[0] == "end":
                return
            if item[0] == "error":
                raise item[1]
            yield item
    finally:
        stop.set()
        thread.join()


def _run(settings: Settings, con: Any, run_id: str, work: Iterable[tuple], *, replace: bool,
         on_document: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    """The one path of an in-process night: `work` yields ("docs", batch) to parse and load and
    ("manifest", seen, failed) rows to record, in order; returns the counts."""
    runner = _BatchRunner(settings, con, run_id, replace=replace, on_document=on_document)
    try:
        try:
            for kind, *payload in work:
                if kind == "docs":
                    runner.submit(payload[0])
                else:
                    runner.record(payload[0], payload[1], _now())
        except fetch.SourceUnavailable:
            runner.finish()  # what could be read is loaded; then the night fails
            raise
        total = runner.finish()
    finally:
        runner.close()
    total["run_id"] = run_id
    return total


def _with_workers(settings: Settings, parse_workers: int | None) -> Settings:
    return settings if not parse_workers else settings.with_overrides(parse_workers=parse_workers)


def run_load(settings: Settings, run_id: str | None = None, *, parse_workers: int | None = None,
             on_document: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """`ofsted load`: fetch, archive, parse and load in-process, streaming batch by batch.

    A thread fetches and archives; this thread has each batch parsed by the isolated worker
    pool (`parse_workers` processes, default `OFSTED_PARSE_WORKERS`) and a loader thread loads
    the batches in order, one transaction each. Fetched documents are recorded in the manifest
    when their batch is loaded (a run killed before that fetches them again).
    With `on_document`, each document's outcome (`{source_uri, outcome, detail}`) is passed to
    it as its batch commits instead of being collected in `documents`. A fetch that fails as a
    whole (missing inbox, unreachable index) raises `FetchFailed` after loading what it had.
    """

    settings = _with_workers(settings, parse_workers)
    run_id = run_id or new_run_id("load")
    stats: dict[str, int] = {}
    con = load.open_warehouse(settings)
    try:
        state = load.read_state(con, parse.PARSER_VERSION)  # before the loader thread owns the connection

        def produce(put: Callable[[tuple], None]) -> None:
            def record(seen: list[dict], failed: list[dict]) -> None:
                settled = [r for r in seen if r["status"] != "archived"]
                if settled or failed:
                    put(("manifest", settled, failed))

            for docs in _fetch_chunks(settings, state, stats, record, settings.batch_size, stop,
                                      keep_bytes=True):
                put(("docs", docs))

        stop = threading.Event()
        total = _run(settings, con, run_id, _in_thread(produce, stop), replace=False, on_document=on_document)
    finally:
        con.close()
    total["unchanged"] += stats["unchanged"]  # the source said unchanged: they never reached a batch
    total["seen"] = stats["seen"]
    total["archived"] = stats["archived"]
    return total


def run_reparse(settings: Settings, everything: bool = False, run_id: str | None = None, *,
                parse_workers: int | None = None, retry_rejected: bool = False,
                on_document: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """`ofsted reparse`: re-parse archived documents (older parser versions, or all) and
    replace their rows; documents rejected by an older parser are retried too, and with
    `retry_rejected` those the current one rejected (a limit raised, say). Nothing is fetched."""

    settings = _with_workers(settings, parse_workers)
    run_id = run_id or new_run_id("reparse")
    con = load.open_warehouse(settings)
    try:
        docs = load.reparse_candidates(con, parse.PARSER_VERSION, everything, retry_rejected)
        for d in docs:
            d["archive_path"] = d.get("archive_path") or _archived_rel(settings.archive_dir, d["sha256"])
            if d["archive_path"] is None:
                d |= {"status": "failed", "reason": "archived copy missing from the archive"}
            else:
                d["filename"] = d["archive_path"].rsplit("/", 1)[-1]
        work = (("docs", batch) for batch in make_batches(docs, settings.batch_size))
        total = _run(settings, con, run_id, work, replace=True, on_document=on_document)
    finally:
        con.close()
    total["candidates"] = len(docs)
    return total
