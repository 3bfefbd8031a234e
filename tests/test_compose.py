"""docker-compose.yml cannot be started here (no Docker engine): check it is valid and consistent.

It (and the development override) validates against the Compose specification's JSON schema
(vendored from compose-spec/compose-spec, tests/fixtures/compose-spec/); the Airflow 3 services
are all there with the same commands as the local stack; settings come from deploy/airflow.env
(shared with the local stack) and the compose file's own `environment:`, never from `.env` loaded
into a container; every variable it uses is documented in `.env.example`; each secret reaches only
the services that use it and has no default; nothing listens beyond 127.0.0.1 on the host; the
pool the DAG needs is created; every path the settings name is on the one /data volume or in the
image; the manifest the DAG renders from is built into the image and nothing is mounted over it;
AIRFLOW_UID is handled as in Airflow's official file; the worker waits for a healthy api-server.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml

from ingest.settings import ENV, PROJECT_ROOT, Settings, absolute
from ingest.warehouse.build import PROJECT_INPUTS, prebuilt_target
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
COMPOSE_DEV = PROJECT_ROOT / "docker-compose.dev.yml"
SCHEMA = Path(__file__).parent / "fixtures" / "compose-spec" / "compose-spec.json"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
# secret -> the services that use it (and no other service may be given it)
SECRETS = {
    "POSTGRES_PASSWORD": {"postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler",
                          "airflow-dag-processor", "airflow-triggerer", "airflow-worker"},
    "REDIS_PASSWORD": {"redis", "airflow-scheduler", "airflow-worker"},
    "AIRFLOW_ADMIN_PASSWORD": {"airflow-init"},
    **{k: {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
           "airflow-triggerer", "airflow-worker"}
       for k in ("AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_FERNET_KEY")},
    **{k: {"airflow-worker"} for k in ("OFSTED_HTTP_AUTH_TOKEN", "OFSTED_HTTP_PASSWORD",
                                       "OFSTED_SMTP_PASSWORD", "OFSTED_ALERT_WEBHOOK_URL",
                                       "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")},
}
IN_THE_IMAGE = {"OFSTED_DBT_PROJECT_DIR", "OFSTED_DBT_PROFILES_DIR", "OFSTED_DBT_EXECUTABLE", "AIRFLOW_HOME"}
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


def _interpolated(text: str) -> str:
    """`${VAR:-default}` as compose fills it in when VAR is unset."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)


def _mounts(svc: dict) -> dict[str, str]:
    """container path -> source of a service's volumes."""
    return {v.split(":")[1]: v.split(":")[0] for v in svc.get("volumes", [])}


def test_compose_files_validate_against_the_compose_spec_schema():
    schema = json.loads(SCHEMA.read_text())
    for path in (COMPOSE, COMPOSE_DEV):
        jsonschema.Draft7Validator(schema).validate(yaml.safe_load(path.read_text()))
    # and the schema is not a pushover: a typo in a key fails it
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["airflow-worker"]["depends_onn"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)


def test_every_airflow_3_component_runs_with_the_local_stacks_command(compose, tmp_path):
    settings = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)})
    conf = supervisor_conf(settings, Layout(tmp_path), generate_secrets())
    local = dict(re.findall(r"^\[program:([a-z-]+)\]\ncommand=.* -- \S*/airflow (.+)$", conf, re.M))
    services = compose["services"]
    for name, program in AIRFLOW_SERVICES.items():
        assert _interpolated(services[name]["command"]) == local[program], name
    assert services["postgres"]["image"].startswith("postgres:")
    assert "airflow db migrate" in services["airflow-init"]["command"][-1]


