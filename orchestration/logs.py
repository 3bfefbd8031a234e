"""The run's log file, and reading Airflow's structured task logs.

`console_to_log` is where `ofsted run` and `ofsted rerun` send everything the run writes:
file descriptors 1 and 2 (Airflow's task logs and tracebacks, dbt's output, GX's
lines, subprocesses) go through a pipe that a thread drains into `settings.log_file`, rotated
when it passes LOG_MAX_BYTES (LOG_BACKUPS older files kept: ofsted.log.1, .2, ...). The
command's own lines go to the real console and, the same line, to the log. Every line is
redacted (`ingest.redact`) on its way to either; the log is opened as `ingest.files` opens
what it appends to: never through a link or into a FIFO planted at its name.

`last_error` reads Airflow's structured task logs (JSON events, one per line or as the REST
API returns them) for the one thing alerts and `make night` need: why a task failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from ingest.files import open_append
from ingest.redact import RedactingStream, redact

LOG_MAX_BYTES = 20 * 2**20  # a log file is rotated past this size ...
LOG_BACKUPS = 5  # ... keeping this many older ones
_MAX_LINE = 64 * 1024  # a longer line (no newline in sight) is written in pieces
_DRAIN_AFTER = 2.0  # seconds the log is still read after the block, while lines keep coming


class _LogFile(RotatingFileHandler):
    def _open(self):  # noqa: ANN202 - the stream RotatingFileHandler writes to
        """Never through a link, never into a FIFO planted at the log's name (nor its backups')."""
        return os.fdopen(open_append(self.baseFilename), "a", encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:
        """Never report on stderr: stderr is the pipe this handler drains (a full disk loses lines)."""


@contextlib.contextmanager
def console_to_log(log_file: Path, max_bytes: int = LOG_MAX_BYTES,
                   backups: int = LOG_BACKUPS) -> Iterator[Callable[[str], None]]:
    """For the block, send file descriptors 1 and 2 to `log_file` (rotated, see the module), and
    yield `say(line)`: the line on the real console and in the log.

    The block's end does not wait for the pipe's end of file: a process the run started may hold
    the pipe open after it (multiprocessing's resource tracker, started by a library, lives as long
    as this process), which made every `ofsted run` wait 10 s for nothing. What is in the pipe is
    read until it is idle (at most _DRAIN_AFTER seconds); later output of such a process is lost."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = _LogFile(log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    read_fd, write_fd = os.pipe()
    ended = threading.Event()

    def emit(line: bytes) -> None:
        text = redact(line.decode("utf-8", errors="replace").rstrip("\r")) or ""
        handler.emit(logging.makeLogRecord({"msg": text, "args": None}))

    def drain() -> None:
        pending, deadline = b"", None
        try:
            while True:
                if ended.is_set() and deadline is None:
                    deadline = time.monotonic() + _DRAIN_AFTER
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if not select.select([read_fd], [], [], 0.05)[0]:
                    if ended.is_set():
                        break  # the block is over and nothing more is waiting
                    continue
                chunk = os.read(read_fd, _MAX_LINE)
                if not chunk:
                    break  # end of file: nobody holds the pipe open any more
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    emit(line)
                while len(pending) >= _MAX_LINE:
                    emit(pending[:_MAX_LINE])
                    pending = pending[_MAX_LINE:]
        finally:
            if pending:
                emit(pending)
            os.close(read_fd)

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = RedactingStream(os.fdopen(os.dup(saved[0]), "w", buffering=1))
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    reader = threading.Thread(target=drain, name="ofsted-log", daemon=True)
    reader.start()

    def say(line: str) -> None:
        print(line, file=console, flush=True)
        print(line, flush=True)  # fd 1: the log

    try:
        yield say
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        console.close()
        ended.set()
        reader.join(timeout=_DRAIN_AFTER + 5)
        handler.close()


@contextlib.contextmanager
def steps_logging(level: int = logging.INFO) -> Iterator[None]:
    """For an in-process night (`ofsted run`, `ofsted rerun`): the Python logging of the steps
    (which step starts, the GX suites' results, the parse pool, the lock) at `level` on stderr,
    which `console_to_log` sends to the log; as it was after the block. (Through Airflow, its
    own logging does this.)"""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    before = root.level
    root.addHandler(handler)
    root.setLevel(min(level, before) if before else level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(before)


def last_error(events: Iterable[Any]) -> str | None:
    """The last error in a task's structured log (Airflow's JSON events): its exception class and
    message when it has one, else the error event's text."""
    raised, text = None, None  # an exception wins over lines on stderr after it (a resource_tracker warning)
    for event in events:
        if not isinstance(event, dict) or event.get("level") not in ("error", "critical"):
            continue
        details = [d for d in event.get("error_detail") or [] if isinstance(d, dict) and d.get("exc_type")]
        if details:
            raised = f"{details[-1]['exc_type']}: {details[-1].get('exc_value', '')}"
        elif event.get("event"):
            text = str(event["event"])
    return raised or text
