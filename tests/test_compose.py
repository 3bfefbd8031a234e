"""docker-compose.yml cannot be started here (no Docker engine): check it is consistent.

It parses; the Airflow 3 services are all there with the right commands; settings come from
`.env` and every variable the compose file uses is documented in `.env.example`; the
executor matches the profiles; the pool the DAG needs is created; data sits on volumes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ingest.settings import ENV, PROJECT_ROOT, Settings
from orchestration.runner import POOL

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
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


def test_every_airflow_3_component_runs_with_its_command(compose):
    services = compose["services"]
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name
    assert services["postgres"]["image"].startswith("postgres:")
    assert "airflow db migrate" in services["airflow-init"]["command"][-1]


def test_celery_pieces_only_in_the_celery_profile_and_executor_is_chosen_by_env(compose, env_example):
    services = compose["services"]
    assert services["redis"]["profiles"] == ["celery"]
    assert services["airflow-worker"]["profiles"] == ["celery"]
    for name, svc in services.items():
        if name not in ("redis", "airflow-worker"):
            assert "profiles" not in svc, f"{name} must run in the default (LocalExecutor) setup"
    for name, svc in _airflow(compose).items():
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:@redis:6379/"), name
        assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert "@postgres:5432/airflow" in env["AIRFLOW__CELERY__RESULT_BACKEND"], name
    assert env_example["AIRFLOW_EXECUTOR"] == "LocalExecutor"
    header = COMPOSE.read_text().split("x-airflow-common")[0]
    assert "AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery up" in header
    # the worker needs the broker up; everything needs Postgres healthy and the init done
    assert services["airflow-worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name


def test_settings_come_from_env_file_and_every_variable_is_documented(compose, env_example):
    text = COMPOSE.read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)(?::?-[^}]*)?\}", text))
    assert used, "compose interpolates nothing?"
    assert used <= set(env_example), f"undocumented in .env.example: {sorted(used - set(env_example))}"
    for name, svc in _airflow(compose).items():
        assert svc["env_file"] == [{"path": ".env", "required": False}], name
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


def test_image_installs_the_project(compose):
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.\d+-python3\.11$", dockerfile, re.M)
    assert "-e /opt/ofsted" in dockerfile
    for name, svc in _airflow(compose).items():
        assert svc["build"] == "." and svc["image"] == "ofsted-letters-airflow:latest", name
        assert svc["environment"]["OFSTED_DBT_EXECUTABLE"] == "/home/airflow/.local/bin/dbt"
