"""Helpers for the night's tests: `ofsted run` in a subprocess with its own temp dirs, and a
reader process polling the published warehouse. (The alert receivers are fixtures in
conftest.py: `webhook`, `mailbox` and their module-scoped twins.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ingest.settings import PROJECT_ROOT, Settings

SAMPLE_LETTERS = PROJECT_ROOT / "data" / "sample_letters"


def run_env(root: Path, inbox: Path, **extra: str) -> dict[str, str]:
    """The environment of an `ofsted run` writing only under `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFSTED_", "AIRFLOW"))}
    env.update({
        "OFSTED_DATA_DIR": str(root / "data"),
        "OFSTED_INBOX_DIR": str(inbox),
        "AIRFLOW_HOME": str(root / "airflow"),
        "DO_NOT_TRACK": "1",
    })
    env.update(extra)
    return env


def settings_for(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def ofsted_run(env: dict[str, str], *flags: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    """`ofsted run` (with `--airflow`: through Airflow's dag.test) in a subprocess."""
    return subprocess.run([sys.executable, "-m", "ingest.cli", "run", *flags], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def run_id_of(stdout: str) -> str:
    m = re.search(r"^run (\S+): ", stdout, re.M)
    assert m, f"no run line in:\n{stdout}"
    return m.group(1)


READER = r"""
import json, sys, time, duckdb
path, stop = sys.argv[1], sys.argv[2]
import os
held = duckdb.connect(path, read_only=True)   # opened before the night, kept open throughout
seen = []
errors = []
print("ready", flush=True)
while not os.path.exists(stop):
    for con, who in ((held, "held"), (None, "fresh")):
        try:
            c = con or duckdb.connect(path, read_only=True)
            n_insp, total = c.execute(
                "select count(*), coalesce(sum(strength_count + satisfactory_count"
                " + area_for_development_count + priority_action_count), 0) from marts.fct_inspections"
            ).fetchone()
            n_find = c.execute("select count(*) from marts.fct_findings").fetchone()[0]
            seen.append([who, n_insp, total, n_find])
            if con is None:
                c.close()
        except Exception as exc:
            errors.append(f"{who}: {type(exc).__name__}: {exc}")
    time.sleep(0.1)
print(json.dumps({"seen": seen, "errors": errors}), flush=True)
"""


def start_reader(published: Path, stop: Path) -> subprocess.Popen:
    """A reader in another process polling the published warehouse until `stop` exists."""
    proc = subprocess.Popen([sys.executable, "-c", READER, str(published), str(stop)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc
