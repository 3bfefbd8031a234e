"""Wall time of the whole night (`ofsted run`), where it goes, and its floor.

Runs `ofsted run` in a subprocess, exactly as `make run` does, but on temporary dirs:

1. the sample letters on a fresh data dir (no saved dbt parse: dbt parses the project);
2. the sample letters on a fresh data dir whose dbt target holds the saved parse `make setup`
   makes for the default warehouse (`dbt parse`, untimed): `make run` on a fresh clone;
3. the floor: one warm `dbt build` of the whole project (the `dbt` command line, on run 2's
   work warehouse and target directory): the target is run 2 <= 2.0 x this;
4. run 2 again (nothing new);
5. `ofsted run --airflow` set up as 2 (the same night through Airflow's dag.test, on a fresh
   AIRFLOW_HOME: its metadata DB is created first, and the line saying so gives the time):
   what running the steps in-process saves;
6. N synthetic letters (`devtools.synthetic`, default 1,000) on a fresh data dir, set up as 2.

Each figure is wall and CPU seconds (user + system of the process and its children) with the
load average: on a shared machine compare the ratios of the same run, and CPU seconds, which
other work on the machine inflates far less than wall time.

For each it prints the wall time and the per-step durations from the run's own lines (a line
per step, a mapped step's per item), grouped: parse + load (fetch, batches, parse[n], load_raw),
dbt (the one dbt step), GX (validate_*), docs + publish + report, and the rest: interpreter
start-up and imports, the summary, the process's end (and with --airflow: Airflow's start-up,
DAG parse, the dag.test loop and XComs). Figures, never assertions.

    .venv/bin/python benchmarks/run_bench.py [--letters 1000] [--skip-synthetic]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
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
    ("dbt", lambda t: t == "dbt" or t.startswith("dbt.")),
    ("GX validate", lambda t: t.startswith("validate_")),
    ("docs/publish/report", lambda t: t in ("dbt_docs", "publish", "report")),
)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def night_env(root: Path, inbox: Path, airflow_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFSTED_", "AIRFLOW"))}
    env.update(OFSTED_DATA_DIR=str(root / "data"), OFSTED_INBOX_DIR=str(inbox),
               OFSTED_DBT_TARGET_DIR=str(root / "data" / "dbt_target"),  # as in production: persistent
               AIRFLOW_HOME=str(airflow_home), DO_NOT_TRACK="1")
    return env


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(root: Path, inbox: Path, airflow_home: Path, *flags: str) -> tuple[float, int, str]:
    t0, c0 = time.perf_counter(), children_cpu()
    done = subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / "ofsted"), "run", *flags], cwd=PROJECT_ROOT,
                          env=night_env(root, inbox, airflow_home), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return wall, done.returncode, done.stdout + f"\ncpu {children_cpu() - c0:.1f}"


def dbt_once(root: Path, inbox: Path, airflow_home: Path, *args: str) -> tuple[float, float, int]:
    """One `dbt <args>` from the command line on that night's warehouse and target directory:
    (wall, CPU seconds, exit code)."""
    env = night_env(root, inbox, airflow_home)
    env["OFSTED_WORK_WAREHOUSE"] = str(root / "data" / "warehouse" / "ofsted_work.duckdb")
    project = PROJECT_ROOT / "dbt_project"
    target = root / "data" / "dbt_target"
    t0, c0 = time.perf_counter(), children_cpu()
    done = subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / "dbt"), *args, "--quiet",
                           "--project-dir", str(project), "--profiles-dir", str(project),
                           "--target-path", str(target), "--log-path", str(target / "logs")],
                          env=env, cwd=project, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    if done.returncode:
        print((done.stdout + done.stderr)[-2000:])
    return wall, cpu, done.returncode


STEP_LINE = re.compile(r"^  (ok  |FAIL|skip) +([\d.]+)s  (\S+)", re.M)


def step_rows(stdout: str) -> list[tuple[str, float]]:
    """(step, seconds) from the run's own lines ("  ok      0.6s  fetch", "  ok  0.1s  parse[0]")."""
    return [(m.group(3).split("[", 1)[0], float(m.group(2))) for m in STEP_LINE.finditer(stdout)]


