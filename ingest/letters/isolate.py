"""Parse documents in long-lived worker processes with hard limits per document.

A hostile or broken file (a PDF whose form draws itself, a Flate bomb, a slow page) must cost
one rejected document, never the night. `IsolatedParser` keeps a small pool of worker
processes (started once, reused for every document) and, per document:

- CPU seconds: the worker re-arms `RLIMIT_CPU` before each document (its CPU time used so far
  plus the limit), so the kernel stops a document that spins, whatever C code it is in;
- address space: `RLIMIT_AS` in the worker, so an allocation past the limit fails there
  (Python raises MemoryError; PDFium aborts the worker), never in the loader;
- wall seconds: the parent waits for each document's answer at most that long, then kills
  the worker (a document blocked, or the machine too busy to give it its CPU time).

A document that breaches a limit or kills its worker becomes a `RejectedDocument` whose
reason names the limit ("pdf extraction exceeded 1 GiB of memory"); the worker is replaced
and the rest of the batch carries on. The worker reads the archived file itself (bounded by
the size cap), so large bytes never cross the pipe.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from ingest.files import TooLarge, UnsafeFile, read_file
from ingest.letters.models import Letter, RejectedDocument

# what a worker is doing with the current document, for the reason of a breach
_STAGE_PDF, _STAGE_PARSE = "pdf extraction", "parsing"


@dataclass(frozen=True)
class Limits:
    """Per-document limits (see the module docstring). Defaults fit a real letter ~100x over."""

    cpu_s: float = 20.0
    wall_s: float = 30.0
    memory_bytes: int = 1 << 30
    max_bytes: int = 20 * 1024 * 1024  # the size cap: larger files are rejected unread

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(cpu_s=settings.parse_cpu_s, wall_s=settings.parse_wall_s,
                   memory_bytes=settings.parse_memory_bytes, max_bytes=settings.max_file_bytes)


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


# --- reading a file, bounded ------------------------------------------------------------------

def read_bounded(path: Path | str, cap: int) -> bytes:
    """The bytes of a regular file, reading at most `cap` + 1 bytes whatever the file is
    (`ingest.files.read_file`: never through a link, a FIFO never hangs, checked on the open
    descriptor). Raises `RejectedDocument` for a file that is not regular or is larger than
    `cap`; OSError for one that cannot be read.
    """
    try:
        return read_file(path, cap)
    except UnsafeFile as exc:
        raise RejectedDocument(f"not a regular file: {exc.kind or 'special file'}") from None
    except TooLarge as exc:
        raise RejectedDocument(str(exc)) from None


# --- the worker -------------------------------------------------------------------------------

def _arm_cpu(limit_s: float) -> None:
    """Let this process use `limit_s` more CPU seconds from now (the kernel counts whole seconds)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    total = used.ru_utime + used.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(total + limit_s)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _worker_main(conn: Connection, limits: Limits) -> None:  # runs in the worker process
    """Serve documents from `conn` until it closes: (key, data or None, path, filename) in,
    ("stage", key, stage) and ("done", key, Letter | reason) out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    from ingest.letters import extract, parse  # imported before the memory limit is set

    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        for key, data, path, filename in job:
            _arm_cpu(limits.cpu_s)
            try:
                if data is None:
                    data = read_bounded(path, limits.max_bytes)
                # the parent assumes the stage from the file name; a message only where it changes
                # (a PDF by its bytes under another name; a PDF's text extracted)
                pdf = extract.looks_like_pdf(data, filename)
                if pdf != _named_pdf(filename):
                    conn.send(("stage", key, _STAGE_PDF if pdf else _STAGE_PARSE))
                extracted = functools.partial(conn.send, ("stage", key, _STAGE_PARSE)) if pdf else None
                result: Any = parse.parse_document(data, filename, on_extracted=extracted)
            except RejectedDocument as rej:
                result = rej.reason
            except MemoryError:
                result = ("memory", None)
            except OSError as exc:
                result = ("failed", f"cannot read archived copy: {exc.strerror or exc}")
            data = None
            try:
                conn.send(("done", key, result))
            except MemoryError:
                conn.send(("done", key, ("memory", None)))


# --- the parent side --------------------------------------------------------------------------

# the worker imports this very package (not whatever `ingest` its working directory holds)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_WORKER_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from ingest.letters.isolate import worker_entry; worker_entry(sys.argv[2:])")


class _Worker:
    """One worker: a fresh interpreter (nothing of the parent's `__main__` is imported),
    talking over a socket pair."""

    def __init__(self, limits: Limits):
        ours, theirs = socket.socketpair()
        cmd = [sys.executable, "-c", _WORKER_BOOT, _PACKAGE_ROOT, str(theirs.fileno()),
               json.dumps(asdict(limits))]
        try:
            self.proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.peak_vm = 0

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def sample_memory(self) -> None:
        try:
            with open(f"/proc/{self.proc.pid}/statm", "rb") as fh:
                self.peak_vm = max(self.peak_vm, int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, IndexError):
            pass

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(2)
        self.kill()


_ALLOC_FAILURE_SIGNALS = frozenset(-sig for sig in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS,
                                                   signal.SIGTRAP, signal.SIGILL))


@dataclass
class Outcome:
    """What became of one document: a Letter, or `rejected` / `failed` with a one-line reason."""

    letter: Letter | None = None
    rejected: str | None = None
    failed: str | None = None


class IsolatedParser:
    """A pool of `workers` long-lived parse processes. `parse_many` parses a sequence of
    documents `(key, data or None, path, filename)` and returns one `Outcome` per key.

    Thread-safe: one batch at a time (the pool is shared by every caller in a process)."""

    _TICK_S = 0.05  # how often a busy worker's memory is sampled and its wall time checked

    def __init__(self, limits: Limits, workers: int = 1):
        self.limits = limits
        self.size = max(1, workers)
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.replaced = 0

    def usage(self) -> tuple[float, int]:
        """CPU seconds used and summed peak RSS (bytes) of the live workers, from /proc: for
        benchmarks (a live worker's usage is not yet in RUSAGE_CHILDREN)."""
        cpu, peak = 0.0, 0
        tick = os.sysconf("SC_CLK_TCK")
        for w in self._workers:
            try:
                with open(f"/proc/{w.proc.pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                cpu += (int(fields[11]) + int(fields[12])) / tick
                with open(f"/proc/{w.proc.pid}/status") as fh:
                    hwm = next((line for line in fh if line.startswith("VmHWM:")), "VmHWM: 0 kB")
                peak += int(hwm.split()[1]) * 1024
            except (OSError, ValueError, IndexError):
                continue
        return cpu, peak

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                w.stop()
            self._workers = []

    def _worker(self, i: int) -> _Worker:
        while len(self._workers) <= i:
            self._workers.append(_Worker(self.limits))
        w = self._workers[i]
        if not w.alive:
            w.kill()
            w = self._workers[i] = _Worker(self.limits)
            self.replaced += 1
        return w

    def parse_many(self, docs: Sequence[tuple[Any, bytes | None, str | None, str]]) -> dict[Any, Outcome]:
        with self._lock:
            return self._parse_many(list(docs))

    def parse_one(self, data: bytes | None, path: str | None, filename: str) -> Outcome:
        return self.parse_many([(0, data, path, filename)])[0]

    def _parse_many(self, docs: list[tuple[Any, bytes | None, str | None, str]]) -> dict[Any, Outcome]:
        out: dict[Any, Outcome] = {}
        pending = list(docs)
        n = min(self.size, max(1, len(pending)))
        # contiguous slices, one per worker; a killed worker's unfinished slice is resent
        queues: dict[int, list] = {i: pending[i * len(pending) // n:(i + 1) * len(pending) // n]
                                   for i in range(n)}
        active: dict[int, dict[str, Any]] = {}
        for i, q in queues.items():
            if q:
                self._send(i, q, active)
        try:
            self._collect(active, out)
        except BaseException:
            # interrupted (a timeout, ^C, an error here): what the busy workers still send would be
            # read as the answers of the next call's keys; they are killed, the next call gets new ones
            for i in active:
                self._workers[i].kill()
            raise
        return out

    def _collect(self, active: dict[int, dict[str, Any]], out: dict[Any, Outcome]) -> None:
        last_sample = 0.0
        while active:
            conns = {self._workers[i].conn: i for i in active}
            ready = wait(list(conns), timeout=self._TICK_S)
            now = time.monotonic()
            for c in ready:
                i = conns[c]
                self._receive(i, active, out)
            sample = now - last_sample >= self._TICK_S
            last_sample = now if sample else last_sample
            for i in list(active):
                a, w = active[i], self._workers[i]
                if sample:
                    w.sample_memory()
                if a.get("eof") or not w.alive:
                    self._receive(i, active, out)  # what it answered before it died counts
                    if i in active:
                        self._fail_current(i, active, out, self._death_reason(w, active[i]))
                elif now - a["since"] > self.limits.wall_s:
                    w.kill()
                    self._fail_current(i, active, out,
                                       f"{a['stage']} exceeded {self.limits.wall_s:g} s of wall time")

    def _send(self, i: int, q: list, active: dict[int, dict[str, Any]]) -> None:
        w = self._worker(i)
        w.peak_vm = 0
        active[i] = {"queue": q, "pos": 0, "since": time.monotonic(), "stage": _first_stage(q[0])}
        with contextlib.suppress(OSError):  # died before it took the job: the loop sees it dead
            w.conn.send(q)

    def _receive(self, i: int, active: dict[int, dict[str, Any]], out: dict[Any, Outcome]) -> None:
        a, w = active[i], self._workers[i]
        try:
            while w.conn.poll():
                kind, key, value = w.conn.recv()
                if kind == "stage":
                    a["stage"] = value
                    continue
                out[key] = _outcome(value, a["stage"], self.limits)
                a["pos"] += 1
                a["since"] = time.monotonic()
                if a["pos"] >= len(a["queue"]):
                    del active[i]
                    return
                a["stage"] = _first_stage(a["queue"][a["pos"]])
        except (EOFError, OSError):
            a["eof"] = True  # it died: the loop names the cause

    def _fail_current(self, i: int, active: dict[int, dict[str, Any]], out: dict[Any, Outcome],
                      reason: str) -> None:
        a = active.pop(i)
        key = a["queue"][a["pos"]][0]
        out[key] = Outcome(rejected=reason)
        self._workers[i].kill()
        rest = a["queue"][a["pos"] + 1:]
        if rest:
            self._send(i, rest, active)
        else:
            self._worker(i)  # replace it now: the next batch finds a warm worker

    def _death_reason(self, w: _Worker, a: dict[str, Any]) -> str:
        try:
            code = w.proc.wait(5)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            code = w.proc.wait()
        stage = a["stage"]
        if code == -signal.SIGXCPU:
            return f"{stage} exceeded {self.limits.cpu_s:g} s of CPU time"
        if w.peak_vm >= 0.5 * self.limits.memory_bytes and code in _ALLOC_FAILURE_SIGNALS:
            # PDFium aborts (or faults) when an allocation fails under the address-space limit
            return f"{stage} exceeded {human_bytes(self.limits.memory_bytes)} of memory"
        name = signal.Signals(-code).name if code is not None and code < 0 else f"exit code {code}"
        return f"{stage} crashed its worker process ({name})"


def _named_pdf(filename: str) -> bool:
    return filename.lower().endswith(".pdf")


def _first_stage(job: tuple[Any, bytes | None, str | None, str]) -> str:
    return _STAGE_PDF if _named_pdf(job[3]) else _STAGE_PARSE


def _outcome(value: Any, stage: str, limits: Limits) -> Outcome:
    if isinstance(value, Letter):
        return Outcome(letter=value)
    if isinstance(value, str):
        return Outcome(rejected=value)
    kind, reason = value
    if kind == "memory":
        return Outcome(rejected=f"{stage} exceeded {human_bytes(limits.memory_bytes)} of memory")
    return Outcome(failed=reason)


# --- one pool per process ----------------------------------------------------------------------

_POOL: IsolatedParser | None = None
_POOL_LOCK = threading.Lock()


def shared_parser(limits: Limits, workers: int = 1) -> IsolatedParser:
    """The process's pool (started on first use, replaced if the limits or size change)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.limits != limits or _POOL.size != max(1, workers):
            if _POOL is not None:
                _POOL.close()
            _POOL = IsolatedParser(limits, workers)
        return _POOL


def close_shared_parser() -> None:
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.close()
            _POOL = None


def worker_entry(argv: list[str]) -> None:
    """A worker process's main: `FD LIMITS_JSON` (see `_Worker`)."""
    _worker_main(Connection(int(argv[0])), Limits(**json.loads(argv[1])))
