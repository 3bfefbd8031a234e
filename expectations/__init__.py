"""Great Expectations 1.x suites, one module per table, each building its suite in code.

GX owns two kinds of rule here; dbt owns the structural ones (keys, relationships, accepted
values, counts that tie out: the tests beside the models):

- the ingest contract on the raw tables, checked before dbt runs, on what is raw only: the
  parser found a letter date (a warning), dates fall in the programme's years, a plausible
  number of findings. Never versions (first, current, superseded letters) nor the 120-day
  rule: dbt computes versions once (`int_letters_versioned`) and judges the rule there
  (`assert_letter_follows_inspection`);
- distributions and volumes on the marts, checked before publishing: no mart shrinks night
  on night by more than `max_row_count_drop_share` of the published warehouse's rows, the
  shares of inspections with an unmatched authority and of findings without a theme, and the
  median days from inspection to first letter (dbt's version columns, read, not recomputed).

An expectation built with `severity="warning"` is a warning: reported in the night's verdict
(`audit.dq_checks`), never failing the night.

The thresholds are the `vars:` of dbt_project/dbt_project.yml (`ingest.warehouse.rules`).

Every suite module offers the same small interface, read by `expectations.validate`:

- `TABLE`: the warehouse table it describes (`raw.letters`, `marts.fct_inspections`, ...;
  `marts.*` for `mart_volumes`, one row per mart);
- `QUERY`: the DuckDB SQL that reads that table into a pandas DataFrame. Derived columns (a
  letter's findings, whether an inspection's authority matched) are computed here in SQL so
  that a GX expectation - not the SQL - decides pass or fail;
- `ID_COLUMNS`: columns that name a failing row in alerts (a letter's `_sha256` and the
  authority as written, ...);
- `build_suite(rules: Rules) -> ExpectationSuite`;
- optionally `derive(frame, rules) -> DataFrame`: columns that come from the rules rather than
  the warehouse (`mart_volumes`: each mart's published rows).

This package module imports nothing from GX (GX takes seconds to import): the DAG file can
import `expectations.validate` at parse time cheaply.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

RAW_SUITES: tuple[str, ...] = ("raw_letters", "raw_findings")
MART_SUITES: tuple[str, ...] = ("mart_volumes", "fct_inspections", "fct_findings")


@dataclass(frozen=True)
class Rules:
    """What the suites are built from: the thresholds (dbt vars) and, for the volume checks,
    each table's rows in the published warehouse (absent on the first night)."""

    thresholds: dict[str, Any]
    previous_rows: dict[str, int] = field(default_factory=dict)

    def date(self, name: str) -> dt.datetime:
        """A date threshold as a datetime (DuckDB dates reach pandas as datetime64)."""
        return dt.datetime.combine(dt.date.fromisoformat(str(self.thresholds[name])), dt.time())

    def min_rows(self, table: str, floor: int = 1) -> int:
        """At least `floor` rows, and no fewer than the published rows less the allowed drop."""
        previous = self.previous_rows.get(table)
        if not previous:
            return floor
        drop = float(self.thresholds["max_row_count_drop_share"])
        return max(floor, math.ceil(previous * (1 - drop)))

