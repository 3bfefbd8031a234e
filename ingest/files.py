"""File I/O on folders the product does not own: the one way files are written, read and removed.

The data directory, the inbox, the external folder, an export folder and the report folder
may all be writable by others, who can plant a symbolic link, a FIFO or a folder at any name
the product uses. Every file the product writes or reads there goes through this module:

- **writing** (`write_file`): a new file is created beside its final name with
  `O_CREAT|O_EXCL|O_NOFOLLOW` under an unpredictable name (nothing planted in advance can be
  there), written, fsynced and renamed over the final name; a final name that is a link, a
  folder or anything but a regular file is refused (`UnsafeFile`, one line) before anything
  is written. A rename replaces a name, never writes through a link.
- **reading** (`read_file`, `open_regular`): opened with `O_NOFOLLOW|O_NONBLOCK` (a FIFO never
  hangs), checked to be a regular file on the open descriptor (no check-then-use race), read
  with a byte cap (`TooLarge`, whose message `too_large` words every size limit the same way).
- **removing** (`remove_file`): only a regular file is removed; a link, a folder or a FIFO at
  the name is refused. Nothing here ever truncates or deletes through a link.
- **folders** a tool writes into by path (`own_dir`, `remove_specials`): a real folder of this
  user that no one else may write, with no link, FIFO or device inside; a link planted at its
  name is removed as a link, a file there is refused.

fsync helpers (a file, a directory after a rename in it) are here too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")

MAX_FILE_ENV = "OFSTED_MAX_FILE_BYTES"
CHUNK_BYTES = 1 << 20
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


class UnsafeFile(OSError):
    """A name the product would read, write or remove is not a regular file it may use (a link,
    a folder, a FIFO...): refused, and the message says so in one line."""

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        self.kind = kind  # what is there instead ("symbolic link", "FIFO (named pipe)"...)

    def __str__(self) -> str:  # OSError's str would prefix "[Errno ...]"
        return self.args[0] if self.args else "unsafe file"


class TooLarge(ValueError):
    """A file (or download) is over its byte cap; the message is `too_large`'s one line."""


def too_large(size: int | None, cap: int, setting: str = MAX_FILE_ENV, how: str = "") -> str:
    """The one wording of every size limit: `file too large: N bytes, over the limit of C bytes
    (SETTING)`, N "more" when the size is not known (it grew while read, or a stream passed the
    cap); `how` says how it was found out (", by its Content-Length")."""
    got = f"{size} bytes" if size is not None else "more"
    return f"file too large: {got}{how}, over the limit of {cap} bytes ({setting})"


def file_kind(mode: int) -> str:
    """What a stat mode is, in words ("regular file", "symbolic link", "FIFO (named pipe)"...)."""
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"),
                       (stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def refusal(path: Path | str, kind: str, doing: str) -> str:
    """The one line a refused name gets: `refusing to <doing> <path>: it is a <kind>, not a regular
    file` (`{}` in `doing` places the path: "use {} as a lock")."""
    article = "an" if kind[0] in "aeiou" else "a"
    what = doing.replace("{}", str(path)) if "{}" in doing else f"{doing} {path}"
    return f"refusing to {what}: it is {article} {kind}, not a regular file"


def check_target(path: Path, doing: str = "replace") -> bool:
    """Whether `path` exists (as a regular file); raises `UnsafeFile` when something else is there."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # nothing there (the writer says why it cannot)
        return False
    if not stat.S_ISREG(st.st_mode):
        kind = file_kind(st.st_mode)
        raise UnsafeFile(refusal(path, kind, doing), kind)
    return True


# --- writing ----------------------------------------------------------------------------------

def create_new(folder: Path, prefix: str, suffix: str = ".tmp", mode: int = 0o644) -> tuple[int, Path]:
    """A new, empty file in `folder` under an unpredictable name: (descriptor, path)."""
    for _ in range(16):
        path = folder / f"{prefix}{secrets.token_hex(8)}{suffix}"
        try:
            return os.open(path, CREATE_FLAGS, mode), path
        except FileExistsError:
            continue
    raise UnsafeFile(f"cannot create a new file in {folder}: every name tried exists")


def write_file(final: Path, content: bytes | str | Callable[[IO[bytes]], T], *, mode: int = 0o644,
               durable: bool = True) -> T | int:
    """Write `final` whole or not at all: into a new file beside it, fsynced, renamed over it.

    `content` is the bytes (or UTF-8 text), or a function that writes to the open binary file
    and returns a value (returned here). Refuses (`UnsafeFile`) when `final` is a link, a
    folder or another non-regular file, before writing anything.
    """
    final = Path(final)
    check_target(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_new(final.parent, f".{final.name[:100]}.", mode=mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(content):
                result = content(fh)
            else:
                data = content.encode("utf-8") if isinstance(content, str) else content
                fh.write(data)
                result = len(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)  # the umask does not decide who may read what we publish
            if durable:
                os.fsync(fh.fileno())
        check_target(final)  # planted while we wrote: refused still (a rename never follows it anyway)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(final.parent)
    return result


def copy_file(src: Path, dst: Path, max_bytes: int, mode: int = 0o644, durable: bool = True) -> int:
    """A copy (never a link) of the regular file `src` at `dst`, by `read_file` and `write_file`."""
    return write_file(dst, read_file(src, max_bytes), mode=mode, durable=durable)


# --- reading ----------------------------------------------------------------------------------

def open_regular(path: Path | str, flags: int = READ_FLAGS, doing: str = "read") -> int:
    """A descriptor on the regular file `path` (never through a link, never blocking on a FIFO),
    or `UnsafeFile` naming what is there instead. `flags` may add O_RDWR / O_CREAT."""
    flags |= os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EMLINK):
            try:
                kind = file_kind(os.lstat(path).st_mode)
            except OSError:
                kind = "special file"
            raise UnsafeFile(refusal(path, kind, doing), kind) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = file_kind(st.st_mode)
        raise UnsafeFile(refusal(path, kind, doing), kind)
    if flags & os.O_NONBLOCK and not (flags & (os.O_WRONLY | os.O_RDWR)):
        os.set_blocking(fd, True)
    return fd


def open_append(path: Path | str) -> int:
    """A descriptor appending to the regular file `path` (created when missing): never through a
    link, never blocking on a FIFO (`UnsafeFile` names what is there instead)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, doing="append to")


