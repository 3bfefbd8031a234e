"""Wall time of a night on the sample letters under the local stack and under `ofsted run`.

1. DAG parse, cold: a fresh interpreter fills a DagBag with the nightly DAG (Airflow imported
   first and timed apart), as every Celery task process and the dag-processor do.
2. The stack (`python -m orchestration.stack up`, then `night` twice, then `down`) in a
   temporary data directory: `up` time, then per night the wall time, the per-task durations
   as the REST API reports them, and the rest (scheduling, queueing, task start-up).
3. `ofsted run` twice on a fresh temporary data directory and AIRFLOW_HOME, same split.
4. With `--kill`: after the stack's two nights, a third (nothing new) with the Celery worker
   killed -9 a few seconds into `dbt`; printed: its wall time against the clean second
   night's (the cost of a killed worker), and where it went: kill -> the try failed (heartbeat
   timeout), failed -> the retry started (retry delay), the retry itself.

Figures only (targets: stack night <= 60 s, `ofsted run` <= 45 s on the sample letters; a killed
worker costs at most 2 minutes more than a clean night). The machine's load average is printed
beside them: on a shared 2-core machine it moves wall time a lot, so the CPU time the night's
processes used is printed too.

    .venv/bin/python benchmarks/stack_bench.py [--skip-stack] [--skip-run] [--kill]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
SAMPLE = ROOT / "data" / "sample_letters"
LINE = re.compile(r"^  (ok  |FAIL|skip) +([\d.]+)s  (\S+)")
GROUPS = (
    ("parse + load", lambda t: t.split("[")[0] in ("fetch", "batches", "parse", "load_raw")),
    ("dbt", lambda t: t == "dbt" or t.startswith("dbt.")),
    ("GX validate", lambda t: t.startswith("validate_")),
    ("docs/publish/report", lambda t: t in ("dbt_docs", "publish", "report")),
)


def base_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFSTED_", "AIRFLOW"))}
    env.update(OFSTED_DATA_DIR=str(root / "data"), OFSTED_INBOX_DIR=str(SAMPLE), DO_NOT_TRACK="1",
               AIRFLOW_HOME=str(root / "airflow"))
    return env


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall s, CPU s of the child and its descendants that were waited for, result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done


def split(label: str, wall: float, done: subprocess.CompletedProcess, cpu: float | None = None) -> None:
    tasks = [(m.group(3), float(m.group(2))) for m in map(LINE.match, done.stdout.splitlines()) if m]
    by_group: dict[str, float] = defaultdict(float)
    n: dict[str, int] = defaultdict(int)
    for name, took in tasks:
        group = next((g for g, match in GROUPS if match(name)), "other")
        by_group[group] += took
        n[group] += 1
    cpu_note = f", CPU {cpu:.1f}s" if cpu is not None else ""
    print(f"\n== {label}: wall {wall:.1f}s, exit {done.returncode}, {len(tasks)} tasks{cpu_note}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for group, _ in (*GROUPS, ("other", None)):
        if n[group]:
            print(f"   {group:<22} {by_group[group]:7.1f}s in {n[group]} task(s)")
    print(f"   {'between/around tasks':<22} {wall - sum(by_group.values()):7.1f}s  "
          "(scheduling, queueing, process start-up and DAG parse per task)")
    for name, took in tasks:
        print(f"      {took:6.1f}s  {name}")
    if done.returncode != 0:
        print("   stderr: " + " | ".join(done.stderr.strip().splitlines()[-3:]))


def parse_cold(root: Path) -> None:
    code = (
        "import time; t0 = time.perf_counter()\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        "t1 = time.perf_counter()\n"
        f"bag = BundleDagBag(dag_folder={str(ROOT / 'dags')!r}, bundle_path={str(ROOT / 'dags')!r},"
        " bundle_name='dags-folder')\n"
        "t2 = time.perf_counter()\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "print(f'{t1 - t0:.2f} {t2 - t1:.2f} {len(bag.dags[next(iter(bag.dags))].tasks)}')\n")
    env = base_env(root)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{root / 'parse.db'}"
    done = subprocess.run([PY, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print("DAG parse failed: " + done.stderr.strip().splitlines()[-1])
        return
    imp, parse, tasks = done.stdout.strip().splitlines()[-1].split()
    print(f"== DAG parse, cold: DagBag filled in {parse}s ({tasks} tasks; "
          f"importing Airflow first took {imp}s)")


def _kill_worker_during(root: Path, env: dict[str, str], task: str, out: dict, stop: threading.Event) -> None:
    """Kill -9 the stack's Celery worker a few seconds into `task` of the night being run."""
    sys.path.insert(0, str(ROOT))
    from orchestration import launch
    from orchestration.runner import DAG_ID
    from orchestration.stack import Api, read_env_file

    stack_root = root / "data" / "stack"
    api = Api(read_env_file(stack_root / "stack.env"))
    known = {r["dag_run_id"] for r in api.get(f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]}
    while not stop.is_set():
        runs = [r["dag_run_id"] for r in api.get(f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]]
        new = [r for r in runs if r not in known]
        if new:
            quoted = urllib.request.quote(new[0], safe="")
            tis = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances?limit=1000")
            tis = tis["task_instances"]
            if any(ti["task_id"] == task and ti["state"] == "running" for ti in tis):
                time.sleep(5)
                sup = subprocess.run([str(ROOT / ".venv" / "bin" / "supervisorctl"), "-c",
                                      str(stack_root / "supervisord.conf"), "pid", "celery-worker"],
                                     capture_output=True, text=True, env=env).stdout.strip()
                pid = launch.children(int(sup))[0]  # the worker itself, its launcher's child
                os.kill(pid, 9)
                out.update(killed=datetime.now().astimezone(), run_id=new[0], api=api)
                return
        time.sleep(1)


