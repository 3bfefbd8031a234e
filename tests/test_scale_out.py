"""The night across two workers and an object store, a worker killed mid-night, and a clean stop.

One module, in order:

1. a real local S3 (moto's server) and forty synthetic letters in eight batches (enough for both
   workers to take parse tasks); the reference: the same letters through `ofsted run` (the night
   in one process, one machine, no object store), run while night 2 waits out the killed
   worker's heartbeat timeout and retry delay;
2. the data host's stack (`stack up`: PostgreSQL, Redis, Airflow, its worker on the default and
   warehouse queues), with the heartbeat timeout shortened from the environment (`HEARTBEAT`,
   the operator's override of deploy/airflow.env), in a folder private to root, and a second
   worker (`stack worker --join`)
   from its own copy of the checkout, with its own AIRFLOW_HOME and an empty data directory,
   sharing nothing with the data host but the stack's services and the S3 bucket;
3. night 1: succeeds; parse tasks ran on both workers; every task that opens the data directory
   or a warehouse ran on the data host; the second worker's data directory holds no archive and
   no warehouse; the marts equal the reference's;
4. night 2, through a proxy in front of the api-server that answers HTTP 500 to the trigger
   (after passing it on) and to two later calls, with the data host's Celery worker killed -9
   while a dbt task runs: the night still succeeds, with one run, and the marts are unchanged;
5. the scheduler and the worker killed -9 (the api-server's launcher too), then `down` on both
   machines: no process either stack started is left.

Needs Debian's `postgresql` and `redis-server` (.ci/run installs them) and the dev extras (moto).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
from _s3_support import MotoServer
from _stack_support import processes, still_running
from airflow.utils.net import getfqdn

from ingest.settings import PROJECT_ROOT, Settings, get_settings
from orchestration import launch
from orchestration.night import night_steps
from orchestration.runner import DAG_ID
from orchestration.stack import SHARED_ENV, Api, read_env_file

INSTALLED = Path("/usr/bin/redis-server").exists() and any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.stack,  # CI: OFSTED_REQUIRE=stack fails it rather than skip it
    pytest.mark.timeout(3600),  # the module's stack, two workers and three nights count against its 1st test
    pytest.mark.skipif(not INSTALLED, reason="needs Debian's postgresql and redis-server "
                                             "(apt-get install postgresql redis-server)"),
]
LETTERS = 40
BATCH_SIZE = "5"  # 8 parse tasks: enough for both workers (two task slots each) to take some
# the kill in night 2 costs this timeout (production: 60 s, deploy/airflow.env) plus the retry delay
HEARTBEAT = {"AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15"}
DATA_HOST = getfqdn()  # what Airflow records as a task's hostname on the data host (not socket.getfqdn)
SECOND = "second-worker"
# the tasks that open the data directory or a warehouse: the night's definition says which
DATA_DIR_TASKS = {step.task_id for step in night_steps(get_settings()) if step.data_dir}


def run(cmd: list[str], env: dict[str, str], cwd: Path = PROJECT_ROOT, timeout: float = 1800):
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def stack(env: dict[str, str], *args: str, cwd: Path = PROJECT_ROOT, timeout: float = 1800):
    return run([sys.executable, "-m", "orchestration.stack", *args], env, cwd, timeout)


def marts(path: Path) -> dict[str, list[tuple]]:
    """Every mart, less the columns that say when a run happened (`*_at`)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [t for (t,) in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'marts' order by 1").fetchall()]
        out = {}
        for t in tables:
            cols = [c for (c,) in con.execute("select column_name from information_schema.columns where "
                                              "table_schema = 'marts' and table_name = ? order by "
                                              "ordinal_position", [t]).fetchall() if not c.endswith("_at")]
            out[t] = con.execute(f"select {', '.join(cols)} from marts.{t} order by all").fetchall()
        return out
    finally:
        con.close()


def task_instances(api: Api, run_id: str) -> list[dict]:
    quoted = urllib.request.quote(run_id, safe="")
    return api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances?limit=1000")["task_instances"]


def run_ids(api: Api) -> list[str]:
    return [r["dag_run_id"] for r in api.get(f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]]


def program_pid(stack_root: Path, env: dict[str, str], name: str) -> tuple[int, int]:
    """(the launcher's pid, the program's pid) of one supervisord program."""
    conf = stack_root / "supervisord.conf"
    out = run([str(Path(sys.executable).parent / "supervisorctl"), "-c", str(conf), "pid", name], env).stdout
    launcher = int(out.strip())
    return launcher, launch.children(launcher)[0]


def restarted(stack_root: Path, env: dict[str, str], name: str, old_launcher: int, timeout: float = 180):
    """Wait until supervisord has restarted `name` (RUNNING, `startsecs` passed, another launcher)."""
    ctl = [str(Path(sys.executable).parent / "supervisorctl"), "-c", str(stack_root / "supervisord.conf")]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = run([*ctl, "status", name], env).stdout
        if " RUNNING " in out and f"pid {old_launcher}," not in out:
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} not restarted after {timeout:.0f}s: {out}")


