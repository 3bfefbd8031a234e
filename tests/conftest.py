"""Session-wide environment for the whole suite: no telemetry, and Airflow configured to a
temporary AIRFLOW_HOME (its own SQLite DB, the project's dags/, no examples) before any test
module imports Airflow — so no test ever touches ~/airflow or the project's .airflow/."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="ofsted-test-airflow-"))

os.environ.update({
    "DO_NOT_TRACK": "1",
    "SCARF_ANALYTICS": "false",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parent.parent / "dags"),
    "AIRFLOW__COSMOS__CACHE_DIR": str(_HOME / "cosmos"),
})
