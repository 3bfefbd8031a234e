"""orchestration/launch.py, the way the local stack starts each program, on real processes.

A "program" here is a shell that starts a grandchild which leaves its process group and session
(as Airflow's task processes do) and then waits. Killed with -9, the program's launcher stops the
grandchild; the launcher itself killed with -9 takes the program with it (parent-death signal) and
its registry lets the next instance, or `sweep` (`make down`), stop the orphaned grandchild.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestration import launch

# the program: a grandchild in its own session (setsid), its pid written to a file, then wait
PROGRAM = 'setsid sleep 300 & echo $! > "$1"; wait'


def start(root: Path, pidfile: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "orchestration.launch", "--root", str(root),
                             "--name", "prog", "--", "sh", "-c", PROGRAM, "sh", str(pidfile)],
                            cwd=Path(launch.__file__).parent.parent)
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None, "the program did not start"
        time.sleep(0.1)
    return proc


def wait_for(what, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def alive(pid: int) -> bool:
    return launch._alive(pid)


def test_a_program_killed_9_leaves_nothing_and_its_launcher_exits_with_its_status(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    proc = start(tmp_path, pidfile)
    grandchild = int(pidfile.read_text())
    program = launch.children(proc.pid)[0]
    assert os.getsid(grandchild) != os.getsid(program)  # out of the group: killasgroup would miss it
    os.kill(program, signal.SIGKILL)
    assert proc.wait(30) == 128 + signal.SIGKILL
    wait_for(lambda: not alive(grandchild))
    assert not (tmp_path / "run" / "prog.pids").exists()


def test_a_launcher_killed_9_takes_its_program_and_the_next_one_stops_the_orphans(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    proc = start(tmp_path, pidfile)
    grandchild = int(pidfile.read_text())
    program = launch.children(proc.pid)[0]
    wait_for(lambda: grandchild in launch.leftovers(tmp_path, "prog"))  # registered
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    wait_for(lambda: not alive(program))  # the parent-death signal
    assert alive(grandchild)  # an orphan now: only the registry knows it is ours
    pidfile.unlink()
    again = start(tmp_path, pidfile)  # a restart stops what the killed instance left
    wait_for(lambda: not alive(grandchild))
    second = int(pidfile.read_text())
    os.kill(again.pid, signal.SIGKILL)
    again.wait(30)
    found, still = launch.sweep(tmp_path)  # `make down`: whatever is left of the whole stack
    assert second in found and still == []
    wait_for(lambda: not alive(second))


def test_a_stop_signal_reaches_the_program_once_and_the_launcher_ends_with_it(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    proc = start(tmp_path, pidfile)
    grandchild = int(pidfile.read_text())
    proc.send_signal(signal.SIGTERM)  # what supervisord sends to stop a program
    assert proc.wait(60) == 128 + signal.SIGTERM  # sh dies of the forwarded TERM
    wait_for(lambda: not alive(grandchild))
    assert launch.leftovers(tmp_path) == []
