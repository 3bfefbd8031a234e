"""Content-addressed archive of every fetched file: `<archive>/<sha256[:2]>/<sha256>.<ext>`.

A file reaches its final name only complete and on disk: `Archiver` writes (or moves) it to
a temp name in the same folder, makes it durable (one syncfs per group of files, or an fsync
per file), then renames it with `os.replace`, so a crash never leaves a partial file under a
final name. Storing bytes that are already archived is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ingest.files import UnsafeFile, check_target, fsync_dir, fsync_file, syncfs

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


class Archiver:
    """Archives many files with a group commit instead of one fsync per file.

    `add` stages each file under a temp name in its final folder and returns the relative
    path; every `group` files (and at `finish`) the staged files are made durable with one
    syncfs(2) of the archive's file system, then renamed to their final names, then synced
    again. A crash therefore leaves at worst `.*.tmp` files, never a partial file under a final
    name. Where syncfs is not available each file is fsynced before its rename.
    `finish` flushes and returns {relative path: error} for files that could not be stored.
    """

    def __init__(self, archive_dir: Path, group: int = 256):
        self.archive_dir = archive_dir
        self.group = max(1, group)
        self.errors: dict[str, str] = {}
        self._root = os.fspath(archive_dir)
        self._folders: set[str] = set()  # folders known to exist (one mkdir each)
        self._staged: dict[str, tuple[str, str]] = {}  # final path -> (rel, temp path); plain str: fast

    def add(self, src: Path, sha256: str, ext: str, *, move: bool = True) -> str:
        def write(tmp: str) -> None:
            if move:
                try:
                    os.replace(src, tmp)
                except OSError:  # another file system
                    shutil.copyfile(src, tmp)
                    src.unlink(missing_ok=True)
            else:
                shutil.copyfile(src, tmp)

        rel, already = self._stage(sha256, ext, write)
        if already and move:  # archived (or staged) under this hash before: the copy is surplus
            src.unlink(missing_ok=True)
        return rel

    def add_bytes(self, data: bytes, sha256: str, ext: str) -> str:
        """Like `add`, for bytes already in memory: written straight to the staging name in
        their final folder (no temp file elsewhere, no copy). The caller vouches that
        `sha256` is the hash of `data` (the fetcher computed it from these very bytes)."""

        def write(tmp: str) -> None:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)

        return self._stage(sha256, ext, write)[0]

    def _stage(self, sha256: str, ext: str, write: Callable[[str], None]) -> tuple[str, bool]:
        """Stage one file under a temp name in its final folder (`write(temp_path)` puts the
        bytes there) unless it is archived or staged already; flush every `group` files.
        Returns (relative path, whether it was there already)."""
        rel = relative_path(sha256, ext)
        final = os.path.join(self._root, rel)
        if final in self._staged:
            return rel, True
        try:
            if check_target(Path(final), "archive at"):  # a link or folder planted there: refused
                return rel, True
        except UnsafeFile as exc:
            self.errors[rel] = f"cannot archive: {exc}"
            return rel, False
        folder = os.path.dirname(final)
        tmp = os.path.join(folder, f".{sha256}.{ext}.{uuid.uuid4().hex}.tmp")
        try:
            if folder not in self._folders:
                os.makedirs(folder, exist_ok=True)
                self._folders.add(folder)
            write(tmp)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self.errors[rel] = f"cannot archive: {exc.strerror or exc}"
            return rel, False
        self._staged[final] = (rel, tmp)
        if len(self._staged) >= self.group:
            self.flush()
        return rel, False

    def flush(self) -> None:
        if not self._staged:
            return
        staged, self._staged = self._staged, {}
        if not syncfs(self.archive_dir):
            for _, tmp in staged.values():
                fsync_file(Path(tmp))
        for final, (rel, tmp) in staged.items():
            try:
                os.replace(tmp, final)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                self.errors[rel] = f"cannot archive: {exc.strerror or exc}"
        if not syncfs(self.archive_dir):
            for d in {os.path.dirname(f) for f in staged}:
                fsync_dir(Path(d))

    def finish(self) -> dict[str, str]:
        """Flush, and hand over (and forget) the errors so far; the archiver stays usable."""
        self.flush()
        errors, self.errors = self.errors, {}
        return errors


def clean_orphans(archive_dir: Path) -> int:
    """Delete the staging files (`.<sha256>.<ext>.<random>.tmp`) a run killed mid-write left
    behind; called at the start of a fetch (one night at a time holds the data directory).
    Returns how many were removed."""
    removed = 0
    if not archive_dir.is_dir():
        return removed
    for folder in os.scandir(archive_dir):
        if not (folder.is_dir(follow_symlinks=False) and len(folder.name) == 2):
            continue
        for entry in os.scandir(folder.path):
            orphan = entry.name.startswith(".") and entry.name.endswith(".tmp")
            if orphan and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed
