"""The local source: every regular file under the inbox folder, read once and verified.

URI = ``file://`` absolute path; "ETag" = ``<size>-<mtime_ns>``, so an unchanged file is not
read again. Hidden files and folders and editor or download leftovers are skipped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from ingest.letters.models import FetchResult, KnownDocument
from ingest.settings import Settings
from ingest.sources.common import CHUNK_BYTES, LIMIT_ENV, TempFile, failed, incoming_dir, utc_now

_SKIP_SUFFIXES = (
    "~", ".swp", ".swo", ".swx", ".tmp", ".temp", ".part", ".partial", ".crdownload", ".download",
)
_SKIP_NAMES = frozenset({"Thumbs.db", "desktop.ini"})


# --- local inbox ------------------------------------------------------------------------------

def is_ignored_name(name: str) -> bool:
    """Hidden files, editor swap/backup files, Office lock files and unfinished downloads."""
    return (
        name.startswith((".", "~$"))
        or (name.startswith("#") and name.endswith("#"))
        or name.endswith(_SKIP_SUFFIXES)
        or name in _SKIP_NAMES
    )


def iter_inbox(inbox: Path) -> list[Path]:
    """Candidate files under `inbox` (sub-folders included, hidden ones skipped), sorted by
    relative path so runs are deterministic."""
    found: list[Path] = []
    for root, dirs, files in os.walk(inbox, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(root) / f for f in files if not is_ignored_name(f))
    return sorted(found, key=lambda p: p.relative_to(inbox).as_posix())


def local_stamp(st: os.stat_result) -> str:
    """The cheap change detector for local files: size and modification time (ns)."""
    return f"{st.st_size}-{st.st_mtime_ns}"


def _mtime_utc(st: os.stat_result) -> str:
    return dt.datetime.fromtimestamp(st.st_mtime_ns / 1e9, dt.UTC).isoformat()


def fetch_local(settings: Settings, known: Mapping[str, KnownDocument]) -> Iterator[FetchResult]:
    incoming = incoming_dir(settings)
    for _path, result, data in _read_inbox(settings, known):
        if data is not None:
            result = _to_temp_file(result, data, incoming, settings.max_file_bytes)
        if result is not None:
            yield result


def read_local_documents(
    settings: Settings, known: Mapping[str, KnownDocument]
) -> Iterator[tuple[FetchResult, bytes | None]]:
    """The local source without temp files, for a caller that archives the bytes itself:
    `(result, data)` pairs, where `data` holds the verified bytes of a "fetched" result (its
    `path` is None) and is None otherwise. One file is read at a time."""
    for _path, result, data in _read_inbox(settings, known):
        if result is not None:
            yield result, data


def _read_inbox(
    settings: Settings, known: Mapping[str, KnownDocument]
) -> Iterator[tuple[Path, FetchResult | None, bytes | None]]:
    inbox = settings.inbox_dir
    if not inbox.is_dir():
        yield inbox, failed(inbox.as_uri(), f"inbox folder {inbox} does not exist or is not a folder"), None
        return
    for path in iter_inbox(inbox):
        result, data = read_local_file(path, known, settings.max_file_bytes)
        yield path, result, data




def _to_temp_file(result: FetchResult | None, data: bytes, incoming: Path, max_bytes: int) -> FetchResult:
    """A fetched result's bytes written to a verified temp file under incoming/ (its `path`)."""
    assert result is not None and result.filename is not None
    tmp = TempFile(incoming, max_bytes)
    try:
        tmp.write(data)
        kept = tmp.keep(result.filename)
    except BaseException:
        tmp.discard()
        raise
    return dataclasses.replace(result, path=str(kept))


def _read_bounded(path: Path, size: int, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The file's bytes (at most `max_bytes + 1`: more means it grew over the limit) and its
    stat once read. A file of the expected size takes two read calls: few calls, little GIL traffic."""
    chunks: list[bytes] = []
    total = 0
    with open(path, "rb", buffering=0) as src:
        while total <= max_bytes:
            chunk = src.read(min(max(size + 1 - total, CHUNK_BYTES), max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        after = os.fstat(src.fileno())
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), after


def read_local_file(
    path: Path, known_docs: Mapping[str, KnownDocument], max_bytes: int
) -> tuple[FetchResult | None, bytes | None]:
    """One inbox file -> `(result, data)`: the result is None for what is not a regular file
    (fifo, socket...); `data` is the file's bytes when the result is "fetched" (whole, hashed,
    and unchanged while read), else None."""
    uri = path.absolute().as_uri()
    known = known_docs.get(uri)
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return failed(uri, f"broken symbolic link: {os.readlink(path)} does not exist"), None
        return None, None  # removed while we were scanning
    except OSError as e:
        return failed(uri, f"cannot read file: {e.strerror or e}"), None
    if not stat.S_ISREG(st.st_mode):
        return None, None
    stamp, modified = local_stamp(st), _mtime_utc(st)
    if known is not None and known.etag == stamp:
        return FetchResult(
            uri, "not_modified", sha256=known.sha256, size=st.st_size, etag=stamp, last_modified=modified
        ), None
    if st.st_size > max_bytes:
        return failed(uri, f"file is {st.st_size} bytes, over the limit of {max_bytes} ({LIMIT_ENV})"), None
    try:
        data, after = _read_bounded(path, st.st_size, max_bytes)
    except OSError as e:
        return failed(uri, f"cannot read file: {e.strerror or e}"), None
    if len(data) > max_bytes:
        return failed(uri, f"file grew over the limit of {max_bytes} bytes ({LIMIT_ENV}) while read"), None
    if local_stamp(after) != stamp or len(data) != st.st_size:
        reason = "file changed while it was being read (still being written?); retried next run"
        return failed(uri, reason), None
    sha = hashlib.sha256(data).hexdigest()
    if known is not None and known.sha256 == sha:
        return FetchResult(
            uri, "not_modified", sha256=sha, size=len(data), etag=stamp, last_modified=modified
        ), None
    return FetchResult(
        source_uri=uri,
        status="fetched",
        sha256=sha,
        size=len(data),
        etag=stamp,
        last_modified=modified,
        filename=path.name,
        fetched_at=utc_now(),
    ), data


