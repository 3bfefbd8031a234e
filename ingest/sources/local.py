"""The local source: every regular file under the inbox folder, read once and verified.

URI = ``file://`` absolute path; "ETag" = ``<size>-<mtime_ns>``, so an unchanged file is not
read again. Hidden files and folders and editor or download leftovers are skipped.

Nothing outside the inbox is ever read: symbolic links (to files or folders), FIFOs, sockets
and devices are not followed or opened but reported as ``skipped`` with the reason, and each
file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked to be a regular file on the open
descriptor (a file swapped for a link or a FIFO after the listing is refused, never read).
A file over the size cap is ``rejected`` unread. A missing inbox or a folder that cannot be
listed raises `SourceUnavailable` once the rest has been read: a failed fetch, not a quiet night.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from ingest.files import file_kind, too_large
from ingest.letters.models import FetchResult, KnownDocument
from ingest.settings import Settings
from ingest.sources.common import (
    CHUNK_BYTES,
    SourceUnavailable,
    TempFile,
    failed,
    incoming_dir,
    rejected,
    skipped,
    utc_now,
)

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


def iter_inbox(inbox: Path, errors: list[str] | None = None) -> list[Path]:
    """Candidate entries under `inbox` (sub-folders included, hidden ones skipped; links to
    folders listed, never entered), sorted by relative path so runs are deterministic.
    Folders that cannot be listed are added to `errors` (one line each)."""
    found: list[Path] = []

    def on_error(exc: OSError) -> None:
        if errors is not None:
            errors.append(f"cannot read folder {exc.filename}: {exc.strerror or exc}")

    for root, dirs, files in os.walk(inbox, onerror=on_error, followlinks=False):
        linked = [d for d in dirs if not d.startswith(".") and os.path.islink(os.path.join(root, d))]
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in linked]
        found.extend(Path(root) / f for f in (*files, *linked) if not is_ignored_name(f))
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
        raise SourceUnavailable(f"inbox folder {inbox} does not exist or is not a folder")
    errors: list[str] = []
    try:
        entries = iter_inbox(inbox, errors)
    except OSError as exc:
        raise SourceUnavailable(f"cannot read inbox folder {inbox}: {exc.strerror or exc}") from exc
    if not os.access(inbox, os.R_OK | os.X_OK):
        errors.insert(0, f"cannot read inbox folder {inbox}: Permission denied")
    for path in entries:
        result, data = read_local_file(path, known, settings.max_file_bytes)
        yield path, result, data
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SourceUnavailable(errors[0] + more)


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


def _read_bounded(fd: int, size: int, max_bytes: int) -> bytes:
    """The file's bytes (at most `max_bytes + 1`: more means it grew over the limit). A file of
    the expected size takes two read calls: few calls, little GIL traffic."""
    chunks: list[bytes] = []
    total = 0
    while total <= max_bytes:
        chunk = os.read(fd, min(max(size + 1 - total, CHUNK_BYTES), max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def read_local_file(
    path: Path, known_docs: Mapping[str, KnownDocument], max_bytes: int
) -> tuple[FetchResult | None, bytes | None]:
    """One inbox entry -> `(result, data)`: `data` is the file's bytes when the result is
    "fetched" (whole, hashed, and unchanged while read), else None. The result is None for a
    file removed while the inbox was scanned."""
    uri = path.absolute().as_uri()
    known = known_docs.get(uri)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None, None  # removed while we were scanning
    except OSError as e:
        return failed(uri, f"cannot read file: {e.strerror or e}"), None
    if stat.S_ISLNK(st.st_mode):
        return skipped(uri, f"symbolic link to {os.readlink(path)}: links are not followed "
                            "(put the file itself in the inbox)"), None
    if not stat.S_ISREG(st.st_mode):
        return skipped(uri, f"not a regular file: {file_kind(st.st_mode)}"), None
    stamp, modified = local_stamp(st), _mtime_utc(st)
    if known is not None and known.etag == stamp:
        return FetchResult(
            uri, "not_modified", sha256=known.sha256, size=st.st_size, etag=stamp, last_modified=modified
        ), None
    if st.st_size > max_bytes:
        return rejected(uri, too_large(st.st_size, max_bytes), etag=stamp, last_modified=modified), None
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        if e.errno == errno.ELOOP:  # swapped for a link since the listing
            return skipped(uri, "symbolic link: links are not followed"), None
        return failed(uri, f"cannot read file: {e.strerror or e}"), None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            return skipped(uri, f"not a regular file: {file_kind(opened.st_mode)}"), None
        data = _read_bounded(fd, st.st_size, max_bytes)
        after = os.fstat(fd)
    except OSError as e:
        return failed(uri, f"cannot read file: {e.strerror or e}"), None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        return failed(uri, too_large(None, max_bytes, how=" (it grew while read)")), None
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
