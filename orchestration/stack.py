"""The local production-shaped stack: `make up / night / status / down`, and `worker`.

PostgreSQL (Debian's `postgresql`, its own cluster under <data dir>/stack/postgres, or, when we
are root and the `postgres` OS user cannot reach the data directory, under that user's home;
run as `postgres` when we are root, on STACK_HOST on a free port, password-protected), Redis
(Debian's `redis-server`, with a password) and Airflow's api-server, scheduler, dag-processor,
triggerer and one Celery worker from the project's .venv, all supervised by supervisord, each
started through `orchestration.launch` (nothing a program started outlives it; `down` sweeps
what is left). Every process gets one configuration: deploy/airflow.env (shared with
docker-compose.yml) plus <data dir>/stack/stack.env, generated once (free ports, passwords,
the JWT secret, Fernet key and API secret key every component must share), mode 0600, never
in git, never printed. STACK_HOST in stack.env (127.0.0.1 unless changed) is the address the
services listen on and other machines reach them at.

Overrides (`shared_env`): a setting deploy/airflow.env holds, set in the environment of `up` (or
`worker`), wins over the file's value, as Airflow's AIRFLOW__X__Y beats airflow.cfg and compose's
`environment:` beats its `env_file`; `up` names what it overrode. Only the file's keys: nothing
else of the caller's environment reaches the stack, and what the stack sets per host (ports,
paths, secrets, connections) cannot be overridden.

Queues: this machine owns the data directory, so its worker serves the default queue and the
warehouse queue (`OFSTED_WAREHOUSE_QUEUE`: every task that opens the data directory or a
warehouse). `worker --join <the data host's stack.env>` starts an extra worker elsewhere, with
its own data directory and AIRFLOW_HOME, on the default queue only (parse: documents and
batches in the batch store, `OFSTED_BATCH_STORE`). `down` stops either.

`up` is idempotent (a running stack is left as it is) and never starts a night: the DAG stays
paused. `night` triggers a run through the REST API; the first one claims the interval that
unpausing would otherwise start at once, then unpauses the DAG so the 02:00 schedule runs
from then on. `down` stops supervisord, which stops everything it started.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ingest.settings import PROJECT_ROOT, Settings, get_settings
from orchestration import launch
from orchestration.logs import last_error
from orchestration.runner import DAG_ID, POOL, POOL_DESCRIPTION

DEPLOY = PROJECT_ROOT / "deploy"
SHARED_ENV = DEPLOY / "airflow.env"
VENV_BIN = Path(sys.executable).parent
ADMIN = "admin"
TERMINAL = {"success", "failed", "skipped", "upstream_failed", "removed"}
PASSED_THROUGH = {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"}  # none else of the caller's env
# the object store's endpoint and credentials (OFSTED_BATCH_STORE=s3://...), as AWS SDKs name them
PASSED_THROUGH_PREFIXES = ("AWS_",)
AIRFLOW_PROGRAMS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery-worker")
WORKER_PROGRAMS = ("celery-worker",)
DEFAULT_QUEUE_KEY = "AIRFLOW__OPERATORS__DEFAULT_QUEUE"
REDIS_SERVER = "/usr/bin/redis-server"


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
        "STACK_HOST": "127.0.0.1",
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


def _host(gen: dict[str, str]) -> str:
    return gen.get("STACK_HOST") or "127.0.0.1"


def _url_host(gen: dict[str, str]) -> str:
    host = _host(gen)
    return f"[{host}]" if ":" in host else host


def api_url(gen: dict[str, str]) -> str:
    return f"http://{_url_host(gen)}:{gen['STACK_API_PORT']}"


def shared_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """deploy/airflow.env, each of its keys overridden by the same name in `environ` (default:
    this process's environment). The one rule for an operator's override of a shared setting."""
    environ = os.environ if environ is None else environ
    shared = read_env_file(SHARED_ENV)
    return {key: environ.get(key, value) for key, value in shared.items()}


def overridden(environ: Mapping[str, str] | None = None) -> list[str]:
    """The keys of deploy/airflow.env whose value the environment changes (see `shared_env`)."""
    file = read_env_file(SHARED_ENV)
    return sorted(k for k, v in shared_env(environ).items() if v != file[k])


def stack_env(settings: Settings, lay: Layout, gen: dict[str, str],
              environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of every stack process: the shared settings (`shared_env`, from
    `environ`, default this process's environment) + this host's values."""
    environ = os.environ if environ is None else environ
    host = _url_host(gen)
    pg = f"airflow:{gen['STACK_POSTGRES_PASSWORD']}@{host}:{gen['STACK_POSTGRES_PORT']}/airflow"
    api = api_url(gen)
    env = {k: v for k, v in environ.items()
           if k in PASSED_THROUGH or k.startswith(PASSED_THROUGH_PREFIXES)}
    env.update(shared_env(environ))
    env.update(settings.to_env())
    env.update({
        "AIRFLOW_HOME": str(lay.airflow_home),
        "PYTHONPATH": str(PROJECT_ROOT),  # this checkout's code, whatever the venv has installed
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{pg}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:{gen['STACK_REDIS_PASSWORD']}@{host}:"
                                       f"{gen['STACK_REDIS_PORT']}/0",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__API__BASE_URL": f"{api}/",
        "AIRFLOW__API__HOST": _host(gen),
        "AIRFLOW__API__PORT": gen["STACK_API_PORT"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(lay.passwords),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(lay.airflow_home / "logs"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": gen["STACK_LOG_PORT"],
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": gen["STACK_TRIGGER_LOG_PORT"],
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": gen["STACK_HEALTH_PORT"],
    })
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
        env[key] = gen[key]
    if gen.get("STACK_WORKER_NAME"):  # an extra worker: its task instances carry its name
        env[launch.WORKER_NAME_ENV] = gen["STACK_WORKER_NAME"]
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "orchestration.launch.hostname"
    return env


def worker_queues(settings: Settings, role: str) -> list[str]:
    """The Celery queues this machine's worker serves: the data host serves the default queue
    and the warehouse queue; an extra worker (no data directory of the night) the default only."""
    default = shared_env()[DEFAULT_QUEUE_KEY]
    return [default] if role == "worker" else [default, settings.warehouse_queue]


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


def reaches(user: str | None, path: Path, write: bool = False) -> bool:
    """Whether `user` (None: ourselves) can enter `path` (and write in it): tested as that user."""
    flags = ["-x", str(path)] + (["-a", "-w", str(path)] if write else [])
    proc = subprocess.run(["test", "-d", str(path), "-a", *flags], user=user, capture_output=True,
                          timeout=30, cwd="/")
    return proc.returncode == 0


def _blocking_ancestor(user: str, path: Path) -> Path:
    """The first folder on the way to `path` that `user` cannot enter."""
    for folder in [*reversed(path.parents), path]:
        if folder.exists() and not reaches(user, folder):
            return folder
    return path


def pg_location(lay: Layout, gen: dict[str, str]) -> Path:
    """Where this stack's PostgreSQL cluster lives (recorded as STACK_PGDATA in stack.env on
    first use): under the stack folder when the user PostgreSQL runs as can reach it; else, as
    root, under that user's home (`~postgres/ofsted-stack/<id>/data`, e.g. for a checkout under a
    0700 folder). Refuses, before anything is started, with the fix when neither is possible."""
    if gen.get("STACK_PGDATA"):
        return Path(gen["STACK_PGDATA"])
    user = _pg_user()
    if user is None or reaches(user, lay.root):
        return lay.pgdata
    home = Path(pwd.getpwnam(user).pw_dir)
    if home.is_dir() and reaches(user, home, write=False):
        return home / "ofsted-stack" / hashlib.sha256(str(lay.root).encode()).hexdigest()[:16] / "data"
    blocked = _blocking_ancestor(user, lay.root)
    raise StackError(f"the `{user}` OS user, which runs PostgreSQL, cannot enter {blocked} (on the way to "
                     f"{lay.root}) and has no home folder to hold the cluster instead: run `chmod o+x "
                     f"{blocked}`, or set OFSTED_DATA_DIR to a folder it can reach (e.g. under /srv)")


def init_postgres(lay: Layout, gen: dict[str, str]) -> Path:
    """The cluster's data folder, created (initdb) on first use; its pg_hba.conf rewritten on
    every `up` from STACK_HOST (password logins from this host, and from its network when
    STACK_HOST is not a loopback address)."""
    pgdata = pg_location(lay, gen)
    user = _pg_user()
    if not gen.get("STACK_PGDATA") and pgdata != lay.pgdata and pgdata.parent.exists():
        # left by a stack whose data directory (and so its passwords) was deleted: not ours to reuse
        shutil.rmtree(pgdata.parent)
    if not (pgdata / "PG_VERSION").exists():
        if user and pgdata != lay.pgdata:  # a private folder of the postgres user's, made by root
            for folder in (pgdata.parent.parent, pgdata.parent):
                folder.mkdir(mode=0o700, exist_ok=True)
                _chown(folder, user)
        pgdata.mkdir(parents=True, exist_ok=True)
        os.chmod(pgdata, 0o700)
        _chown(pgdata, user)
        pwfile = pgdata.parent / ".pgpass-init"
        _write_private(pwfile, gen["STACK_POSTGRES_SUPERUSER_PASSWORD"] + "\n")
        _chown(pwfile, user)
        try:
            proc = subprocess.run(
                [str(_pg_bin() / "initdb"), "-D", str(pgdata), "-U", "postgres", "--pwfile", str(pwfile),
                 "--auth", "scram-sha-256", "--encoding", "UTF8", "--locale", "C.UTF-8"],
                user=user, capture_output=True, text=True, timeout=120, cwd="/")
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            shutil.rmtree(pgdata, ignore_errors=True)
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise StackError(f"initdb failed: {last} (can the `{user or 'current'}` user reach {pgdata}?)")
        with open(pgdata / "postgresql.conf", "a") as f:
            f.write("\n# ofsted-letters local stack (address and port: on the command line, from stack.env)\n"
                    "unix_socket_directories = ''\n"
                    "max_connections = 100\n"
                    "shared_buffers = 64MB\n")
    if not gen.get("STACK_PGDATA"):
        gen["STACK_PGDATA"] = str(pgdata)
        _write_private(lay.config, "".join(f"{k}={v}\n" for k, v in gen.items()))
    hba = ["# generated by orchestration/stack.py at every `up`",
           "host all all 127.0.0.1/32 scram-sha-256", "host all all ::1/128 scram-sha-256"]
    if not ipaddress.ip_address(_host(gen)).is_loopback:
        hba.append("host all all samenet scram-sha-256")  # extra workers on this machine's network
    (pgdata / "pg_hba.conf").write_text("\n".join(hba) + "\n")
    _chown(pgdata / "pg_hba.conf", user)
    return pgdata


def write_redis_conf(lay: Layout, gen: dict[str, str]) -> None:
    _write_private(lay.redis_conf, (
        f"bind {_host(gen)}\n"
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
        return psycopg2.connect(host=_host(gen), port=int(gen["STACK_POSTGRES_PORT"]), user="postgres",
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

    client = redis.Redis(host=_host(gen), port=int(gen["STACK_REDIS_PORT"]),
                         password=gen["STACK_REDIS_PASSWORD"], socket_timeout=2)
    _wait("Redis", client.ping, 30)


# --- supervisord ---------------------------------------------------------------------------

def programs(settings: Settings, lay: Layout, gen: dict[str, str]) -> dict[str, tuple[str, int, str]]:
    """name -> (command, priority, extra supervisord lines) of what this machine runs: everything
    on the data host; only the Celery worker (default queue) on an extra worker's machine."""
    airflow = VENV_BIN / "airflow"
    role = gen.get("STACK_ROLE", "data")
    queues = ",".join(worker_queues(settings, role))
    # warm shutdown: a running task finishes before the worker stops
    name = gen.get("STACK_WORKER_NAME")  # `%%h`: supervisord's escape for Celery's %h (the host name)
    worker = (f"{airflow} celery worker --skip-serve-logs --queues {queues}"
              + (f" --celery-hostname {name}@%%h" if name else ""), 40, "autostart=false\nstopwaitsecs=120\n")
    if role == "worker":
        return {"celery-worker": worker}
    pg_user = _pg_user()
    host = _host(gen)
    return {
        "postgres": (f"{_pg_bin() / 'postgres'} -D {pg_location(lay, gen)} -c listen_addresses={host} "
                     f"-c port={gen['STACK_POSTGRES_PORT']}", 10, "stopsignal=INT\n", pg_user),
        "redis": (f"{REDIS_SERVER} {lay.redis_conf}", 10, ""),
        "api-server": (f"{airflow} api-server", 30, "autostart=false\n"),
        "scheduler": (f"{airflow} scheduler --skip-serve-logs", 30, "autostart=false\n"),
        "dag-processor": (f"{airflow} dag-processor", 30, "autostart=false\n"),
        "triggerer": (f"{airflow} triggerer --skip-serve-logs", 30, "autostart=false\n"),
        "celery-worker": worker,
    }


def supervisor_conf(settings: Settings, lay: Layout, gen: dict[str, str]) -> str:
    # The signal to stop goes to the launcher, which passes it to its program alone (stopasgroup
    # would signal the program twice); after stopwaitsecs the whole group is killed, and `down`
    # sweeps whatever left the group (Airflow's task processes do).
    common = ("autorestart=true\nstartsecs=3\nstopasgroup=false\nkillasgroup=true\nstopwaitsecs=30\n"
              "redirect_stderr=true\nstdout_logfile_maxbytes=20MB\nstdout_logfile_backups=2\n")
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
    for name, (command, priority, extra, *user) in programs(settings, lay, gen).items():
        as_user = f" --user {user[0]}" if user and user[0] else ""
        launcher = (f"{VENV_BIN / 'python'} -m orchestration.launch --root {lay.root} --name {name}"
                    f"{as_user} -- ")
        out += [f"[program:{name}]", f"command={launcher}{command}", f"priority={priority}",
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


def _migrate(lay: Layout, env: dict[str, str]) -> bool:
    """Migrate the metadata DB unless this Airflow version already did; whether it ran (then the
    night's pool must be set: `_set_pool`, which may run while the programs start)."""
    import airflow

    marker = lay.airflow_home / ".ofsted-db-version"
    if marker.exists() and marker.read_text().strip() == airflow.__version__:
        return False
    _airflow(env, "db", "migrate")
    return True


def _set_pool(lay: Layout, env: dict[str, str]) -> None:
    """The night's pool, then the marker that says this Airflow version's DB is ready."""
    import airflow

    _airflow(env, "pools", "set", POOL, "1", POOL_DESCRIPTION)
    (lay.airflow_home / ".ofsted-db-version").write_text(airflow.__version__ + "\n")


def start(lay: Layout, *names: str) -> None:
    """Start supervisord programs all at once: `supervisorctl start a b` waits out each one's
    `startsecs` in turn (3 s each, and the Airflow programs' imports one after another)."""
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        for job in [pool.submit(ctl, lay, "start", name) for name in names]:
            job.result()


def _start_supervisord(settings: Settings, lay: Layout, gen: dict[str, str], env: dict[str, str]) -> None:
    lay.supervisor_conf.write_text(supervisor_conf(settings, lay, gen))
    proc = subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(lay.supervisor_conf)], env=env,
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise StackError(f"supervisord did not start: {(proc.stdout + proc.stderr).strip()}")


def up(settings: Settings, echo=print) -> dict[str, str]:
    t0 = time.monotonic()
    lay, gen, env = load_config(settings, create=True)
    if gen.get("STACK_ROLE") == "worker":
        raise StackError(f"{lay.root} holds an extra worker (joined to another machine's stack): "
                         "`python -m orchestration.stack worker` starts it, `down` stops it")
    if _supervisord_pid(lay):
        echo(f"stack: already running (supervisord pid {_supervisord_pid(lay)}); `make status` shows it")
        return gen
    # refuses here, before anything is started, when PostgreSQL or Redis could not run
    _pg_bin()
    if not Path(REDIS_SERVER).exists():
        raise StackError(f"Redis not found at {REDIS_SERVER}: apt-get install redis-server")
    pg_location(lay, gen)
    for d in (lay.logs, lay.airflow_home):
        d.mkdir(parents=True, exist_ok=True)
    _sweep(lay, echo)  # what a stack killed without `down` left running
    init_postgres(lay, gen)
    write_redis_conf(lay, gen)
    _write_private(lay.passwords, json.dumps({ADMIN: gen["STACK_ADMIN_PASSWORD"]}))
    _start_supervisord(settings, lay, gen, env)
    api = api_url(gen)
    try:
        ensure_airflow_database(gen)
        _wait_redis(gen)
        migrated = _migrate(lay, env)
        with ThreadPoolExecutor(max_workers=2) as pool:  # the pool is set while the programs start
            jobs = [pool.submit(start, lay, *AIRFLOW_PROGRAMS)]
            if migrated:
                jobs.append(pool.submit(_set_pool, lay, env))
            for job in jobs:
                job.result()
        # its first start migrates nothing but imports all of Airflow: minutes on a loaded 2-core machine
        _wait("api-server", lambda: urllib.request.urlopen(f"{api}/api/v2/version", timeout=3).status == 200,
              300)
    except BaseException:
        down(settings, echo=lambda _line: None)
        raise
    _echo_overridden(echo)
    echo(f"stack: up in {time.monotonic() - t0:.1f}s; Airflow UI {api}/ (user {ADMIN}, password in "
         f"{lay.passwords}); logs in {lay.logs}; worker queues "
         f"{','.join(worker_queues(settings, 'data'))}")
    return gen


# what an extra worker needs of the data host's stack.env
JOINED = ("STACK_HOST", "STACK_POSTGRES_PORT", "STACK_REDIS_PORT", "STACK_API_PORT",
          "STACK_POSTGRES_PASSWORD", "STACK_REDIS_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET",
          "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY")


def worker(settings: Settings, join: Path, name: str | None = None, echo=print) -> dict[str, str]:
    """Start an extra Celery worker on this machine, on the default queue only, joined to the
    stack whose stack.env is `join` (a copy of the data host's). It keeps its own configuration,
    AIRFLOW_HOME and logs under this machine's <data dir>/stack; parse tasks need the batch store
    (OFSTED_BATCH_STORE and its AWS_* settings). `down` stops it."""
    lay = layout(settings)
    if _supervisord_pid(lay):
        echo(f"stack: already running here (supervisord pid {_supervisord_pid(lay)}); `make status` shows it")
        return read_env_file(lay.config)
    if not settings.batch_store:
        raise StackError("an extra worker parses from the batch store: set OFSTED_BATCH_STORE (and its "
                         "AWS_* endpoint and credentials) as on the data host")
    try:
        source = read_env_file(join)
    except OSError as exc:
        raise StackError(f"cannot read the data host's stack.env at {join}: {exc.strerror or exc}") from exc
    missing = [k for k in JOINED if not source.get(k)]
    if missing:
        raise StackError(f"{join} is not a stack.env of a data host (no {', '.join(missing)})")
    if lay.config.exists() and read_env_file(lay.config).get("STACK_ROLE") != "worker":
        raise StackError(f"{lay.root} holds a data host's stack: give the extra worker its own "
                         "OFSTED_DATA_DIR")
    gen = {k: source[k] for k in JOINED} | {  # and this machine's own ports
        "STACK_ROLE": "worker", "STACK_WORKER_NAME": name or socket.gethostname(),
        "STACK_LOG_PORT": str(_free_port()), "STACK_TRIGGER_LOG_PORT": str(_free_port()),
        "STACK_HEALTH_PORT": str(_free_port())}
    _write_private(lay.config, "".join(f"{k}={v}\n" for k, v in gen.items()))
    env = stack_env(settings, lay, gen)
    for d in (lay.logs, lay.airflow_home):
        d.mkdir(parents=True, exist_ok=True)
    _sweep(lay, echo)
    _start_supervisord(settings, lay, gen, env)
    try:
        _wait_redis(gen)
        start(lay, *WORKER_PROGRAMS)
    except BaseException:
        down(settings, echo=lambda _line: None)
        raise
    _echo_overridden(echo)
    echo(f"stack: extra worker {gen['STACK_WORKER_NAME']} started on queue "
         f"{','.join(worker_queues(settings, 'worker'))}, joined to {api_url(gen)}; logs in {lay.logs}")
    return gen


def _echo_overridden(echo) -> None:
    if keys := overridden():  # names only: a value could be anything an operator put there
        echo(f"stack: set from the environment over {SHARED_ENV.relative_to(PROJECT_ROOT)}: "
             f"{', '.join(keys)}")


def _sweep(lay: Layout, echo) -> None:
    found, still = launch.sweep(lay.root)
    if found:
        echo(f"stack: stopped {len(found) - len(still)} process(es) an earlier run of this stack left behind"
             + (f"; could not stop {still}" if still else ""))


def _stop_programs(lay: Layout) -> None:
    """Stop this machine's programs in the order they depend on each other, each step's at once
    (supervisord's shutdown stops them one after another): the worker first (its warm shutdown
    lets a running task finish, and that task reports to the api-server), then the scheduler and
    dag-processor, then the api-server they all talk to, then PostgreSQL and Redis. The triggerer
    stops meanwhile: after a night it can take ~10 s (Airflow kills its trigger runner only
    after a 10 s escalation delay)."""
    try:
        configured = set(re.findall(r"^\[program:([\w-]+)\]$", lay.supervisor_conf.read_text(), re.M))
    except OSError:
        return
    with ThreadPoolExecutor(max_workers=len(configured) or 1) as pool:
        def stop(*names: str) -> list:
            return [pool.submit(ctl, lay, "stop", n, check=False) for n in names if n in configured]

        def wait(jobs: list) -> None:
            for job in jobs:
                job.result()

        triggerer = stop("triggerer")
        wait(stop(*WORKER_PROGRAMS))
        wait(stop("scheduler", "dag-processor"))
        wait(triggerer)
        wait(stop("api-server"))
        wait(stop("postgres", "redis"))


def down(settings: Settings, echo=print) -> None:
    lay = layout(settings)
    pid = _supervisord_pid(lay)
    if pid is not None:
        start = launch.start_time(pid)
        _stop_programs(lay)  # then supervisord's shutdown finds nothing left to stop
        ctl(lay, "shutdown", check=False)
        # until the process has ended: supervisord removes its pid file before it exits
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and launch.running(pid, start):
            time.sleep(0.1)
        if launch.running(pid, start):
            raise StackError(f"supervisord (pid {pid}) still running after 180s")
    left, still = launch.sweep(lay.root)  # a launcher killed with -9 leaves its program's children
    if still:
        raise StackError(f"could not stop {len(still)} process(es) of the stack: {still}")
    if pid is None and not left:
        echo("stack: not running")
        return
    echo("stack: stopped" + (f" (and {len(left)} process(es) left behind by a killed program)"
                             if left else ""))


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
    """The api-server's REST API. Every call is retried on a transient failure (HTTP 5xx, a
    refused or timed-out connection) with backoff for up to `RETRY_S`: a busy or restarting
    api-server does not end `make night`. Only idempotent calls are made (the night is triggered
    with a run id chosen here, so a repeated trigger finds the run instead of starting another)."""

    RETRY_S = 90.0

    def __init__(self, gen: dict[str, str], base: str | None = None):
        self.base = (base or api_url(gen)).rstrip("/")
        self.retried: list[str] = []  # one line per transient failure that was retried
        body = self._call("POST", "/auth/token", {"username": ADMIN, "password": gen["STACK_ADMIN_PASSWORD"]},
                          auth=False)
        self.token = body["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        deadline = time.monotonic() + self.RETRY_S
        pause = 1.0
        while True:
            req = urllib.request.Request(self.base + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
            req.add_header("Content-Type", "application/json")
            if auth:
                req.add_header("Authorization", f"Bearer {self.token}")
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:300]
                error = StackError(f"{method} {path}: HTTP {exc.code} {detail}")
                error.status = exc.code  # type: ignore[attr-defined]
                if exc.code < 500 or time.monotonic() > deadline:
                    raise error from exc
                why = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise StackError(f"api-server at {self.base} unreachable ({exc}); "
                                     "is the stack up?") from exc
                why = str(getattr(exc, "reason", exc))
            self.retried.append(f"{method} {path.split('?')[0]}: {why}")
            time.sleep(pause)
            pause = min(pause * 2, 10.0)

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


def _trigger(api: Api, logical_date: str | None) -> str:
    """Trigger one run under a run id chosen here: a trigger repeated after a lost answer (a 5xx
    from a proxy, a timeout) finds the run it made (409) instead of starting a second night."""
    run_id = f"manual__{dt.datetime.now(dt.UTC).isoformat()}"
    try:
        api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": logical_date,
                                                    "conf": {}})
    except StackError as exc:
        if getattr(exc, "status", None) != 409 or not api.retried:
            raise
        api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run_id, safe='')}")  # it is there
    return run_id


def night(settings: Settings, echo=print, timeout: float = 3600, api_base: str | None = None) -> int:
    t0 = time.monotonic()
    lay, gen, _env = load_config(settings)
    if _supervisord_pid(lay) is None:
        raise StackError("the stack is not running (run `make up` first)")
    if gen.get("STACK_ROLE") == "worker":
        raise StackError("this machine runs an extra worker: trigger the night on the data host")
    api = Api(gen, api_base)
    dag = _wait_for_dag(api)
    logical_date = None
    pending = dag.get("next_dagrun_logical_date")
    if dag.get("is_paused") and pending and dt.datetime.fromisoformat(pending) <= dt.datetime.now(dt.UTC):
        logical_date = pending  # the interval unpausing would start at once: this run is it
    run_id = _trigger(api, logical_date)
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
    if api.retried:
        echo(f"night: {len(api.retried)} transient API error(s) retried (first: {api.retried[0]})",
             file=sys.stderr)
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
    parser.add_argument("command", choices=["up", "down", "status", "night", "worker"])
    parser.add_argument("--join", type=Path, metavar="STACK_ENV",
                        help="worker: a copy of the data host's <data dir>/stack/stack.env")
    parser.add_argument("--name", help="worker: its name in Celery and in task instances (default: hostname)")
    parser.add_argument("--api", metavar="URL", help="night: reach the api-server at this URL (a proxy)")
    args = parser.parse_args(argv)
    if args.command == "worker" and args.join is None:
        parser.error("worker needs --join <the data host's stack.env>")
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
        elif args.command == "worker":
            worker(settings, args.join, args.name, echo)
        else:
            return night(settings, echo, api_base=args.api)
    except StackError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
