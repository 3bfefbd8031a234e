"""What a test of the local stack needs to see its processes (tests/test_stack.py and
tests/test_scale_out.py): the same identity (pid and start time) `orchestration.launch` uses, so
a pid reused by another process after `down` is never counted as left running."""

from __future__ import annotations

from pathlib import Path

from orchestration import launch


def processes(stack_root: Path) -> set[tuple[int, str]]:
    """(pid, start time) of supervisord and every process below it, and of whatever the stack's
    launchers registered or tagged (orphans included)."""
    pids = set(launch.leftovers(stack_root))
    try:
        sup = int((stack_root / "supervisord.pid").read_text())
        pids |= {sup} | launch.descendants(sup)
    except (OSError, ValueError):
        pass
    return {(p, s) for p in pids if (s := launch.start_time(p)) is not None}


def still_running(procs: set[tuple[int, str]]) -> list[int]:
    """The processes of `procs` that still run (the same process, not a zombie)."""
    return sorted(p for p, s in procs if launch.running(p, s))