def test_compose_and_the_local_stack_share_one_configuration(compose, tmp_path):
    shared = read_env_file(SHARED_ENV)
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    local = stack_env(Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)}), Layout(tmp_path / "stack"),
                      generate_secrets(), environ={})  # no override from this process's environment
    for key, value in shared.items():
        assert local[key] == value, key  # the local stack runs with every shared value
    for name, svc in _airflow(compose).items():
        assert svc["env_file"] == [{"path": "deploy/airflow.env", "required": True}], name
        # compose sets only what differs per deployment, never a shared name with another value
        assert not set(svc["environment"]) & set(shared), name
        # and every per-deployment Airflow setting the local stack sets, compose sets too
        per_host = {k for k in local if k.startswith("AIRFLOW__") and k not in shared}
        assert per_host - set(svc["environment"]) <= {
            "AIRFLOW__API__BASE_URL", "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT",
            # the Celery broker and result backend: only where Celery is used (the secrets test)
            "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND",
        }, name  # those take Airflow's defaults inside a container


def test_each_secret_reaches_only_the_services_that_use_it_and_has_no_default(compose):
    text = COMPOSE.read_text()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
                   "AIRFLOW_FERNET_KEY", "AIRFLOW_ADMIN_PASSWORD"):
        uses = re.findall(r"\$\{" + secret + r"(:?[-?][^}]*)?\}", text)
        assert uses, secret
        assert all(u.startswith(":?") for u in uses), f"{secret} must be required (${{{secret}:?...}})"
    for name, svc in compose["services"].items():
        # no env_file but the shared, secret-free deploy/airflow.env: `.env` is compose's, not the containers'
        for entry in svc.get("env_file", []):
            path = entry["path"] if isinstance(entry, dict) else entry
            assert path == "deploy/airflow.env", f"{name} loads {path} into its environment"
        given = json.dumps(svc.get("environment", {})) + json.dumps(svc.get("command", ""))
        for secret, users in SECRETS.items():
            if re.search(r"\$\{" + secret + r"\b", given):
                assert name in users, f"{name} is given {secret}, which it does not use"
            elif name in users and secret.startswith(("POSTGRES", "REDIS", "AIRFLOW_")):
                raise AssertionError(f"{name} needs {secret} and is not given it")
    shared = read_env_file(SHARED_ENV)
    assert not [k for k in shared if re.search(r"PASSWORD|SECRET|FERNET|TOKEN", k)], "a secret in airflow.env"


