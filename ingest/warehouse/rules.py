"""Data-quality thresholds: the `vars:` of dbt_project/dbt_project.yml, the one place they live.

dbt reads them with `var(...)` in its tests; Great Expectations (`expectations/`) reads them
here, so a threshold changed in dbt_project.yml changes both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ingest.settings import Settings

# The vars the data-quality checks need: a project without one of them is misconfigured.
REQUIRED = (
    "earliest_inspection_date",
    "latest_inspection_date",
    "max_days_inspection_to_letter",
    "min_findings_per_letter",
    "max_findings_per_letter",
    "max_share_findings_without_theme",
    "max_share_unmatched_authorities",
    "max_median_days_inspection_to_letter",
    "max_row_count_drop_share",
)


class RulesError(RuntimeError):
    """dbt_project.yml is missing, unreadable or lacks a threshold; the message is one line."""


def dq_thresholds(settings: Settings) -> dict[str, Any]:
    """The `vars:` block of the dbt project (every var, at least those in REQUIRED)."""
    path = Path(settings.dbt_project_dir) / "dbt_project.yml"
    try:
        project = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"cannot read DQ thresholds from {path}: {' '.join(str(exc).split())}") from exc
    found = (project or {}).get("vars") if isinstance(project, dict) else None
    if not isinstance(found, dict):
        raise RulesError(f"{path} has no vars: block (the DQ thresholds live there)")
    missing = [name for name in REQUIRED if name not in found]
    if missing:
        raise RulesError(f"{path} vars: lacks {', '.join(missing)}")
    return dict(found)
