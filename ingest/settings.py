"""The one typed settings object. The only module that reads os.environ.

Every value comes from an environment variable documented in `.env.example`; the defaults
make `make run` work on a fresh clone (local inbox = the bundled sample letters, everything
written under `data/`). All paths are absolute: Cosmos runs dbt from a temporary copy of the
project, so a relative path would resolve in the wrong place.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _path(env: dict[str, str], name: str, default: Path) -> Path:
    raw = env.get(name)
    p = Path(raw).expanduser() if raw else default
    return p if p.is_absolute() else (PROJECT_ROOT / p).resolve()


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return float(raw) if raw not in (None, "") else default


def _list(env: dict[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(x.strip() for x in raw.split(",") if x.strip())


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
    # --- alerts ------------------------------------------------------------------------
    alert_channels: tuple[str, ...]  # any of: log, webhook, email
    alert_log: Path
    alert_webhook_url: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_user: str | None
    smtp_password: str | None
    smtp_starttls: bool
    alert_email_from: str
    alert_email_to: tuple[str, ...]
    # --- airflow (used by `ofsted run`) ------------------------------------------------
    airflow_home: Path
    extra: dict[str, str] = field(default_factory=dict)
    dbt_execution_mode: str = "local"  # Cosmos: "local" (a task per model) | "watcher"
    dbt_executable: Path = Path(sys.executable).parent / "dbt"  # the venv's dbt, for Cosmos

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        data = _path(e, "OFSTED_DATA_DIR", PROJECT_ROOT / "data")
        wh_dir = data / "warehouse"
        return cls(
            data_dir=data,
            inbox_dir=_path(e, "OFSTED_INBOX_DIR", PROJECT_ROOT / "data" / "sample_letters"),
            archive_dir=_path(e, "OFSTED_ARCHIVE_DIR", data / "archive"),
            runs_dir=_path(e, "OFSTED_RUNS_DIR", data / "runs"),
            work_warehouse=_path(e, "OFSTED_WORK_WAREHOUSE", wh_dir / "ofsted_work.duckdb"),
            published_warehouse=_path(e, "OFSTED_WAREHOUSE", wh_dir / "ofsted.duckdb"),
            report_dir=_path(e, "OFSTED_REPORT_DIR", data / "report"),
            dbt_project_dir=_path(e, "OFSTED_DBT_PROJECT_DIR", PROJECT_ROOT / "dbt_project"),
            dbt_profiles_dir=_path(e, "OFSTED_DBT_PROFILES_DIR", PROJECT_ROOT / "dbt_project"),
            dbt_target_dir=_path(e, "OFSTED_DBT_TARGET_DIR", PROJECT_ROOT / "dbt_project" / "target"),
            source=e.get("OFSTED_SOURCE", "local").strip().lower() or "local",
            http_index_url=e.get("OFSTED_HTTP_INDEX_URL") or None,
            http_allowed_hosts=_list(e, "OFSTED_HTTP_ALLOWED_HOSTS"),
            http_timeout_s=_float(e, "OFSTED_HTTP_TIMEOUT_S", 30.0),
            http_retries=_int(e, "OFSTED_HTTP_RETRIES", 3),
            http_backoff_s=_float(e, "OFSTED_HTTP_BACKOFF_S", 1.0),
            http_min_interval_s=_float(e, "OFSTED_HTTP_MIN_INTERVAL_S", 1.0),
            http_user_agent=e.get("OFSTED_HTTP_USER_AGENT", "ofsted-letters/0.1 (data team)"),
            http_auth_token=e.get("OFSTED_HTTP_AUTH_TOKEN") or None,
            http_username=e.get("OFSTED_HTTP_USERNAME") or None,
            http_password=e.get("OFSTED_HTTP_PASSWORD") or None,
            http_proxy=e.get("OFSTED_HTTP_PROXY") or e.get("HTTPS_PROXY") or e.get("https_proxy") or None,
            max_file_bytes=_int(e, "OFSTED_MAX_FILE_BYTES", 20 * 1024 * 1024),
            batch_size=_int(e, "OFSTED_BATCH_SIZE", 200),
            alert_channels=_list(e, "OFSTED_ALERT_CHANNELS", ("log",)),
            alert_log=_path(e, "OFSTED_ALERT_LOG", data / "alerts" / "alerts.jsonl"),
            alert_webhook_url=e.get("OFSTED_ALERT_WEBHOOK_URL") or None,
            smtp_host=e.get("OFSTED_SMTP_HOST") or None,
            smtp_port=_int(e, "OFSTED_SMTP_PORT", 25),
            smtp_user=e.get("OFSTED_SMTP_USER") or None,
            smtp_password=e.get("OFSTED_SMTP_PASSWORD") or None,
            smtp_starttls=e.get("OFSTED_SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
            alert_email_from=e.get("OFSTED_ALERT_EMAIL_FROM", "ofsted-letters@localhost"),
            alert_email_to=_list(e, "OFSTED_ALERT_EMAIL_TO"),
            airflow_home=_path(e, "AIRFLOW_HOME", PROJECT_ROOT / ".airflow"),
            dbt_execution_mode=e.get("OFSTED_DBT_EXECUTION_MODE", "local").strip().lower() or "local",
            dbt_executable=_path(e, "OFSTED_DBT_EXECUTABLE", Path(sys.executable).parent / "dbt"),
        )

    def with_overrides(self, **kwargs) -> Settings:
        """A copy with some fields replaced (the CLI's --inbox / --warehouse flags)."""
        return replace(self, **{k: v for k, v in kwargs.items() if v is not None})


def get_settings() -> Settings:
    return Settings.from_env()