def report(label: str, wall: float, rc: int, stdout: str) -> None:
    rows = step_rows(stdout)
    by_group: dict[str, float] = defaultdict(float)
    n_tasks: dict[str, int] = defaultdict(int)
    for task_id, dur in rows:
        group = next((g for g, match in GROUPS if match(task_id)), "other tasks")
        by_group[group] += dur
        n_tasks[group] += 1
    in_tasks = sum(by_group.values())
    cpu = stdout.rsplit("\ncpu ", 1)[-1] if "\ncpu " in stdout else "?"
    print(f"\n== {label}: wall {wall:.1f}s, CPU {cpu}s, exit {rc}, {len(rows)} steps ({load()})")
    for group, _ in (*GROUPS, ("other tasks", None)):
        if n_tasks[group]:
            print(f"   {group:<22} {by_group[group]:7.1f}s  ({n_tasks[group]} steps, "
                  f"{100 * by_group[group] / wall:4.1f}% of wall)")
    rest = wall - in_tasks
    print(f"   {'the rest':<22} {rest:7.1f}s  ({100 * rest / wall:4.1f}% of wall: start-up, imports, "
          "summary, exit; with --airflow also Airflow's start-up, DAG parse, dag.test loop)")
    for line in stdout.splitlines():
        if line.startswith(("letters:", "marts:", "data quality", "airflow:")):
            print(f"   {line}")


def cpu_of(stdout: str) -> float:
    return float(stdout.rsplit("\ncpu ", 1)[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--letters", type=int, default=1000)
    ap.add_argument("--skip-synthetic", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ofsted-run-bench-") as tmp:
        root = Path(tmp)
        home = root / "airflow"
        sample = PROJECT_ROOT / "data" / "sample_letters"
        wall, rc, out = run_once(root / "cold", sample, home)
        report("sample letters, a fresh data dir (dbt parses the project)", wall, rc, out)
        dbt_once(root / "night", sample, home, "parse")  # what `make setup` does for the default warehouse
        wall, rc, out = run_once(root / "night", sample, home)
        report("sample letters, a fresh data dir set up as `make setup` does (`make run`)", wall, rc, out)
        night, night_cpu = wall, cpu_of(out)
        floor, floor_cpu, rc = dbt_once(root / "night", sample, home, "build")
        print(f"\n== floor: one warm `dbt build` of the whole project (command line, the night's "
              f"warehouse and target): wall {floor:.1f}s, CPU {floor_cpu:.1f}s, exit {rc} ({load()})")
        wall, rc, out = run_once(root / "night", sample, home)
        report("sample letters again (nothing new)", wall, rc, out)
        print(f"\n== ratio `ofsted run` / one warm `dbt build` (target <= 2.0): wall {night / floor:.2f}, "
              f"CPU {night_cpu / floor_cpu:.2f}; nothing new: wall {wall / floor:.2f}, "
              f"CPU {cpu_of(out) / floor_cpu:.2f} ({load()})")
        dbt_once(root / "dag", sample, home, "parse")
        wall, rc, out = run_once(root / "dag", sample, home, "--airflow")
        report("`ofsted run --airflow`, set up as `make run` (fresh AIRFLOW_HOME)", wall, rc, out)
        print(f"   against `ofsted run`: wall {wall / night:.2f}x, CPU {cpu_of(out) / night_cpu:.2f}x")
        if not args.skip_synthetic:
            from devtools.synthetic import write_corpus

            inbox = root / "synthetic"
            t0 = time.perf_counter()
            write_corpus(inbox, args.letters, seed=7)
            print(f"\n({args.letters} synthetic letters written in {time.perf_counter() - t0:.1f}s)")
            dbt_once(root / "synth", inbox, home, "parse")
            wall, rc, out = run_once(root / "synth", inbox, home)
            report(f"{args.letters} synthetic letters (target <= 45 s quiet)", wall, rc, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
