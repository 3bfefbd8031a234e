"""Content-addressed archive of every fetched file: `<archive>/<sha256[:2]>/<sha256>.<ext>`.

A file reaches its final name only complete and on disk: it is written (or moved) to a temp
name in the same folder, fsynced, then renamed with `os.replace`, so a crash never leaves a
partial file under a final name. Storing bytes that are already archived is a no-op.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path, PurePosixPath

_EXT = re.compile(r"[a-z0-9]{1,8}")


def extension(filename: str | None) -> str:
    """The archive extension for a document name: its lower-cased suffix, or 'bin'."""
    suffix = PurePosixPath(filename or "").suffix.lower().lstrip(".")
    return suffix if _EXT.fullmatch(suffix) else "bin"


def relative_path(sha256: str, ext: str) -> str:
    """Where bytes with this hash live, relative to the archive root (what the tables store)."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{sha256[:2]}/{sha256}.{ext}"


def resolve(archive_dir: Path, rel: str) -> Path:
    return archive_dir / rel


def store_file(archive_dir: Path, src: Path, sha256: str, ext: str, *, move: bool = False) -> str:
    """Archive the file at `src` (whose bytes hash to `sha256`); returns the relative path.

    With `move`, `src` (a fetched temp file) is renamed into place when it is on the same file
    system, else copied; it no longer exists afterwards either way.
    """
    rel = relative_path(sha256, ext)
    final = archive_dir / rel
    if final.exists():
        if move:
            src.unlink(missing_ok=True)
        return rel
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        if move:
            _fsync_file(src)
            try:
                os.replace(src, tmp)
            except OSError:  # another file system: copy, then drop the temp original
                _copy_synced(src, tmp)
                src.unlink(missing_ok=True)
        else:
            _copy_synced(src, tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(final.parent)
    return rel


def store_bytes(archive_dir: Path, data: bytes, ext: str) -> str:
    """Archive bytes held in memory (tests, tools); returns the relative path."""
    sha = hashlib.sha256(data).hexdigest()
    rel = relative_path(sha, ext)
    final = archive_dir / rel
    if final.exists():
        return rel
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(final.parent)
    return rel


def read(archive_dir: Path, rel: str) -> bytes:
    return (archive_dir / rel).read_bytes()


def _copy_synced(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        shutil.copyfileobj(fin, fout, 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
