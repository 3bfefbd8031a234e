"""Wall time of the whole night (`ofsted run`) and where it goes.

Runs `ofsted run` in a subprocess, exactly as `make run` does, but on temporary dirs:

1. the bundled sample letters, on a fresh AIRFLOW_HOME (cold: metadata DB created);
2. the same again (warm: nothing new; the DB and Cosmos' dbt ls cache are reused);
3. N synthetic letters (`devtools.synthetic`, default 1,000) on a fresh data dir.

For each it prints the wall time and the per-task durations from the Airflow metadata DB
(SQLite, read with sqlite3), grouped: parse + load (fetch, batches, parse[n], load_raw),
dbt (every Cosmos task), GX (validate_*), docs + publish + report, and the rest — the
Airflow/process overhead: interpreter start, DAG parse (including Cosmos' `dbt ls`), the
dag.test() loop, XComs. Figures, never assertions.

    .venv/bin/python benchmarks/run_bench.py [--letters 1000] [--skip-synthetic]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.settings import PROJECT_ROOT  # noqa: E402

GROUPS = (
    ("parse + load", lambda t: t in ("fetch", "batches", "parse", "load_raw")),
    ("dbt (Cosmos)", lambda t: t.startswith("dbt.")),
    ("GX validate", lambda t: t.startswith("validate_")),
    ("docs/publish/report", lambda t: t in ("dbt_docs", "publish", "report")),
)


def run_once(root: Path, inbox: Path, airflow_home: Path) -> tuple[float, int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFSTED_", "AIRFLOW"))}
    env.update(OFSTED_DATA_DIR=str(root / "data"), OFSTED_INBOX_DIR=str(inbox),
               AIRFLOW_HOME=str(airflow_home), DO_NOT_TRACK="1", AIRFLOW__COSMOS__ENABLE_TELEMETRY="False")
    t0 = time.perf_counter()
    done = subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / "ofsted"), "run"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return wall, done.returncode, done.stdout


def task_rows(airflow_home: Path) -> list[tuple[str, int, str, float]]:
    """(task_id, map_index, state, duration) of the latest run in the metadata DB."""
    con = sqlite3.connect(airflow_home / "airflow.db")
    try:
        run_id = con.execute("select run_id from dag_run order by id desc limit 1").fetchone()[0]
        return con.execute("select task_id, map_index, state, coalesce(duration, 0) from task_instance "
                           "where run_id = ? order by start_date", (run_id,)).fetchall()
    finally:
        con.close()


def report(label: str, wall: float, rc: int, rows: list[tuple[str, int, str, float]], stdout: str) -> None:
    by_group: dict[str, float] = defaultdict(float)
    n_tasks: dict[str, int] = defaultdict(int)
    for task_id, _, _, dur in rows:
        group = next((g for g, match in GROUPS if match(task_id)), "other tasks")
        by_group[group] += dur
        n_tasks[group] += 1
    in_tasks = sum(by_group.values())
    print(f"\n== {label}: wall {wall:.1f}s, exit {rc}, {len(rows)} task instances")
    for group, _ in (*GROUPS, ("other tasks", None)):
        if n_tasks[group]:
            print(f"   {group:<22} {by_group[group]:7.1f}s  ({n_tasks[group]} tasks, "
                  f"{100 * by_group[group] / wall:4.1f}% of wall)")
    rest = wall - in_tasks
    print(f"   {'Airflow/process':<22} {rest:7.1f}s  ({100 * rest / wall:4.1f}% of wall: "
          "start-up, DAG parse with dbt ls, dag.test loop)")
    dbt = by_group["dbt (Cosmos)"]
    if n_tasks["dbt (Cosmos)"]:
        per_task = dbt / n_tasks["dbt (Cosmos)"]
        print(f"   dbt per task           {per_task:7.1f}s  (one dbt command each: start-up, parse, run)")
    for line in stdout.splitlines():
        if line.startswith(("letters:", "marts:", "data quality")):
            print(f"   {line}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--letters", type=int, default=1000)
    ap.add_argument("--skip-synthetic", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ofsted-run-bench-") as tmp:
        root = Path(tmp)
        home = root / "airflow"
        sample = PROJECT_ROOT / "data" / "sample_letters"
        for label in ("sample letters, cold (new AIRFLOW_HOME)", "sample letters, warm (nothing new)"):
            wall, rc, out = run_once(root / "sample", sample, home)
            report(label, wall, rc, task_rows(home), out)
        if not args.skip_synthetic:
            from devtools.synthetic import write_corpus

            inbox = root / "synthetic"
            t0 = time.perf_counter()
            write_corpus(inbox, args.letters, seed=7)
            print(f"\n({args.letters} synthetic letters written in {time.perf_counter() - t0:.1f}s)")
            wall, rc, out = run_once(root / "synth", inbox, home)
            report(f"{args.letters} synthetic letters", wall, rc, task_rows(home), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
