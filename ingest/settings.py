"""The one typed settings object. The only module that reads os.environ.

Every value comes from an environment variable documented in `.env.example`; `ENV` is the one
table mapping each field to its variable, read by `Settings.from_env` and written back by
`Settings.to_env` (the environment that rebuilds the same settings in another process: the
DAG file, dbt's profiles.yml). The defaults make `make run` work on a fresh clone (local inbox =
the bundled sample letters, everything written under `data/`).

Paths are made absolute (Cosmos runs dbt from a temporary copy of the project, so a relative
path would resolve in the wrong place) without following symbolic links: the published report
directory is a symlink swapped at every publish, and must be named, not resolved.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(os.path.abspath(Path(__file__).parent.parent))


def absolute(p: str | Path) -> Path:
    """`p` made absolute against the project root, normalised, symlinks left as they are."""
    p = Path(p).expanduser()
    return Path(os.path.normpath(p if p.is_absolute() else PROJECT_ROOT / p))


def _text(raw: str) -> str:
    return raw


def _optional(raw: str) -> str | None:
    return raw or None


def _lower(raw: str) -> str:
    return raw.strip().lower()


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {raw!r} (use true or false)")


def _list(raw: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in raw.split(",") if x.strip())


_BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _bytes(raw: str) -> int:
    """A size: `2GB`, `1.5GiB`, `500MB`, or a plain number of bytes."""
    text = raw.strip().lower().replace(" ", "")
    number = text.rstrip("kmgtib")
    unit = text[len(number):]
    try:
        value = float(number) * _BYTE_UNITS[unit]
    except (ValueError, KeyError):
        raise ValueError(f"not a size: {raw!r} (e.g. 2GB, 512MiB or a number of bytes)") from None
    if value <= 0:
        raise ValueError(f"not a positive size: {raw!r}")
    return int(value)


@dataclass(frozen=True)
class Var:
    """One setting: its environment variable, how its text is read, and its default (a value,
    or a function of the settings read so far, for paths under the data directory)."""

    env: str
    read: Callable[[str], Any]
    default: Any = None

    def default_for(self, so_far: Mapping[str, Any]) -> Any:
        return self.default(so_far) if callable(self.default) else self.default


def _under_data(*parts: str) -> Callable[[Mapping[str, Any]], Path]:
    return lambda so_far: Path(so_far["data_dir"], *parts)


#: field -> its variable. Order matters only where a default reads an earlier field.
ENV: dict[str, Var] = {
    # --- where things live -------------------------------------------------------------
    "data_dir": Var("OFSTED_DATA_DIR", absolute, PROJECT_ROOT / "data"),
    "inbox_dir": Var("OFSTED_INBOX_DIR", absolute, PROJECT_ROOT / "data" / "sample_letters"),
    "archive_dir": Var("OFSTED_ARCHIVE_DIR", absolute, _under_data("archive")),
    "runs_dir": Var("OFSTED_RUNS_DIR", absolute, _under_data("runs")),
    "work_warehouse": Var("OFSTED_WORK_WAREHOUSE", absolute, _under_data("warehouse", "ofsted_work.duckdb")),
    "published_warehouse": Var("OFSTED_WAREHOUSE", absolute, _under_data("warehouse", "ofsted.duckdb")),
    "report_dir": Var("OFSTED_REPORT_DIR", absolute, _under_data("report")),
    "log_file": Var("OFSTED_LOG_FILE", absolute, _under_data("logs", "ofsted.log")),
    "dbt_project_dir": Var("OFSTED_DBT_PROJECT_DIR", absolute, PROJECT_ROOT / "dbt_project"),
    "dbt_profiles_dir": Var("OFSTED_DBT_PROFILES_DIR", absolute, PROJECT_ROOT / "dbt_project"),
    # persists between nights (dbt's saved parse, the last build's results): one per data dir
    "dbt_target_dir": Var("OFSTED_DBT_TARGET_DIR", absolute, _under_data("dbt_target")),
    # --- sources -----------------------------------------------------------------------
    "source": Var("OFSTED_SOURCE", _lower, "local"),
    "http_index_url": Var("OFSTED_HTTP_INDEX_URL", _optional),
    "http_allowed_hosts": Var("OFSTED_HTTP_ALLOWED_HOSTS", _list, ()),
    "http_timeout_s": Var("OFSTED_HTTP_TIMEOUT_S", float, 30.0),
    "http_retries": Var("OFSTED_HTTP_RETRIES", int, 3),
    "http_backoff_s": Var("OFSTED_HTTP_BACKOFF_S", float, 1.0),
    "http_min_interval_s": Var("OFSTED_HTTP_MIN_INTERVAL_S", float, 1.0),
    "http_user_agent": Var("OFSTED_HTTP_USER_AGENT", _text, "ofsted-letters/0.1 (data team)"),
    "http_auth_token": Var("OFSTED_HTTP_AUTH_TOKEN", _optional),
    "http_username": Var("OFSTED_HTTP_USERNAME", _optional),
    "http_password": Var("OFSTED_HTTP_PASSWORD", _optional),
    "http_proxy": Var("OFSTED_HTTP_PROXY", _optional),
    "max_file_bytes": Var("OFSTED_MAX_FILE_BYTES", int, 20 * 1024 * 1024),
    # --- parse / load ------------------------------------------------------------------
    "batch_size": Var("OFSTED_BATCH_SIZE", int, 200),
    "batch_store": Var("OFSTED_BATCH_STORE", _optional),
    "parse_cpu_s": Var("OFSTED_PARSE_CPU_S", float, 20.0),
    "parse_wall_s": Var("OFSTED_PARSE_WALL_S", float, 30.0),
    "parse_memory_bytes": Var("OFSTED_PARSE_MEMORY_BYTES", int, 1 << 30),
    "parse_workers": Var("OFSTED_PARSE_WORKERS", int, 0),
    # --- alerts ------------------------------------------------------------------------
    "alert_channels": Var("OFSTED_ALERT_CHANNELS", _list, ("log",)),
    "alert_log": Var("OFSTED_ALERT_LOG", absolute, _under_data("alerts", "alerts.jsonl")),
    "alert_webhook_url": Var("OFSTED_ALERT_WEBHOOK_URL", _optional),
    "smtp_host": Var("OFSTED_SMTP_HOST", _optional),
    "smtp_port": Var("OFSTED_SMTP_PORT", int, 25),
    "smtp_user": Var("OFSTED_SMTP_USER", _optional),
    "smtp_password": Var("OFSTED_SMTP_PASSWORD", _optional),
    "smtp_starttls": Var("OFSTED_SMTP_STARTTLS", _bool, False),
    "smtp_ssl": Var("OFSTED_SMTP_SSL", _bool, False),
    "smtp_allow_plaintext": Var("OFSTED_SMTP_ALLOW_PLAINTEXT", _bool, False),
    "alert_email_from": Var("OFSTED_ALERT_EMAIL_FROM", _text, "ofsted-letters@localhost"),
    "alert_email_to": Var("OFSTED_ALERT_EMAIL_TO", _list, ()),
    # --- analysts' queries (ofsted sql / search / export) --------------------------------
    "sql_timeout_s": Var("OFSTED_SQL_TIMEOUT_S", float, 60.0),
    "sql_memory_limit": Var("OFSTED_SQL_MEMORY_LIMIT", _bytes, 2 * 2**30),
    "sql_threads": Var("OFSTED_SQL_THREADS", int, 2),
    "external_dir": Var("OFSTED_EXTERNAL_DIR", absolute),
    "external_max_files": Var("OFSTED_EXTERNAL_MAX_FILES", int, 50),
    "external_max_file_bytes": Var("OFSTED_EXTERNAL_MAX_FILE_BYTES", _bytes, 200 * 2**20),
    # --- airflow and dbt ---------------------------------------------------------------
    "airflow_home": Var("AIRFLOW_HOME", absolute, PROJECT_ROOT / ".airflow"),
    "dbt_executable": Var("OFSTED_DBT_EXECUTABLE", absolute, Path(sys.executable).parent / "dbt"),
    "warehouse_queue": Var("OFSTED_WAREHOUSE_QUEUE", _text, "warehouse"),
}


class SettingsError(ValueError):
    """A variable's value cannot be read (one line, naming the variable)."""


