"""How the local stack starts each program, so that nothing it started outlives it.

supervisord runs every program as `python -m orchestration.launch --root <stack> --name
<program> -- <command>`. The launcher

1. kills whatever an earlier instance of the same program left behind (`leftovers`): the
   processes listed in its registry (`<stack>/run/<program>.pids`: pid and start time, so a
   reused pid is never hit) and every process whose environment still carries its tag
   (`OFSTED_STACK_TAG=<stack>#<program>`, inherited by every descendant; programs that rewrite
   their process title hide it, hence the registry);
2. becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`), so descendants orphaned by the death of
   the program (a Celery worker killed with -9) are re-parented to it rather than to init, even
   those that moved to their own process group or session (Airflow's task processes do);
3. starts the program with a parent-death signal (`PR_SET_PDEATHSIG`, SIGKILL): if the launcher
   itself is killed with -9, the program dies with it, and the rest is in the registry, which
   the launcher rewrites every `POLL_S` with its descendants;
4. forwards a stop signal (TERM, INT, QUIT, HUP) to the program alone (a Celery worker's warm
   shutdown, PostgreSQL's fast shutdown) and waits for it; when the program ends, for whatever
   reason, it stops every descendant left (TERM, then KILL after `GRACE_S`) and exits with the
   program's status, so supervisord restarts on a clean slate.

`python -m orchestration.stack down` does step 1 for every program once supervisord has stopped
(`sweep`): even a launcher killed with -9 leaves nothing running after `make down`.

Only the standard library: it starts before anything else and must stay small.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TAG_ENV = "OFSTED_STACK_TAG"
WORKER_NAME_ENV = "OFSTED_STACK_WORKER_NAME"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
GRACE_S = 10.0
POLL_S = 1.0
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def tagged(prefix: str, exact: bool = False) -> list[int]:
    """Pids of the processes whose environment holds OFSTED_STACK_TAG equal to `prefix` (or, unless
    `exact`, starting with it); never this process. Processes we may not read are skipped."""
    needle = f"{TAG_ENV}={prefix}".encode()
    me = os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item == needle or (not exact and item.startswith(needle)):
                found.append(int(entry.name))
                break
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def stop(pids: list[int], grace_s: float = GRACE_S) -> list[int]:
    """TERM, then KILL after `grace_s` for what is left; returns the pids that were still alive."""
    pids = [p for p in pids if _alive(p)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            _reap_any()
            time.sleep(0.1)
        pids = [p for p in pids if _alive(p)]
        if not pids:
            break
    return pids


def start_time(pid: int) -> str | None:
    """A process's start time (clock ticks after boot): with the pid, its identity."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def running(pid: int, start: str | None) -> bool:
    """The process `pid` that started at `start` (`start_time`) still runs: not a zombie, and
    not another process that reused the pid."""
    return start is not None and start_time(pid) == start and _alive(pid)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a launcher's: its program, and orphans it adopted)."""
    return sorted(_children_map().get(pid, []))


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (not `pid` itself), from /proc."""
    children = _children_map()
    out: set[int] = set()
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(children.get(p, []))
    return out


def _registry(root: Path, name: str) -> Path:
    return root / "run" / f"{name}.pids"


def _record(path: Path, pids: set[int]) -> None:
    lines = sorted(f"{pid} {start}" for pid in pids if (start := start_time(pid)) is not None)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    os.replace(tmp, path)


def _registered(path: Path) -> list[int]:
    """The registry's processes that still run (same pid, same start time)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        pid, _, start = line.partition(" ")
        if pid.isdigit() and int(pid) != os.getpid() and start_time(int(pid)) == start:
            out.append(int(pid))
    return out


def leftovers(root: Path, name: str | None = None) -> list[int]:
    """What is left running of one program of the stack at `root` (every program: `name` None)."""
    files = [_registry(root, name)] if name else sorted((root / "run").glob("*.pids"))
    found = {pid for f in files for pid in _registered(f)}
    found.update(tagged(f"{root}#{name}", exact=True) if name else tagged(f"{root}#"))
    return sorted(found)


def sweep(root: Path, grace_s: float = GRACE_S) -> tuple[list[int], list[int]]:
    """Stop whatever is left of the stack at `root`: (what was found, what could not be stopped)."""
    found = leftovers(root)
    return found, stop(found, grace_s) if found else []


def _reap_any() -> None:
    """Collect exited children (adopted orphans included) so none stays a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def hostname() -> str:
    """Airflow's `[core] hostname_callable` for an extra worker: the name it was started with, so
    two workers on one machine are told apart in the task instances (default: the FQDN)."""
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


def run(root: Path, name: str, command: list[str], user: str | None = None) -> int:
    tag = f"{root}#{name}"
    registry = _registry(root, name)
    registry.parent.mkdir(parents=True, exist_ok=True)
    earlier = leftovers(root, name)
    if earlier:
        left = stop(earlier, grace_s=2.0)
        print(f"launch: stopped {len(earlier) - len(left)} process(es) an earlier {name} left behind"
              + (f"; could not stop {left}" if left else ""), file=sys.stderr, flush=True)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    env = {**os.environ, TAG_ENV: tag}
    extra: dict = {}
    if user:
        pw = pwd.getpwnam(user)
        extra = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "cwd": "/"}
        env.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)

    def in_child() -> None:  # after the uid change (which would clear it), before exec
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    child = subprocess.Popen(command, env=env, preexec_fn=in_child, **extra)  # noqa: PLW1509

    def forward(signum: int, _frame) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    status = None
    known: set[int] = set()
    next_poll = 0.0
    while status is None:
        try:
            pid, raw = os.waitpid(-1, os.WNOHANG)  # the program, or an orphan it left that we adopted
        except ChildProcessError:
            break
        if pid == child.pid:
            status = raw
        elif pid == 0:
            if time.monotonic() >= next_poll:  # who to stop if this launcher is killed with -9
                now = descendants(os.getpid())
                if now != known:
                    known = now
                    _record(registry, known)
                next_poll = time.monotonic() + POLL_S
            time.sleep(0.1)
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_IGN)
    # what the program left: its tasks are lost when it was killed, so no long grace then
    killed = status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    stop(sorted(descendants(os.getpid()) | set(leftovers(root, name))), grace_s=2.0 if killed else GRACE_S)
    _reap_any()
    registry.unlink(missing_ok=True)
    if status is None:
        return 1
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.launch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="the stack's folder")
    parser.add_argument("--name", required=True, help="the program's name in the stack")
    parser.add_argument("--user", help="run the program as this OS user (the launcher stays as it is)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    return run(args.root, args.name, command, args.user)


if __name__ == "__main__":
    sys.exit(main())
