"""What every source shares: the result helpers, the configuration error, and the temp
files fetched bytes are written to (under ``incoming_dir(settings)``) before archiving."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import uuid
from pathlib import Path

from ingest.files import CREATE_FLAGS, MAX_FILE_ENV, TooLarge
from ingest.letters.models import FetchResult
from ingest.redact import redact, redact_url
from ingest.settings import Settings

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
LIMIT_ENV = MAX_FILE_ENV


class FetchConfigError(ValueError):
    """The settings cannot describe a source (one line, fit to show a user)."""


class SourceUnavailable(RuntimeError):
    """The source as a whole could not be read (missing inbox, unreadable folder, unreachable
    index): a failed fetch, not an empty night. Raised once every readable document has been
    handed over, so what could be fetched is still loaded."""


def incoming_dir(settings: Settings) -> Path:
    """Where fetched temp files are written: the caller moves or deletes them."""
    return settings.runs_dir / "incoming"




def redact_text(text: str | None) -> str | None:
    """Every URL's `user:pass@` (and every configured secret) in a message redacted."""
    return redact(text)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def one_line(text: object) -> str:
    return " ".join(str(text).split()) or type(text).__name__


def failed(uri: str, reason: str) -> FetchResult:
    log.warning("fetch failed: %s: %s", redact_url(uri), redact(reason))
    return FetchResult(source_uri=uri, status="failed", reason=one_line(reason))


def skipped(uri: str, reason: str) -> FetchResult:
    log.warning("skipped: %s: %s", redact_url(uri), redact(reason))
    return FetchResult(source_uri=uri, status="skipped", reason=one_line(reason))


def rejected(uri: str, reason: str, **stamp: str | None) -> FetchResult:
    """Refused by a limit before its bytes were read in full (no hash): a rejected document."""
    log.warning("rejected: %s: %s", redact_url(uri), redact(reason))
    return FetchResult(source_uri=uri, status="rejected", reason=one_line(reason), fetched_at=utc_now(),
                       **stamp)


# --- temp files -------------------------------------------------------------------------------

class IncomingWriteError(OSError):
    """Writing a temp file under incoming/ failed (disk full, permissions): not one document's
    fault, so it is raised to the caller instead of being reported per document."""


class TempFile:
    """A file being written under incoming/ as `*.part`, hashed and counted as it goes; it
    gets its final name only once `keep` is called (after verification)."""

    def __init__(self, directory: Path, max_bytes: int):
        self.stem = directory / f"fetch-{uuid.uuid4().hex}"
        self.part = self.stem.with_name(self.stem.name + ".part")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._fh = os.fdopen(os.open(self.part, CREATE_FLAGS, 0o644), "wb")  # closed in keep/discard
        except OSError as e:
            raise IncomingWriteError(f"cannot write a temp file in {directory}: {e.strerror or e}") from e
        self._hash = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge
        self._hash.update(chunk)
        try:
            self._fh.write(chunk)
        except OSError as e:
            raise IncomingWriteError(f"cannot write {self.part}: {e.strerror or e}") from e

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def keep(self, filename: str) -> Path:
        ext = Path(filename).suffix.lower()
        final = self.stem.with_name(self.stem.name + (ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else ""))
        try:
            self._fh.close()
            os.replace(self.part, final)
        except OSError as e:
            raise IncomingWriteError(f"cannot write {final}: {e.strerror or e}") from e
        return final

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # the file goes anyway
            self._fh.close()
        self.part.unlink(missing_ok=True)


class MemorySink:
    """Like `TempFile`, in memory: for the index page."""

    def __init__(self, max_bytes: int):
        self.data = bytearray()
        self.max_bytes = max_bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def write(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self.max_bytes:
            raise TooLarge
        self.data += chunk


