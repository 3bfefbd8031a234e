"""The local production-shaped stack: `make up / night / status / down`.

PostgreSQL (Debian's `postgresql`, its own cluster under <data dir>/stack/postgres, run as the
`postgres` OS user when we are root, on 127.0.0.1 on a free port, password-protected), Redis
(Debian's `redis-server`, 127.0.0.1, with a password) and Airflow's api-server, scheduler,
dag-processor, triggerer and one Celery worker from the project's .venv, all supervised by
supervisord. Every process gets one configuration: deploy/airflow.env (shared with
docker-compose.yml) plus <data dir>/stack/stack.env, generated once (free ports, passwords,
the JWT secret, Fernet key and API secret key every component must share), mode 0600, never
in git, never printed.

`up` is idempotent (a running stack is left as it is) and never starts a night: the DAG stays
paused. `night` triggers a run through the REST API; the first one claims the interval that
unpausing would otherwise start at once, then unpauses the DAG so the 02:00 schedule runs
from then on. `down` stops supervisord, which stops everything it started.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ingest.settings import PROJECT_ROOT, Settings, get_settings
from orchestration.logs import last_error
from orchestration.runner import DAG_ID, POOL, POOL_DESCRIPTION

DEPLOY = PROJECT_ROOT / "deploy"
SHARED_ENV = DEPLOY / "airflow.env"
VENV_BIN = Path(sys.executable).parent
ADMIN = "admin"
TERMINAL = {"success", "failed", "skipped", "upstream_failed", "removed"}
PASSED_THROUGH = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"}  # none else of the caller's env
AIRFLOW_PROGRAMS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery-worker")


class StackError(RuntimeError):
    """A one-line reason the stack cannot do what was asked."""


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class Layout:
    """Where the stack keeps its state: <data dir>/stack/..."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "stack.env"

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres"

    @property
    def redis_conf(self) -> Path:
        return self.root / "redis" / "redis.conf"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def supervisor_conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def pidfile(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def passwords(self) -> Path:
        return self.root / "airflow" / "simple_auth_manager_passwords.json"


def layout(settings: Settings) -> Layout:
    return Layout(settings.data_dir / "stack")


# --- configuration -------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def generate_secrets() -> dict[str, str]:
    """Ports and secrets of one local stack (kept in stack.env, reused by every later `up`)."""
    return {
        "STACK_POSTGRES_PORT": str(_free_port()),
        "STACK_REDIS_PORT": str(_free_port()),
        "STACK_API_PORT": str(_free_port()),
        "STACK_HEALTH_PORT": str(_free_port()),
        "STACK_LOG_PORT": str(_free_port()),
        "STACK_TRIGGER_LOG_PORT": str(_free_port()),
        "STACK_POSTGRES_SUPERUSER_PASSWORD": secrets.token_hex(24),
        "STACK_POSTGRES_PASSWORD": secrets.token_hex(24),
        "STACK_REDIS_PASSWORD": secrets.token_hex(24),
        "STACK_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(48),
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }


def stack_env(settings: Settings, lay: Layout, gen: dict[str, str]) -> dict[str, str]:
    """The whole environment of every stack process: shared file + this host's values."""
    pg = f"airflow:{gen['STACK_POSTGRES_PASSWORD']}@127.0.0.1:{gen['STACK_POSTGRES_PORT']}/airflow"
    api = f"http://127.0.0.1:{gen['STACK_API_PORT']}"
    env = {k: v for k, v in os.environ.items() if k in PASSED_THROUGH}
    env.update(read_env_file(SHARED_ENV))
    env.update(settings.to_env())
    env.update({
        "AIRFLOW_HOME": str(lay.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{pg}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:{gen['STACK_REDIS_PASSWORD']}@127.0.0.1:"
                                       f"{gen['STACK_REDIS_PORT']}/0",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__API__BASE_URL": f"{api}/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": gen["STACK_API_PORT"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(lay.passwords),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(lay.airflow_home / "logs"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": gen["STACK_LOG_PORT"],
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": gen["STACK_TRIGGER_LOG_PORT"],
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": gen["STACK_HEALTH_PORT"],
        "AIRFLOW__COSMOS__CACHE_DIR": str(lay.airflow_home / "cosmos"),
    })
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
        env[key] = gen[key]
    return env


def load_config(settings: Settings, create: bool = False) -> tuple[Layout, dict[str, str], dict[str, str]]:
    """(layout, generated values, full environment); generates stack.env on first use."""
    lay = layout(settings)
    if not lay.config.exists():
        if not create:
            raise StackError(f"no stack configured under {lay.root} (run `make up` first)")
        gen = generate_secrets()
        _write_private(lay.config, "".join(f"{k}={v}\n" for k, v in gen.items()))
    gen = read_env_file(lay.config)
    return lay, gen, stack_env(settings, lay, gen)


# --- PostgreSQL and Redis ------------------------------------------------------------------

def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise StackError("PostgreSQL not found under /usr/lib/postgresql: apt-get install postgresql")
    return versions[-1].parent


def _pg_user() -> str | None:
    """Run Postgres as `postgres` when we are root (initdb refuses root); else as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise StackError("running as root but there is no `postgres` OS user to run PostgreSQL as") from exc
    return "postgres"


def _chown(path: Path, user: str | None) -> None:
    if user:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def init_postgres(lay: Layout, gen: dict[str, str]) -> None:
    if (lay.pgdata / "PG_VERSION").exists():
        return
    user = _pg_user()
    if user and not os.access(lay.root, os.X_OK):
        raise StackError(f"{lay.root} is not reachable")
    lay.pgdata.mkdir(parents=True, exist_ok=True)
    os.chmod(lay.pgdata, 0o700)
    _chown(lay.pgdata, user)
    pwfile = lay.root / ".pgpass-init"
    _write_private(pwfile, gen["STACK_POSTGRES_SUPERUSER_PASSWORD"] + "\n")
    _chown(pwfile, user)
    try:
        proc = subprocess.run(
            [str(_pg_bin() / "initdb"), "-D", str(lay.pgdata), "-U", "postgres", "--pwfile", str(pwfile),
             "--auth", "scram-sha-256", "--encoding", "UTF8", "--locale", "C.UTF-8"],
            user=user, capture_output=True, text=True, timeout=120)
    finally:
        pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        shutil.rmtree(lay.pgdata, ignore_errors=True)
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise StackError(f"initdb failed: {last} (can the `{user or 'current'}` user reach {lay.pgdata}?)")
    with open(lay.pgdata / "postgresql.conf", "a") as f:
        f.write("\n# ofsted-letters local stack\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {gen['STACK_POSTGRES_PORT']}\n"
                "unix_socket_directories = ''\n"
                "max_connections = 100\n"
                "shared_buffers = 64MB\n")


def write_redis_conf(lay: Layout, gen: dict[str, str]) -> None:
    _write_private(lay.redis_conf, (
        "bind 127.0.0.1\n"
        "protected-mode yes\n"
        f"port {gen['STACK_REDIS_PORT']}\n"
        f"requirepass {gen['STACK_REDIS_PASSWORD']}\n"
        f"dir {lay.redis_conf.parent}\n"
        "save \"\"\n"
        "appendonly no\n"
        "daemonize no\n"
        "loglevel warning\n"))


def _wait(what: str, probe, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except Exception as exc:  # the probe's failure is the reason to keep waiting
            last = exc
        time.sleep(0.5)
    why = f": {type(last).__name__}: {last}" if last else ""
    raise StackError(f"{what} not ready after {timeout:.0f}s{why}")


def ensure_airflow_database(gen: dict[str, str]) -> None:
    import psycopg2

    def connect():
        return psycopg2.connect(host="127.0.0.1", port=int(gen["STACK_POSTGRES_PORT"]), user="postgres",
                                password=gen["STACK_POSTGRES_SUPERUSER_PASSWORD"], dbname="postgres",
                                connect_timeout=3)

    _wait("PostgreSQL", lambda: connect().close() or True, 60)
    conn = connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_roles where rolname = 'airflow'")
            if cur.fetchone() is None:
                cur.execute("create role airflow login password %s", (gen["STACK_POSTGRES_PASSWORD"],))
            cur.execute("select 1 from pg_database where datname = 'airflow'")
            if cur.fetchone() is None:
                cur.execute("create database airflow owner airflow")
    finally:
        conn.close()


def _wait_redis(gen: dict[str, str]) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=int(gen["STACK_REDIS_PORT"]),
                         password=gen["STACK_REDIS_PASSWORD"], socket_timeout=2)
    _wait("Redis", client.ping, 30)


# --- supervisord ---------------------------------------------------------------------------

def supervisor_conf(lay: Layout) -> str:
    user = _pg_user()
    airflow = VENV_BIN / "airflow"
    common = ("autorestart=true\nstartsecs=3\nstopasgroup=true\nkillasgroup=true\nstopwaitsecs=30\n"
              "redirect_stderr=true\nstdout_logfile_maxbytes=20MB\nstdout_logfile_backups=2\n")
    programs = {
        "postgres": (f"{_pg_bin() / 'postgres'} -D {lay.pgdata}", 10, "stopsignal=INT\n"
                     + (f"user={user}\n" if user else "")),
        "redis": (f"/usr/bin/redis-server {lay.redis_conf}", 10, ""),
        "api-server": (f"{airflow} api-server", 30, "autostart=false\n"),
        "scheduler": (f"{airflow} scheduler --skip-serve-logs", 30, "autostart=false\n"),
        "dag-processor": (f"{airflow} dag-processor", 30, "autostart=false\n"),
        "triggerer": (f"{airflow} triggerer --skip-serve-logs", 30, "autostart=false\n"),
        # warm shutdown: a running task finishes before the worker stops
        # both queues: the night's data-directory steps run on the warehouse queue (orchestration/night.py)
        "celery-worker": (f"{airflow} celery worker --skip-serve-logs --queues "
                          f"default,{get_settings().warehouse_queue}", 40,
                          "autostart=false\nstopsignal=TERM\nstopwaitsecs=120\n"),
    }
    out = [
        "; generated by orchestration/stack.py: do not edit",
        "[unix_http_server]", f"file={lay.root / 'supervisor.sock'}", "chmod=0700", "",
        "[supervisord]", f"logfile={lay.logs / 'supervisord.log'}", f"pidfile={lay.pidfile}",
        f"childlogdir={lay.logs}", "logfile_maxbytes=10MB", f"directory={PROJECT_ROOT}",
        *(["user=root"] if os.geteuid() == 0 else []), "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{lay.root / 'supervisor.sock'}", "",
    ]
    for name, (command, priority, extra) in programs.items():
        out += [f"[program:{name}]", f"command={command}", f"priority={priority}",
                f"stdout_logfile={lay.logs / (name + '.log')}", common + extra]
    return "\n".join(out)


def _supervisord_pid(lay: Layout) -> int | None:
    try:
        pid = int(lay.pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def ctl(lay: Layout, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(lay.supervisor_conf), *args],
                          capture_output=True, text=True, timeout=180)
    if check and proc.returncode != 0:
        raise StackError(f"supervisorctl {' '.join(args)}: {(proc.stdout + proc.stderr).strip()}")
    return proc


def _airflow(env: dict[str, str], *args: str, timeout: float = 600) -> None:
    proc = subprocess.run([str(VENV_BIN / "airflow"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).strip().splitlines() if ln.strip()]
        raise StackError(f"airflow {' '.join(args)} failed: {lines[-1] if lines else proc.returncode}")


def _migrate(lay: Layout, env: dict[str, str]) -> None:
    import airflow

    marker = lay.airflow_home / ".ofsted-db-version"
    if marker.exists() and marker.read_text().strip() == airflow.__version__:
        return
    _airflow(env, "db", "migrate")
    _airflow(env, "pools", "set", POOL, "1", POOL_DESCRIPTION)
    marker.write_text(airflow.__version__ + "\n")


def up(settings: Settings, echo=print) -> dict[str, str]:
    t0 = time.monotonic()
    lay, gen, env = load_config(settings, create=True)
    if _supervisord_pid(lay):
        echo(f"stack: already running (supervisord pid {_supervisord_pid(lay)}); `make status` shows it")
        return gen
    for d in (lay.logs, lay.airflow_home):
        d.mkdir(parents=True, exist_ok=True)
    init_postgres(lay, gen)
    write_redis_conf(lay, gen)
    _write_private(lay.passwords, json.dumps({ADMIN: gen["STACK_ADMIN_PASSWORD"]}))
    lay.supervisor_conf.write_text(supervisor_conf(lay))
    proc = subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(lay.supervisor_conf)], env=env,
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise StackError(f"supervisord did not start: {(proc.stdout + proc.stderr).strip()}")
    try:
        ensure_airflow_database(gen)
        _wait_redis(gen)
        _migrate(lay, env)
        ctl(lay, "start", *AIRFLOW_PROGRAMS)
        api = f"http://127.0.0.1:{gen['STACK_API_PORT']}"
        _wait("api-server", lambda: urllib.request.urlopen(f"{api}/api/v2/version", timeout=3).status == 200,
              120)
    except BaseException:
        down(settings, echo=lambda _line: None)
        raise
    echo(f"stack: up in {time.monotonic() - t0:.1f}s; Airflow UI {api}/ (user {ADMIN}, password in "
         f"{lay.passwords}); logs in {lay.logs}")
    return gen


def down(settings: Settings, echo=print) -> None:
    lay = layout(settings)
    pid = _supervisord_pid(lay)
    if pid is None:
        echo("stack: not running")
        return
    ctl(lay, "shutdown", check=False)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and _supervisord_pid(lay):
        time.sleep(0.3)
    if _supervisord_pid(lay):
        raise StackError(f"supervisord (pid {pid}) still running after 180s")
    echo("stack: stopped")


def status(settings: Settings, echo=print) -> int:
    lay = layout(settings)
    if _supervisord_pid(lay) is None:
        echo("stack: not running")
        return 3
    proc = ctl(lay, "status", check=False)
    echo(proc.stdout.rstrip())
    return proc.returncode


# --- the REST API --------------------------------------------------------------------------

class Api:
    def __init__(self, gen: dict[str, str]):
        self.base = f"http://127.0.0.1:{gen['STACK_API_PORT']}"
        body = self._call("POST", "/auth/token", {"username": ADMIN, "password": gen["STACK_ADMIN_PASSWORD"]},
                          auth=False)
        self.token = body["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        for attempt in range(3):  # a busy api-server (one worker, 2 cores) may time out on a GET
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:300]
                raise StackError(f"{method} {path}: HTTP {exc.code} {detail}") from exc
            except (urllib.error.URLError, OSError) as exc:
                if attempt == 2 or method != "GET":  # never repeat a POST: it may have triggered a run
                    raise StackError(f"api-server at {self.base} unreachable ({exc}); "
                                     "is the stack up?") from exc
                time.sleep(2)
        raise AssertionError("unreachable")

    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def post(self, path: str, body: dict) -> dict:
        return self._call("POST", path, body)

    def patch(self, path: str, body: dict) -> dict:
        return self._call("PATCH", path, body)


def _wait_for_dag(api: Api, timeout: float = 120) -> dict:
    """The DAG as the dag-processor last parsed it; a one-line error when its file does not
    import now (e.g. a stale dbt manifest), even if an older parse is still registered."""
    deadline = time.monotonic() + timeout
    while True:
        errors = api.get("/api/v2/importErrors").get("import_errors", [])
        mine = [e for e in errors if DAG_ID in str(e.get("filename", ""))]
        if mine:
            last = [ln for ln in str(mine[0].get("stack_trace", "")).splitlines() if ln.strip()]
            raise StackError(f"{DAG_ID} does not import: {last[-1] if last else '?'}")
        try:
            return api.get(f"/api/v2/dags/{DAG_ID}")
        except StackError as exc:
            if "HTTP 404" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise StackError(f"{DAG_ID} not parsed by the dag-processor after {timeout:.0f}s")
        time.sleep(1)


def _ti_name(ti: dict) -> str:
    mi = ti.get("map_index", -1)
    return ti["task_id"] if mi in (None, -1) else f"{ti['task_id']}[{mi}]"


def _failure_reason(api: Api, run_id: str, ti: dict) -> str:
    """The last error a failed task logged (exception class and message), or its state."""
    mi = ti.get("map_index", -1)
    path = (f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run_id, safe='')}/taskInstances/"
            f"{ti['task_id']}/logs/{max(ti.get('try_number') or 1, 1)}?map_index={mi}")
    try:
        content = api.get(path).get("content", [])
        reason = last_error(content if isinstance(content, list) else [])
    except StackError as exc:
        reason = f"(its log is unreadable: {exc})"
    if not reason:  # it never ran: the scheduler's message ("state mismatch" etc.) is in the event log
        events = api.get(f"/api/v2/eventLogs?dag_id={DAG_ID}&run_id={urllib.request.quote(run_id, safe='')}"
                         f"&task_id={ti['task_id']}&order_by=-when&limit=20").get("event_logs", [])
        extras = [f"{e.get('event')}: {e.get('extra')}" for e in events if e.get("extra")]
        reason = extras[0] if extras else f"{ti.get('state')} without an error in its log or the event log"
    return reason.splitlines()[0][:300]


def night(settings: Settings, echo=print, timeout: float = 3600) -> int:
    t0 = time.monotonic()
    lay, gen, _env = load_config(settings)
    if _supervisord_pid(lay) is None:
        raise StackError("the stack is not running (run `make up` first)")
    api = Api(gen)
    dag = _wait_for_dag(api)
    logical_date = None
    pending = dag.get("next_dagrun_logical_date")
    if dag.get("is_paused") and pending and dt.datetime.fromisoformat(pending) <= dt.datetime.now(dt.UTC):
        logical_date = pending  # the interval unpausing would start at once: this run is it
    run = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": logical_date, "conf": {}})
    run_id = run["dag_run_id"]
    if dag.get("is_paused"):
        api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    echo(f"night: triggered {run_id} on {api.base}", flush=True)
    seen: set[str] = set()
    quoted = urllib.request.quote(run_id, safe="")
    deadline = time.monotonic() + timeout
    state = "queued"
    failed: list[dict] = []
    while time.monotonic() < deadline:
        state = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}")["state"]
        tis = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances?limit=1000")["task_instances"]
        for ti in sorted(tis, key=lambda t: t.get("end_date") or ""):
            name = _ti_name(ti)
            if ti.get("state") in TERMINAL and name not in seen:
                seen.add(name)
                took = f"{ti['duration']:6.1f}s" if ti.get("duration") is not None else "      -"
                mark = {"success": "ok  ", "skipped": "skip"}.get(ti["state"], "FAIL")
                extra = ""
                if ti["state"] == "failed":
                    failed.append(ti)
                    extra = f"  -- {_failure_reason(api, run_id, ti)}"
                echo(f"  {mark} {took}  {name}{extra}", flush=True)
        if state in ("success", "failed"):
            break
        time.sleep(1)
    echo(f"night: {run_id} {state.upper()} in {time.monotonic() - t0:.1f}s")
    if state != "success":
        for ti in failed:
            echo(f"night: failed task {_ti_name(ti)}: {_failure_reason(api, run_id, ti)}", file=sys.stderr)
        if state not in ("success", "failed"):
            echo(f"night: gave up following after {timeout:.0f}s (state {state})", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.stack",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "night"])
    args = parser.parse_args(argv)
    settings = get_settings()

    def echo(line: str, file=sys.stdout, flush: bool = True) -> None:
        print(line, file=file, flush=flush)

    try:
        if args.command == "up":
            up(settings, echo)
        elif args.command == "down":
            down(settings, echo)
        elif args.command == "status":
            return status(settings, echo)
        else:
            return night(settings, echo)
    except StackError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