def environ_of(pid: int) -> dict[str, str]:
    raw = (Path("/proc") / str(pid) / "environ").read_bytes()
    return dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)


class FlakyProxy:
    """An HTTP proxy in front of the api-server that answers 500 to the first trigger of a run
    (after passing it on: the run exists, the answer is lost) and to the GETs numbered in
    `fail_gets` (without passing them on)."""

    def __init__(self, target: str, fail_gets: tuple[int, ...] = (4, 9)) -> None:
        self.target, self.fail_gets = target.rstrip("/"), set(fail_gets)
        self.gets = 0
        self.failed: list[str] = []
        self.triggered_lost = False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> tuple[int, bytes, str]:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                req = urllib.request.Request(proxy.target + self.path, data=body, method=self.command)
                for key in ("Content-Type", "Authorization"):
                    if self.headers.get(key):
                        req.add_header(key, self.headers[key])
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        return resp.status, resp.read(), resp.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as exc:
                    return exc.code, exc.read(), "application/json"

            def _answer(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
                proxy.gets += 1
                if proxy.gets in proxy.fail_gets:
                    proxy.failed.append(f"GET {self.path}")
                    return self._answer(500, b'{"detail": "injected"}')
                self._answer(*self._forward())

            def do_POST(self) -> None:  # noqa: N802
                status, body, ctype = self._forward()
                if self.path.endswith("/dagRuns") and not proxy.triggered_lost:
                    proxy.triggered_lost = True
                    proxy.failed.append(f"POST {self.path} (run created, answer lost)")
                    return self._answer(500, b'{"detail": "injected after the run was created"}')
                self._answer(status, body, ctype)

            def do_PATCH(self) -> None:  # noqa: N802
                self._answer(*self._forward())

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _checkout_copy(dest: Path) -> None:
    """The project as another machine would have it: the tracked files and the dbt manifest."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in [f for f in files if f] + ["dbt_project/target/manifest.json",
                                           "dbt_project/target/partial_parse.msgpack"]:
        src = PROJECT_ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _kill_during(api: Api, run_id: str, task: str, pid_of, done: threading.Event, out: dict) -> None:
    """Kill -9 the worker (`pid_of()`) once `task` of `run_id` is running (before `done`)."""
    while not done.is_set():
        try:
            tis = task_instances(api, run_id) if run_id in run_ids(api) else []
        except Exception:  # the proxy's injected errors are for the night command, not for us
            tis = []
        if any(ti["task_id"] == task and ti["state"] == "running" for ti in tis):
            time.sleep(3)  # well into the task
            pid = pid_of()
            os.kill(pid, signal.SIGKILL)
            out["killed_at"] = time.monotonic()
            out["pid"] = pid
            return
        time.sleep(1)


@pytest.fixture(scope="module")
def scale_out():
    root = Path(tempfile.mkdtemp(prefix="ofsted-scale-"))  # 0700: PostgreSQL must live elsewhere when root
    s3 = MotoServer()
    ns: dict = {"root": root}
    data_env = worker_env = None
    try:
        from devtools.synthetic import write_corpus

        inbox = root / "inbox"
        write_corpus(inbox, LETTERS, seed=41, pdf_share=0.1)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OFSTED_", "AWS_"))}
        common = {**base, "OFSTED_INBOX_DIR": str(inbox), "OFSTED_BATCH_SIZE": BATCH_SIZE}

        store = {**s3.env, "OFSTED_BATCH_STORE": s3.url("ofsted")}
        data_env = {**common, **store, **HEARTBEAT, "OFSTED_DATA_DIR": str(root / "data")}
        settings = Settings.from_env(data_env)
        ns["settings"] = settings
        ns["up"] = stack(data_env, "up")
        assert ns["up"].returncode == 0, ns["up"].stdout + ns["up"].stderr
        stack_root = settings.data_dir / "stack"
        ns["pgdata"] = read_env_file(stack_root / "stack.env").get("STACK_PGDATA")
        ns["scheduler_env"] = environ_of(program_pid(stack_root, data_env, "scheduler")[1])

        copy = root / "machine2" / "checkout"
        _checkout_copy(copy)
        joined = root / "machine2" / "stack.env"  # as an operator would copy it over, mode 0600
        shutil.copy2(stack_root / "stack.env", joined)
        worker_env = {**base, **store, "OFSTED_DATA_DIR": str(root / "machine2" / "data"),
                      "OFSTED_BATCH_SIZE": BATCH_SIZE, "PYTHONPATH": str(copy)}
        ns["worker"] = stack(worker_env, "worker", "--join", str(joined), "--name", SECOND, cwd=copy)
        assert ns["worker"].returncode == 0, ns["worker"].stdout + ns["worker"].stderr

        gen = read_env_file(stack_root / "stack.env")
        api = Api(gen)
        ns["night1"] = stack(data_env, "night")
        assert ns["night1"].returncode == 0, ns["night1"].stdout + ns["night1"].stderr[-3000:]
        first = run_ids(api)[0]
        ns["tis1"] = task_instances(api, first)
        ns["marts1"] = marts(settings.published_warehouse)
        ns["machine2"] = sorted(str(p.relative_to(root / "machine2" / "data"))
                                for p in (root / "machine2" / "data").rglob("*"))
        ns["store_after_night1"] = s3.fs().find(f"{s3.bucket}/ofsted")

        # night 2: a flaky api-server in front, and the data host's worker killed -9 mid-task
        proxy = FlakyProxy(f"http://127.0.0.1:{gen['STACK_API_PORT']}")
        runs_before = run_ids(api)
        night = subprocess.Popen([sys.executable, "-m", "orchestration.stack", "night", "--api", proxy.url],
                                 env=data_env, cwd=PROJECT_ROOT, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        done, killed = threading.Event(), {}
        t0 = time.monotonic()
        while len(run_ids(api)) == len(runs_before) and night.poll() is None:
            time.sleep(1)
        second = next(r for r in run_ids(api) if r not in runs_before)
        worker_pid = lambda: program_pid(stack_root, data_env, "celery-worker")[1]  # noqa: E731
        killer = threading.Thread(target=_kill_during, daemon=True,
                                  args=(api, second, "dbt", worker_pid, done, killed))
        killer.start()
        while not killed and night.poll() is None:
            time.sleep(0.5)
        # the reference (one process, one machine, no object store), while the stack waits out the
        # killed worker's heartbeat timeout and the retry delay
        ref_env = {**common, "OFSTED_DATA_DIR": str(root / "reference"),
                   "AIRFLOW_HOME": str(root / "reference-airflow")}
        ref_log = root / "reference.log"
        with open(ref_log, "w") as log:
            ref = subprocess.Popen([str(Path(sys.executable).parent / "ofsted"), "run"], env=ref_env,
                                   cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        out, err = night.communicate(timeout=3000)
        done.set()
        proxy.close()
        ref.wait(timeout=1800)
        assert ref.returncode == 0, ref_log.read_text()[-6000:]
        ns["reference"] = marts(Settings.from_env(ref_env).published_warehouse)
        ns["night2"] = subprocess.CompletedProcess(night.args, night.returncode, out, err)
        ns["night2_s"] = time.monotonic() - t0
        ns["killed"] = killed
        ns["proxy_failed"] = proxy.failed
        ns["runs_added"] = [r for r in run_ids(api) if r not in runs_before]
        ns["tis2"] = task_instances(api, second)
        ns["marts2"] = marts(settings.published_warehouse)

        # kill -9 the scheduler and the worker (and the api-server's launcher), then `down`
        worker_root = Path(worker_env["OFSTED_DATA_DIR"]) / "stack"
        seen = processes(stack_root) | processes(worker_root)
        killed_programs = []
        for root_, env_, program, which in ((stack_root, data_env, "scheduler", 1),
                                            (stack_root, data_env, "celery-worker", 1),
                                            (stack_root, data_env, "api-server", 0),
                                            (worker_root, worker_env, "celery-worker", 1)):
            pids = program_pid(root_, env_, program)
            os.kill(pids[which], signal.SIGKILL)
            killed_programs.append((root_, env_, program, pids[0]))
        # supervisord restarts them; their new launchers clear what the old ones left
        for root_, env_, program, old_launcher in killed_programs:
            restarted(root_, env_, program, old_launcher)
        ns["seen"] = seen | processes(stack_root) | processes(worker_root)
        with ThreadPoolExecutor(max_workers=2) as both:  # two machines: each stops its own
            downs = both.submit(stack, worker_env, "down", cwd=copy), both.submit(stack, data_env, "down")
            ns["down_worker"], ns["down"] = downs[0].result(), downs[1].result()
        ns["left"] = still_running(ns["seen"]) + launch.leftovers(stack_root) + launch.leftovers(worker_root)
        yield ns
    finally:
        if worker_env and "down_worker" not in ns:
            stack(worker_env, "down", cwd=root / "machine2" / "checkout")
        if data_env and "down" not in ns:
            stack(data_env, "down")
        s3.close()
        env_file = root / "data" / "stack" / "stack.env"  # recorded even when `up` failed half-way
        pgdata = ns.get("pgdata") or (env_file.exists() and read_env_file(env_file).get("STACK_PGDATA"))
        if pgdata and not Path(pgdata).is_relative_to(root):  # the cluster under ~postgres
            shutil.rmtree(Path(pgdata).parent, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def _name(ti: dict) -> str:
    return ti["task_id"] if ti.get("map_index", -1) in (None, -1) else f"{ti['task_id']}[{ti['map_index']}]"


def test_a_night_across_two_workers_and_s3_succeeds_with_the_one_worker_marts(scale_out):
    assert "SUCCESS" in scale_out["night1"].stdout.splitlines()[-1]
    assert scale_out["marts1"] == scale_out["reference"]
    assert len(scale_out["marts1"]["fct_inspections"]) >= LETTERS * 0.9  # most letters made it


def test_parse_tasks_ran_on_both_workers(scale_out):
    parse = [ti for ti in scale_out["tis1"] if ti["task_id"] == "parse"]
    assert len(parse) == LETTERS // int(BATCH_SIZE)
    hosts = {ti["hostname"] for ti in parse}
    assert hosts == {DATA_HOST, SECOND}, {_name(ti): ti["hostname"] for ti in parse}


def test_every_task_that_opens_the_data_dir_ran_on_the_data_host(scale_out):
    for tis in (scale_out["tis1"], scale_out["tis2"]):
        data_tasks = [ti for ti in tis if ti["task_id"] in DATA_DIR_TASKS and ti["state"] == "success"]
        assert {ti["task_id"] for ti in data_tasks} == DATA_DIR_TASKS
        wrong = {_name(ti): ti["hostname"] for ti in data_tasks if ti["hostname"] != DATA_HOST}
        assert not wrong, wrong
        assert {ti["queue"] for ti in data_tasks} == {"warehouse"}
    # the second machine never held the night's data: no archive, no warehouse, no runs
    assert not [p for p in scale_out["machine2"] if p.split("/")[0] in ("archive", "warehouse", "runs")], \
        scale_out["machine2"]


def test_a_successful_night_leaves_nothing_in_the_store(scale_out):
    assert scale_out["store_after_night1"] == []


def test_the_stack_runs_with_a_shared_setting_overridden_from_the_environment(scale_out):
    """The kill below waits out this timeout: the operator's override reached the scheduler."""
    for key, value in HEARTBEAT.items():
        assert scale_out["scheduler_env"][key] == value
        assert read_env_file(SHARED_ENV)[key] != value  # production's value stays in the file
        assert key in scale_out["up"].stdout  # `up` names what the environment overrode


def test_a_worker_killed_mid_task_and_a_flaky_api_still_end_in_one_successful_night(scale_out):
    night2 = scale_out["night2"]
    assert night2.returncode == 0, night2.stdout + night2.stderr[-3000:]
    assert "SUCCESS" in night2.stdout.splitlines()[-1]
    assert scale_out["killed"], "the worker was never killed (dbt never seen running)"
    staging = [ti for ti in scale_out["tis2"] if ti["task_id"] == "dbt"]
    assert staging[0]["state"] == "success" and staging[0]["try_number"] >= 2  # it was retried
    assert len(scale_out["runs_added"]) == 1  # the trigger whose answer was lost made one run
    assert any("POST" in f for f in scale_out["proxy_failed"]) and len(scale_out["proxy_failed"]) >= 2
    assert "transient API error(s) retried" in night2.stderr
    assert scale_out["marts2"] == scale_out["marts1"]


def test_after_kill_9_of_scheduler_and_workers_down_leaves_no_process(scale_out):
    assert scale_out["down"].returncode == 0, scale_out["down"].stderr
    assert scale_out["down_worker"].returncode == 0, scale_out["down_worker"].stderr
    assert len(scale_out["seen"]) > 20
    assert scale_out["left"] == []


def test_postgres_runs_from_a_folder_it_can_reach_when_the_data_dir_is_private(scale_out):
    root = scale_out["root"]
    if os.geteuid() == 0:  # root's data dir under a 0700 folder: the cluster lives under ~postgres
        assert os.stat(root).st_mode & 0o777 == 0o700
        assert not Path(scale_out["pgdata"]).is_relative_to(root), scale_out["pgdata"]
    else:
        assert Path(scale_out["pgdata"]).is_relative_to(root)