def append_bytes(path: Path | str, data: bytes, durable: bool = False) -> None:
    """Append `data` to the regular file `path` with one write (see `open_append`)."""
    fd = open_append(path)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def planted(paths: list[Path]) -> list[str]:
    """One refusal line for each of `paths` that exists as anything but a regular file."""
    out = []
    for path in paths:
        try:
            check_target(path, "use")
        except UnsafeFile as exc:
            out.append(str(exc))
        except OSError:
            continue
    return out


def read_fd(fd: int, max_bytes: int, setting: str = MAX_FILE_ENV) -> bytes:
    """At most `max_bytes` of an open regular file (size checked first; growth while read caught)."""
    size = os.fstat(fd).st_size
    if size > max_bytes:
        raise TooLarge(too_large(size, max_bytes, setting))
    chunks: list[bytes] = []
    got = 0
    while got <= max_bytes:
        chunk = os.read(fd, min(max(size + 1 - got, 64 * 1024), max_bytes + 1 - got, CHUNK_BYTES * 64))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > max_bytes:
        raise TooLarge(too_large(None, max_bytes, setting))
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_file(path: Path | str, max_bytes: int, setting: str = MAX_FILE_ENV) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` (`TooLarge` past it; `UnsafeFile`
    for a link, a FIFO, a folder...; the size is checked before a byte is read)."""
    fd = open_regular(path)
    try:
        return read_fd(fd, max_bytes, setting)
    finally:
        os.close(fd)


def sha256_file(path: Path | str) -> str:
    """The sha256 of the regular file `path` (never through a link), read in chunks."""
    import hashlib

    fd = open_regular(path)
    try:
        h = hashlib.sha256()
        while chunk := os.read(fd, CHUNK_BYTES):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


def read_text(path: Path | str, max_bytes: int, setting: str = MAX_FILE_ENV) -> str:
    return read_file(path, max_bytes, setting).decode("utf-8")


# --- removing ---------------------------------------------------------------------------------

def remove_file(path: Path) -> bool:
    """Remove the regular file `path` (False when there is none); `UnsafeFile` for anything else."""
    if not check_target(path, "remove"):
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return True


def ensure_dir(path: Path) -> Path:
    """`path` as a real folder (made when missing); `UnsafeFile` when a link or a file is there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        path.mkdir(parents=True, exist_ok=True)
        st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        kind = file_kind(st.st_mode)
        article = "an" if kind[0] in "aeiou" else "a"
        raise UnsafeFile(f"refusing to use {path} as a folder: it is {article} {kind}", kind)
    return path


def own_dir(path: Path) -> Path:
    """`path` as a real folder of this user that no one else may write, for a writer that then
    works in it by path (a tool that follows links): a link at the name is removed (the link,
    never its target), a folder of another user (planted under a name they could guess) is
    removed and made again, group and other write bits are taken away; a file, FIFO or other
    non-folder is refused (`UnsafeFile`, one line)."""
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        os.unlink(path)
        st = None
    elif st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid != os.geteuid():
        shutil.rmtree(path)  # fd-based: never follows a link inside
        st = None
    if st is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # made meanwhile: checked below like any other
            os.mkdir(path, 0o755)
    ensure_dir(path)
    st = os.lstat(path)
    if st.st_uid != os.geteuid():
        raise UnsafeFile(f"refusing to use {path} as a folder: it belongs to another user (uid {st.st_uid})")
    if st.st_mode & 0o022:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o022)
    return path


def remove_specials(folder: Path) -> list[Path]:
    """Remove every link, FIFO, socket or device under `folder` (never following a link; the
    link itself is removed); regular files and folders are kept. Returns what it removed."""
    removed = []
    for top, dirs, files in os.walk(folder):  # os.walk lists a link to a folder but never enters it
        for name in dirs + files:
            path = Path(top) / name
            with contextlib.suppress(FileNotFoundError):
                mode = os.lstat(path).st_mode
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    os.unlink(path)
                    removed.append(path)
    return removed


# --- durability -------------------------------------------------------------------------------

def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SYNCFS = _load_syncfs()


def syncfs(path: Path) -> bool:
    """Flush the file system holding the folder `path` (Linux syncfs(2)): one flush for many
    files written without an fsync each. False when not available or it failed."""
    if _SYNCFS is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    except OSError:
        return False
    try:
        return _SYNCFS(fd) == 0
    finally:
        os.close(fd)


def make_durable(folder: Path, files: Iterable[Path]) -> None:
    """Files written with `durable=False` under `folder`, and their folders' entries, on disk:
    one syncfs of the file system, or (where it is missing) an fsync of each file and folder.
    Write what points at them (an index, a link) only after this."""
    if syncfs(folder):
        return
    folders = set()
    for f in files:
        fsync_file(f)
        folders.add(f.parent)
    for d in folders:
        fsync_dir(d)


def fsync_dir(path: Path) -> None:
    """fsync a directory after a rename in it; a no-op where the file system does not allow it."""
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