def _tries(api, run_id: str, task: str) -> list[dict]:
    from orchestration.runner import DAG_ID

    quoted = urllib.request.quote(run_id, safe="")
    return api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances/{task}/tries")["task_instances"]


def bench_stack(root: Path, kill: bool = False) -> None:
    os.chmod(root, 0o755)  # the `postgres` OS user must reach its cluster
    env = base_env(root)
    env.pop("AIRFLOW_HOME")
    stack = [PY, "-m", "orchestration.stack"]
    wall, _, up = timed([*stack, "up"], env)
    print(f"\n== stack up: {wall:.1f}s, exit {up.returncode} {up.stderr.strip()[-300:]}")
    try:
        clean = None
        if up.returncode == 0:
            for label in ("stack night 1 (new letters)", "stack night 2 (nothing new)"):
                wall, _, done = timed([*stack, "night"], env)
                split(label, wall, done)
                clean = wall
        if up.returncode == 0 and kill:
            out: dict = {}
            stop = threading.Event()
            killer = threading.Thread(target=_kill_worker_during, args=(root, env, "dbt", out, stop),
                                      daemon=True)
            killer.start()
            wall, _, done = timed([*stack, "night"], env)
            stop.set()
            split("stack night 3 (nothing new, the worker killed -9 in dbt)", wall, done)
            if not out:
                print("   the worker was never killed (dbt not seen running)")
            else:
                tries = _tries(out["api"], out["run_id"], "dbt")
                first, last = tries[0], tries[-1]
                at = datetime.fromisoformat
                print(f"   killed worker: night {wall:.1f}s against {clean:.1f}s clean: "
                      f"costs {wall - clean:+.1f}s ({len(tries)} tries of dbt, "
                      f"ended {last['state']})")
                if first.get("end_date") and last.get("start_date") and len(tries) > 1:
                    print(f"      kill -> try 1 failed (heartbeat timeout):  "
                          f"{(at(first['end_date']) - out['killed']).total_seconds():6.1f}s")
                    print(f"      failed -> try {len(tries)} started (retry delay): "
                          f"{(at(last['start_date']) - at(first['end_date'])).total_seconds():6.1f}s")
                    print(f"      the retry ran:                           {last.get('duration') or 0:6.1f}s")
    finally:
        wall, _, down = timed([*stack, "down"], env)
        print(f"\n== stack down: {wall:.1f}s, exit {down.returncode}")


def bench_run(root: Path) -> None:
    env = base_env(root)
    for label in ("ofsted run 1 (new letters, cold AIRFLOW_HOME)", "ofsted run 2 (nothing new)"):
        wall, cpu, done = timed([str(ROOT / ".venv" / "bin" / "ofsted"), "run"], env)
        split(label, wall, done, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-stack", action="store_true")
    parser.add_argument("--skip-run", action="store_true")
    parser.add_argument("--kill", action="store_true", help="a third stack night with the worker killed -9")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ofsted-stack-bench-"))
    os.chmod(root, 0o755)  # the `postgres` OS user must reach the stack's cluster below it
    try:
        parse_cold(root)
        if not args.skip_stack:
            (root / "stack").mkdir()
            bench_stack(root / "stack", kill=args.kill)
        if not args.skip_run:
            (root / "run").mkdir()
            bench_run(root / "run")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
