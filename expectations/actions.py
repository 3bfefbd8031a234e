"""The Checkpoint Action that writes a validation's results to `audit.dq_checks` (the night's
one data-quality verdict; dbt's tests write their rows there too).

Imports GX (a `ValidationAction` is a GX model): only `expectations.validate` imports it, at run
time, so the DAG file still parses without importing GX.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from great_expectations.checkpoint import ValidationAction
from great_expectations.checkpoint.checkpoint import CheckpointResult

from expectations.results import TableInfo, result_rows, write_results


class WriteDQResultsAction(ValidationAction):
    """One `audit.dq_checks` row per expectation of each validation result, replacing the rows
    this run already wrote for that suite (re-running a night's validation is safe)."""

    type: Literal["ofsted_write_dq_results"] = "ofsted_write_dq_results"
    warehouse: str
    run_id: str
    validated_at: dt.datetime
    table: str
    id_columns: list[str]
    problem: str | None = None  # why the table could not be read
    stage: str = "raw"  # raw (before dbt) | marts (after it)
    data_docs: str | None = None  # where the failing rows are shown

    def run(self, checkpoint_result: CheckpointResult, action_context=None) -> dict:
        info = TableInfo(self.table, tuple(self.id_columns), self.problem)
        written = {}
        for result in checkpoint_result.run_results.values():
            rows = result_rows(info, result.suite_name, self.stage, result, self.run_id, self.validated_at,
                               self.data_docs)
            write_results(Path(self.warehouse), self.run_id, (result.suite_name,), rows)
            written[result.suite_name] = len(rows)
        return {"rows_written": written}
