"""The night under the production-shaped local stack (`make up / night / down`), end to end.

One stack in a temporary data directory (its own PostgreSQL cluster, Redis, api-server,
scheduler, dag-processor, triggerer and Celery worker): two nights on the sample letters, then
a night with a planted failing dbt test, then the stack is stopped and nothing it started is
left running. The temporary folder is private (0700): run as root, `up` must put the cluster
where the `postgres` OS user can reach it. Needs Debian's `postgresql` and `redis-server`
(.ci/run installs them). tests/test_scale_out.py has the second worker, S3 and the kills.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest
from _stack_support import processes, still_running

from ingest.settings import PROJECT_ROOT, Settings
from orchestration.stack import read_env_file

INSTALLED = Path("/usr/bin/redis-server").exists() and any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.stack,  # CI: OFSTED_REQUIRE=stack fails it rather than skip it
    pytest.mark.timeout(2400),  # the module's stack and its three nights count against its first test
    pytest.mark.skipif(not INSTALLED, reason="needs Debian's postgresql and redis-server "
                                             "(apt-get install postgresql redis-server)"),
]
PLANTED = "assert_planted_by_the_stack_test"
SNAPSHOT = ("marts.fct_inspections", "marts.fct_findings", "marts.dim_authorities",
            "marts.bridge_findings_themes")


def stack(env: dict[str, str], command: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestration.stack", command], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"select * from {t} order by all").fetchall() for t in SNAPSHOT}
    finally:
        con.close()


def listening(pids: set[int]) -> list[str]:
    """host:port of every TCP socket in LISTEN state held by one of `pids`."""
    inodes = set()
    for pid in pids:
        try:
            for fd in (Path("/proc") / str(pid) / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    out = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:
                addr, port = cols[1].split(":")
                host = ".".join(str(b) for b in reversed(bytes.fromhex(addr))) if table == "tcp" else addr
                out.append(f"{host}:{int(port, 16)}")
    return out


@pytest.fixture(scope="module")
def nights():
    root = Path(tempfile.mkdtemp(prefix="ofsted-stack-"))  # 0700, like a checkout under root's home
    project = root / "dbt_project"  # a copy, so the test can plant a failing dbt test in it
    shutil.copytree(PROJECT_ROOT / "dbt_project", project,
                    ignore=shutil.ignore_patterns("logs", "dbt_packages"))
    os.utime(project / "target" / "manifest.json")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OFSTED_"))}
    env = {**base, "OFSTED_DATA_DIR": str(root / "data"), "OFSTED_INBOX_DIR": str(PROJECT_ROOT / "data" /
           "sample_letters"), "OFSTED_DBT_PROJECT_DIR": str(project), "OFSTED_DBT_PROFILES_DIR": str(project)}
    settings = Settings.from_env(env)
    ns = {"settings": settings, "root": root}
    try:
        ns["up"] = stack(env, "up")
        assert ns["up"].returncode == 0, ns["up"].stdout + ns["up"].stderr
        ns["pgdata"] = read_env_file(settings.data_dir / "stack" / "stack.env")["STACK_PGDATA"]
        ns["up_again"] = stack(env, "up")
        ns["first"] = stack(env, "night")
        assert ns["first"].returncode == 0, ns["first"].stdout + ns["first"].stderr[-3000:]
        ns["snap1"] = snapshot(settings.published_warehouse)
        ns["second"] = stack(env, "night")
        ns["snap2"] = snapshot(settings.published_warehouse)

        planted = project / "tests" / f"{PLANTED}.sql"
        planted.write_text("-- planted by tests/test_stack.py: fails on every inspection\n"
                           "select inspection_key from {{ ref('fct_inspections') }}\n")
        # dated before the manifest until `dbt parse` below rewrites it, so the dag-processor never
        # sees a stale manifest meanwhile (it would rightly refuse the DAG)
        old = (project / "target" / "manifest.json").stat().st_mtime - 60
        os.utime(planted, (old, old))
        dbt = str(Path(sys.executable).parent / "dbt")
        parsed = subprocess.run([dbt, "parse", "--quiet", "--profiles-dir", ".", "--target-path", "target"],
                                cwd=project, capture_output=True, text=True, timeout=300,
                                env={**env, "OFSTED_WORK_WAREHOUSE": str(settings.work_warehouse)})
        assert parsed.returncode == 0, parsed.stdout + parsed.stderr
        ns["third"] = stack(env, "night")
        ns["snap3"] = snapshot(settings.published_warehouse)
        lines = settings.alert_log.read_text().splitlines() if settings.alert_log.exists() else []
        ns["alerts"] = [json.loads(line) for line in lines if line.strip()]
        ns["secrets"] = [v for k, v in (line.split("=", 1) for line in
                         (settings.data_dir / "stack" / "stack.env").read_text().splitlines())
                         if "PASSWORD" in k or "SECRET" in k or "FERNET" in k]
        seen = processes(settings.data_dir / "stack")
        ns["listening"] = listening({pid for pid, _ in seen})
        ns["down"] = stack(env, "down")
        ns["left"] = still_running(seen)
        ns["status_after"] = stack(env, "status")
        yield ns
    finally:
        if "down" not in ns:
            stack(env, "down")
        env_file = settings.data_dir / "stack" / "stack.env"  # recorded even when `up` failed half-way
        pgdata = ns.get("pgdata") or (env_file.exists() and read_env_file(env_file).get("STACK_PGDATA"))
        if pgdata and not Path(pgdata).is_relative_to(root):  # the cluster under ~postgres
            shutil.rmtree(Path(pgdata).parent, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def test_first_night_publishes_the_sample_letters_and_prints_a_line_per_task(nights):
    out = nights["first"].stdout
    for task in ("fetch", "parse[0]", "load_raw", "validate_raw", "dbt",
                 "validate_marts", "dbt_docs", "publish", "report"):
        assert f"  {task}" in out, task
    assert "SUCCESS" in out.splitlines()[-1]
    assert len(nights["snap1"]["marts.fct_inspections"]) == 3
    assert len(nights["snap1"]["marts.fct_findings"]) == 50


def test_a_private_data_dir_puts_the_cluster_where_postgres_can_reach_it(nights):
    assert os.stat(nights["root"]).st_mode & 0o777 == 0o700
    if os.geteuid() == 0:
        assert not Path(nights["pgdata"]).is_relative_to(nights["root"]), nights["pgdata"]
        assert Path(nights["pgdata"]).owner() == "postgres"
    else:
        assert Path(nights["pgdata"]).is_relative_to(nights["root"])


def test_up_twice_is_harmless(nights):
    assert nights["up_again"].returncode == 0
    assert "already running" in nights["up_again"].stdout


def test_second_night_succeeds_and_changes_nothing(nights):
    assert nights["second"].returncode == 0, nights["second"].stdout + nights["second"].stderr[-2000:]
    assert nights["snap2"] == nights["snap1"]


def test_a_failing_dbt_test_turns_the_night_red_names_the_test_and_alerts(nights):
    third = nights["third"]
    assert third.returncode == 1, third.stdout + third.stderr
    assert "FAILED" in third.stdout.splitlines()[-1]
    failed = [ln for ln in third.stderr.splitlines() if ln.startswith("night: failed task")]
    assert failed and "failed task dbt" in failed[0] and PLANTED in failed[0], third.stderr
    assert "publish" not in {ln.split()[-1] for ln in third.stdout.splitlines() if ln.startswith("  ok")}
    assert nights["snap3"] == nights["snap1"]  # the published warehouse was left as it was
    alerts = [a for a in nights["alerts"] if '"dbt"' in json.dumps(a)]
    assert alerts and PLANTED in json.dumps(alerts[-1]), nights["alerts"][-3:]


def test_no_secret_reaches_a_log_and_the_stack_listens_on_localhost_only(nights):
    logs = nights["settings"].data_dir / "stack" / "logs"
    text = "".join(p.read_text(errors="replace") for p in logs.rglob("*.log"))
    text += nights["first"].stdout + nights["first"].stderr + nights["up"].stdout + nights["up"].stderr
    assert nights["secrets"] and text
    for secret in nights["secrets"]:
        assert secret not in text
    assert len(nights["listening"]) >= 4, nights["listening"]  # postgres, redis, api-server, health check
    assert all(s.startswith("127.0.0.1:") for s in nights["listening"]), nights["listening"]


def test_down_stops_everything_it_started(nights):
    assert nights["down"].returncode == 0, nights["down"].stderr
    assert nights["left"] == [], nights["left"]
    assert "not running" in nights["status_after"].stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another OS user")
def test_up_refuses_before_starting_anything_when_postgres_can_reach_nowhere(tmp_path, monkeypatch):
    """Root, a data dir under a 0700 folder, and a `postgres` user whose home it cannot enter
    either: `up` stops with the exact fix, tested as the `postgres` user, and starts nothing."""
    import pwd

    from orchestration import stack as stack_module

    private = tmp_path / "private"
    (private / "home").mkdir(parents=True)
    os.chmod(private, 0o700)
    real = pwd.getpwnam("postgres")
    fake = pwd.struct_passwd((*real[:5], str(private / "home"), real[6]))
    monkeypatch.setattr(stack_module.pwd, "getpwnam", lambda name: fake if name == "postgres" else real)
    settings = Settings.from_env({"OFSTED_DATA_DIR": str(private / "data")})
    with pytest.raises(stack_module.StackError) as err:
        stack_module.up(settings, echo=lambda _line: None)
    message = str(err.value)
    named = re.search(r"cannot enter (\S+) .*run `chmod o\+x (\S+)`", message)
    assert named and named.group(1) == named.group(2), message
    blocked = Path(named.group(1))
    assert blocked == private or blocked in private.parents, message  # the first folder in the way
    as_postgres = subprocess.run(["test", "-x", str(blocked)], user="postgres", cwd="/")
    assert as_postgres.returncode != 0  # and the `postgres` user really cannot enter it
    assert not (private / "data" / "stack" / "supervisord.pid").exists()
    assert not (private / "data" / "stack" / "postgres").exists()


def test_a_shared_setting_set_in_the_environment_wins_over_the_file_and_nothing_else_gets_in(tmp_path):
    """deploy/airflow.env's keys can be overridden from the environment of `up` (the kill test
    shortens the heartbeat timeout that way); other variables and the per-host values cannot."""
    from orchestration.stack import SHARED_ENV, Layout, generate_secrets, overridden, stack_env

    file = read_env_file(SHARED_ENV)
    key = "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"
    gen = generate_secrets()
    environ = {key: "15", "AIRFLOW__CORE__PARALLELISM": file["AIRFLOW__CORE__PARALLELISM"],
               "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # not in the file: stays out
               "AIRFLOW__API__PORT": "1", "AIRFLOW__CORE__FERNET_KEY": "theirs", "PATH": "/usr/bin"}
    settings = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)})
    env = stack_env(settings, Layout(tmp_path / "stack"), gen, environ)
    assert env[key] == "15" and file[key] == "60"
    assert overridden(environ) == [key]  # an equal value is no override; `up` names only this one
    assert "AIRFLOW__CORE__TEST_CONNECTION" not in env
    assert env["AIRFLOW__API__PORT"] == gen["STACK_API_PORT"]  # the stack's own values stay its own
    assert env["AIRFLOW__CORE__FERNET_KEY"] == gen["AIRFLOW__CORE__FERNET_KEY"]
    assert env["PATH"] == "/usr/bin"
    plain = stack_env(settings, Layout(tmp_path / "stack"), gen, {})
    assert {k: plain[k] for k in file} == file and overridden({}) == []