def test_the_api_is_published_on_localhost_only_and_redis_keeps_its_password_off_argv(compose):
    services = compose["services"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
    env = services["airflow-scheduler"]["environment"]
    assert "@redis:6379/" in env["AIRFLOW__CELERY__BROKER_URL"] and ":${REDIS_PASSWORD:?" in env[
        "AIRFLOW__CELERY__BROKER_URL"]
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    # Redis gets its password as configuration on stdin, not on a command line
    assert "requirepass" in " ".join(services["redis"]["command"])
    assert "REDIS_PASSWORD" not in "".join(services["redis"]["command"]).split("|")[-1]
    # the auth manager's password file comes from the required admin password: none is generated
    assert "simple_auth_manager_passwords.json" in services["airflow-init"]["command"][-1]


def test_startup_order_and_airflow_uid_as_the_official_file_has_them(compose):
    services = compose["services"]
    for name, svc in _airflow(compose).items():
        deps = svc["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
            assert svc["user"] == "${AIRFLOW_UID:-50000}:0", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert "healthcheck" in services["airflow-apiserver"]
    # airflow-init runs as root and hands every writable volume to AIRFLOW_UID:0, so any uid works
    init = services["airflow-init"]
    assert init["user"] == "0:0"
    script = init["command"][-1]
    chown = re.search(r'chown -R "\$\{AIRFLOW_UID:-50000\}:0" (.+)', script)
    assert chown, script
    owned = chown.group(1).split()
    for name, svc in _airflow(compose).items():
        for target, source in _mounts(svc).items():
            if source in compose["volumes"]:
                assert target in owned, f"{name}: volume {source} at {target} is not handed to AIRFLOW_UID"


def test_settings_come_from_the_compose_file_and_every_variable_is_documented(compose, env_example):
    text = COMPOSE.read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}", text))
    assert used, "compose interpolates nothing?"
    aws = {k for k in used if k.startswith("AWS_")}
    undocumented = sorted(used - aws - set(env_example))
    assert not undocumented, f"undocumented in .env.example: {undocumented}"
    example = ENV_EXAMPLE.read_text()
    for key in aws:  # the object store's standard variables are named in .env.example's comments
        assert key in example, key
    workers = _airflow(compose)["airflow-worker"]["environment"]
    # every setting reaches the workers (they run the tasks): a path set here, or the operator's value
    assert {v.env for v in ENV.values()} - {"AIRFLOW_HOME"} <= set(workers)
    assert _airflow(compose)["airflow-dag-processor"]["environment"]["OFSTED_WAREHOUSE_QUEUE"] == \
        workers["OFSTED_WAREHOUSE_QUEUE"]  # the DAG is parsed with the queue the worker serves


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


def test_every_path_the_settings_name_is_on_the_one_data_volume_or_in_the_image(compose):
    path_vars = {v.env for v in ENV.values() if v.read is absolute}
    for name in ("airflow-worker", "airflow-dag-processor"):
        svc = _airflow(compose)[name]
        mounts = _mounts(svc)
        assert mounts["/data"] == "ofsted-data" and "ofsted-data" in compose["volumes"], name
        env = svc["environment"]
        for var in sorted(path_vars - IN_THE_IMAGE):
            assert var in env, f"{name}: {var} is not set (its default is a path in the image)"
            path = PurePosixPath(env[var])
            holders = [m for m in mounts if path.is_relative_to(m)]
            assert holders, f"{name}: {var}={path} is not on a volume"
            assert mounts[max(holders, key=len)] in compose["volumes"], f"{name}: {var}: undeclared volume"
        # the report dir is a symlink swapped inside the volume, never a mount point itself
        assert env["OFSTED_REPORT_DIR"] not in mounts
        # both warehouses on the same volume: the publish step's os.replace must not cross devices
        work, published = PurePosixPath(env["OFSTED_WORK_WAREHOUSE"]), PurePosixPath(env["OFSTED_WAREHOUSE"])
        assert work.parent == published.parent
    # one volume for the data: every service that mounts anything under /data mounts /data itself
    for name, svc in compose["services"].items():
        under = [m for m in _mounts(svc) if m.startswith("/data")]
        assert under in ([], ["/data"]), f"{name} mounts {under}"


def _dockerignored(rel: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `rel` out of the build context (its patterns, with ! exceptions)."""
    out = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        parts = PurePosixPath(rel).parts
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(p, pat)
               or (pat.startswith("**/") and fnmatch.fnmatch(p.split("/")[-1], pat[3:])) for p in prefixes):
            out = not negate
    return out


def test_the_dags_manifest_is_built_into_the_image_and_nothing_hides_it(compose):
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    patterns = [ln.strip() for ln in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    tracked = subprocess.run(["git", "ls-files", "dbt_project", "dags", "ingest", "orchestration",
                              "expectations", "deploy", "requirements/production.lock", "pyproject.toml"],
                             cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.split()
    inputs = [f for f in tracked if f.startswith("dbt_project/") and f.split("/")[1] in PROJECT_INPUTS]
    assert inputs and "dbt_project/dbt_project.yml" in inputs
    sent = [f for f in tracked if not _dockerignored(f, patterns)]
    assert set(tracked) == set(sent), f"left out of the build context: {sorted(set(tracked) - set(sent))[:5]}"
    assert _dockerignored("dbt_project/target/manifest.json", patterns)  # the checkout's may be stale
    # the image builds it: dbt_project copied to where the DAG looks, then `dbt parse` into its target/
    env = _airflow(compose)["airflow-dag-processor"]["environment"]
    project = PurePosixPath(env["OFSTED_DBT_PROJECT_DIR"])
    assert re.search(rf"^COPY --chown=airflow:0 dbt_project {project}$", dockerfile, re.M)
    joined = re.sub(r"\\\n\s*", " ", dockerfile)  # continuation lines as one
    parse = re.search(r"^RUN cd (\S+) && .*dbt parse .*--target-path (\S+)", joined, re.M)
    workdir = re.findall(r"^WORKDIR (\S+)", joined[:parse.start()] if parse else "", re.M)
    assert parse and workdir and PurePosixPath(workdir[-1]) / parse.group(1) == project, "no dbt parse"
    assert prebuilt_target(Path(str(project))) == Path(str(project)) / parse.group(2)
    assert joined.index("COPY --chown=airflow:0 dbt_project") < parse.start()
    # production mounts nothing over the code, the project or its manifest (the dev override may)
    for name, svc in compose["services"].items():
        for target in _mounts(svc):
            assert not PurePosixPath("/opt/ofsted").is_relative_to(target), f"{name} mounts over {target}"
            assert not PurePosixPath(target).is_relative_to("/opt/ofsted"), f"{name} mounts {target}"
    dev = yaml.safe_load(COMPOSE_DEV.read_text())
    for name, svc in dev["services"].items():
        for target in _mounts(svc):
            assert not project.is_relative_to(target) and not PurePosixPath(target).is_relative_to(project), \
                f"the dev override's {name} hides the image's dbt project with {target}"


def test_init_creates_the_one_slot_pool_the_dag_uses(compose):
    # POOL is the pool every DuckDB task of the loaded DAG runs in (tests/test_dag.py)
    script = compose["services"]["airflow-init"]["command"][-1]
    assert re.search(rf"airflow pools set {POOL} 1 ", script)


def test_image_installs_the_locked_set_and_owns_data(compose):
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.\d+-python3\.11$", dockerfile, re.M)
    assert "pip install --no-cache-dir -r /opt/ofsted/requirements/production.lock" in dockerfile
    assert "--no-deps -e /opt/ofsted" in dockerfile
    assert re.search(r"chown -R airflow:0 /data", dockerfile)
    lock = (PROJECT_ROOT / "requirements" / "production.lock").read_text()
    for pin in ("celery==5.6.3", "psycopg2-binary==", "asyncpg==", "apache-airflow-providers-celery==",
                "s3fs=="):
        assert pin in lock, pin
    for name, svc in _airflow(compose).items():
        assert svc["build"] == "." and svc["image"] == "ofsted-letters-airflow:latest", name
    assert _airflow(compose)["airflow-worker"]["environment"]["OFSTED_DBT_EXECUTABLE"] == \
        "/home/airflow/.local/bin/dbt"


def test_supervisord_reads_the_local_stacks_configuration_for_both_roles(tmp_path):
    """The generated supervisord.conf, parsed by supervisord itself: on the data host, and on an
    extra worker's machine (only the worker, on the default queue, under its own name)."""
    from supervisor.options import ServerOptions

    settings = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path)})
    (tmp_path / "stack" / "logs").mkdir(parents=True)
    commands = {}
    for role, extra in (("data", {}), ("worker", {"STACK_ROLE": "worker", "STACK_WORKER_NAME": "parse-2"})):
        conf = tmp_path / f"{role}.conf"
        conf.write_text(supervisor_conf(settings, Layout(tmp_path / "stack"), generate_secrets() | extra))
        options = ServerOptions()
        options.configfile = str(conf)
        options.process_config(do_usage=False)
        commands[role] = {g.name: g.process_configs[0].command for g in options.process_group_configs}
    assert set(commands["data"]) == set(AIRFLOW_SERVICES.values()) | {"postgres", "redis"}
    assert commands["data"]["celery-worker"].endswith("--queues default,warehouse")
    assert list(commands["worker"]) == ["celery-worker"]
    assert commands["worker"]["celery-worker"].endswith("--queues default --celery-hostname parse-2@%h")
    assert all(" -m orchestration.launch --root " in c for c in [*commands["data"].values(),
                                                                 *commands["worker"].values()])