@dataclass(frozen=True)
class Settings:
    # --- where things live -------------------------------------------------------------
    data_dir: Path
    inbox_dir: Path  # local source: the folder scanned for letters (sub-folders allowed)
    archive_dir: Path  # content-addressed archive of every fetched file
    runs_dir: Path  # per-run scratch (parsed batches), safe to delete
    work_warehouse: Path  # the copy a night writes: raw tables + marts
    published_warehouse: Path  # what analysts read; replaced atomically after DQ passes
    report_dir: Path  # static HTML report, GX data docs and dbt docs are published here
    log_file: Path  # full tracebacks of `ofsted ...` errors (the console gets one line)
    dbt_project_dir: Path
    dbt_profiles_dir: Path
    dbt_target_dir: Path
    # --- sources -----------------------------------------------------------------------
    source: str  # "local" | "http"
    http_index_url: str | None
    http_allowed_hosts: tuple[str, ...]
    http_timeout_s: float
    http_retries: int
    http_backoff_s: float
    http_min_interval_s: float  # per-host rate limit: min seconds between requests
    http_user_agent: str
    http_auth_token: str | None
    http_username: str | None
    http_password: str | None
    http_proxy: str | None
    max_file_bytes: int
    # --- parse / load ------------------------------------------------------------------
    batch_size: int  # documents per parse batch (one mapped Airflow task each)
    batch_store: str | None  # fsspec URL parse batches go to (s3://...); None: runs_dir
    parse_cpu_s: float  # per document: CPU seconds in its worker process
    parse_wall_s: float  # per document: wall seconds before its worker is killed
    parse_memory_bytes: int  # per worker: address space (RLIMIT_AS)
    parse_workers: int  # long-lived parse processes (0: one per core beyond the first)
    # --- alerts ------------------------------------------------------------------------
    alert_channels: tuple[str, ...]  # any of: log, webhook, email
    alert_log: Path
    alert_webhook_url: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_user: str | None
    smtp_password: str | None
    smtp_starttls: bool
    smtp_ssl: bool  # SMTPS: TLS from the first byte (usually port 465)
    smtp_allow_plaintext: bool  # allow a login without TLS (never by default)
    alert_email_from: str
    alert_email_to: tuple[str, ...]
    # --- analysts' queries (ofsted sql / search / export) --------------------------------
    sql_timeout_s: float  # a query is interrupted after this many seconds
    sql_memory_limit: int  # bytes: DuckDB's memory_limit, and the process's extra address space
    sql_threads: int  # DuckDB threads per query
    external_dir: Path | None  # the analyst's own CSV/Parquet files, loaded into schema `ext`
    external_max_files: int
    external_max_file_bytes: int
    # --- airflow and dbt ---------------------------------------------------------------
    airflow_home: Path
    dbt_executable: Path  # the venv's dbt, for Cosmos
    warehouse_queue: str  # Celery queue of the night's steps that write in the data directory

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (default: os.environ); an unset or empty variable takes its default."""
        e = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, var in ENV.items():
            raw = e.get(var.env)
            if raw is None or raw.strip() == "":
                values[name] = var.default_for(values)
                continue
            try:
                values[name] = var.read(raw)
            except ValueError as exc:
                raise SettingsError(f"{var.env}={raw!r}: {exc}") from None
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that makes `Settings.from_env()` rebuild these settings."""
        out: dict[str, str] = {}
        for name, var in ENV.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            out[var.env] = str(value)
        return out

    def with_overrides(self, **kwargs: Any) -> Settings:
        """A copy with some fields replaced (the CLI's flags); None leaves a field as it is."""
        return replace(self, **{k: v for k, v in kwargs.items() if v is not None})


assert set(ENV) == {f.name for f in fields(Settings)}, "ENV and Settings must name the same fields"


def get_settings(data_dir: str | Path | None = None) -> Settings:
    """Settings from the environment; `data_dir` (the `--data-dir` flag) replaces
    OFSTED_DATA_DIR, so every path under it follows (explicit OFSTED_* paths still win)."""
    if data_dir is None:
        return Settings.from_env()
    return Settings.from_env({**os.environ, "OFSTED_DATA_DIR": str(data_dir)})
