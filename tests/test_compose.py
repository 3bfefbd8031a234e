"""docker-compose.yml cannot be started here (no Docker engine): check it is consistent.

It parses; the Airflow 3 services are all there with the same commands as the local stack;
settings come from deploy/airflow.env (shared with the local stack) and `.env`, and every
variable the compose file uses is documented in `.env.example`; no secret has a default and
nothing listens beyond 127.0.0.1 on the host; the pool the DAG needs is created; data sits on
volumes the image's user owns.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ingest.settings import ENV, PROJECT_ROOT, Settings
from orchestration.runner import POOL
from orchestration.stack import (
    SHARED_ENV,
    Layout,
    generate_secrets,
    read_env_file,
    stack_env,
    supervisor_conf,
)

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
AIRFLOW_SERVICES = {  # compose service -> the local stack's supervisord program
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery-worker",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value
    return out


def _airflow(compose: dict) -> dict[str, dict]:
    return {n: s for n, s in compose["services"].items() if n.startswith("airflow-")}


def test_every_airflow_3_component_runs_with_the_local_stacks_command(compose, tmp_path):
    conf = supervisor_conf(Layout(tmp_path))
    local = dict(re.findall(r"^\[program:([a-z-]+)\]\ncommand=\S*/airflow (.+)$", conf, re.M))
    services = compose["services"]
    for name, program in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == local[program], name
    assert services["postgres"]["image"].startswith("postgres:")
    assert "airflow db migrate" in services["airflow-init"]["command"][-1]


def test_compose_and_the_local_stack_share_one_configuration(compose, tmp_path):
    shared = read_env_file(SHARED_ENV)
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    local = stack_env(Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)}), Layout(tmp_path / "stack"),
                      generate_secrets())
    for key, value in shared.items():
        assert local[key] == value, key  # the local stack runs with every shared value
    for name, svc in _airflow(compose).items():
        assert {"path": "deploy/airflow.env", "required": True} in svc["env_file"], name
        # compose sets only what differs per deployment, never a shared name with another value
        assert not set(svc["environment"]) & set(shared), name
        # and every per-deployment Airflow setting the local stack sets, compose sets too
        per_host = {k for k in local if k.startswith("AIRFLOW__") and k not in shared}
        assert per_host - set(svc["environment"]) <= {
            "AIRFLOW__API__BASE_URL", "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT",
        }, name  # those take Airflow's defaults inside a container


def test_no_secret_has_a_default_and_the_api_is_published_on_localhost_only(compose):
    text = COMPOSE.read_text()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
                   "AIRFLOW_FERNET_KEY", "AIRFLOW_ADMIN_PASSWORD"):
        uses = re.findall(r"\$\{" + secret + r"(:?[-?][^}]*)?\}", text)
        assert uses, secret
        assert all(u.startswith(":?") for u in uses), f"{secret} must be required (${{{secret}:?...}})"
    services = compose["services"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
    env = _airflow(compose)["airflow-apiserver"]["environment"]
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
        assert env[key].startswith("${"), key
    assert "@redis:6379/" in env["AIRFLOW__CELERY__BROKER_URL"] and ":${REDIS_PASSWORD:?" in env[
        "AIRFLOW__CELERY__BROKER_URL"]
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    # Redis gets its password as configuration on stdin, not on a command line
    assert "requirepass" in " ".join(services["redis"]["command"])
    assert "REDIS_PASSWORD" not in "".join(services["redis"]["command"]).split("|")[-1]
    # the auth manager's password file comes from the required admin password: none is generated
    assert "simple_auth_manager_passwords.json" in services["airflow-init"]["command"][-1]
    for name, svc in _airflow(compose).items():
        deps = svc["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert deps["airflow-init"]["condition"] == "service_completed_successfully", name


def test_settings_come_from_env_file_and_every_variable_is_documented(compose, env_example):
    text = COMPOSE.read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)(?::?-[^}]*)?\}", text))
    assert used, "compose interpolates nothing?"
    assert used <= set(env_example), f"undocumented in .env.example: {sorted(used - set(env_example))}"
    for name, svc in _airflow(compose).items():
        assert {"path": ".env", "required": False} in svc["env_file"], name
        ofsted = {k for k in svc["environment"] if k.startswith("OFSTED_")}
        assert ofsted <= set(env_example), f"{name}: {sorted(ofsted - set(env_example))}"


def test_env_example_documents_exactly_the_settings(env_example):
    read_by_settings = {v.env for v in ENV.values()}
    documented = {k for k in env_example if k.startswith("OFSTED_") or k == "AIRFLOW_HOME"}
    assert documented == read_by_settings
    assert set(Settings.from_env({}).to_env()) <= read_by_settings  # `ofsted run` passes them on
    # one comment line above each setting
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[i - 1].startswith("# "), f"no comment above {line}"
    # the documented values are the defaults
    assert Settings.from_env(env_example) == Settings.from_env({})


def test_project_is_mounted_and_data_lives_on_named_volumes(compose):
    volumes = set(compose["volumes"])
    for name, svc in _airflow(compose).items():
        mounts = dict(v.split(":", 1)[::-1] for v in svc["volumes"])  # container path -> source
        assert mounts["/opt/ofsted"] == ".", name
        env = svc["environment"]
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/ofsted/dags"
        assert env["OFSTED_DBT_PROJECT_DIR"].startswith("/opt/ofsted/")
        for var in ("OFSTED_ARCHIVE_DIR", "OFSTED_WORK_WAREHOUSE", "OFSTED_WAREHOUSE", "OFSTED_REPORT_DIR",
                    "OFSTED_RUNS_DIR", "OFSTED_ALERT_LOG", "OFSTED_INBOX_DIR"):
            path = Path(env[var])
            holders = [m for m in mounts if path.is_relative_to(m) and m != "/opt/ofsted"]
            assert holders, f"{name}: {var}={path} is not on a volume"
            assert mounts[max(holders, key=len)] in volumes, f"{name}: {var} is on an undeclared volume"
        # the report dir is a symlink swapped inside its volume, never the mount point itself
        assert env["OFSTED_REPORT_DIR"] not in mounts
        # both warehouses on the same volume: the publish step's os.replace must not cross devices
        assert Path(env["OFSTED_WORK_WAREHOUSE"]).parent == Path(env["OFSTED_WAREHOUSE"]).parent


def test_init_creates_the_one_slot_pool_the_dag_uses(compose):
    # POOL is the pool every DuckDB task of the loaded DAG runs in (tests/test_dag.py)
    script = compose["services"]["airflow-init"]["command"][-1]
    assert re.search(rf"airflow pools set {POOL} 1 ", script)


def test_image_installs_the_locked_set_the_manifest_and_owns_data(compose):
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.\d+-python3\.11$", dockerfile, re.M)
    assert "pip install --no-cache-dir -r /opt/ofsted/requirements/production.lock" in dockerfile
    assert "--no-deps -e /opt/ofsted" in dockerfile
    assert "dbt parse" in dockerfile
    assert re.search(r"chown -R airflow:0 /data", dockerfile)
    lock = (PROJECT_ROOT / "requirements" / "production.lock").read_text()
    for pin in ("celery==5.6.3", "psycopg2-binary==", "asyncpg==", "apache-airflow-providers-celery=="):
        assert pin in lock, pin
    for name, svc in _airflow(compose).items():
        assert svc["build"] == "." and svc["image"] == "ofsted-letters-airflow:latest", name
        assert svc["environment"]["OFSTED_DBT_EXECUTABLE"] == "/home/airflow/.local/bin/dbt"
