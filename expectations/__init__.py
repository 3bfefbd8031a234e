"""Great Expectations 1.x suites, one module per table, each building its suite in code.

Every suite module offers the same small interface, read by `expectations.validate`:

- `TABLE`: the warehouse table it describes (`raw.letters`, `marts.fct_inspections`, ...);
- `QUERY`: the DuckDB SQL that reads that table into a pandas DataFrame. Checks that span
  tables (finding counts, theme coverage, GSS codes) are *derived columns* computed here
  in SQL, so that a GX expectation - not the SQL - decides pass or fail;
- `ID_COLUMNS`: columns that name a failing row in alerts (a letter's `_sha256` and the
  authority as written, ...);
- `build_suite() -> ExpectationSuite`.

This package module imports nothing from GX (GX takes seconds to import): the DAG file can
import `expectations.validate` at parse time cheaply.
"""

from __future__ import annotations

import datetime as dt

RAW_SUITES: tuple[str, ...] = ("raw_letters", "raw_findings")
MART_SUITES: tuple[str, ...] = (
    "dim_authorities",
    "dim_inspectors",
    "dim_dates",
    "dim_themes",
    "fct_inspections",
    "fct_findings",
    "bridge_findings_themes",
)

# Plausible inspection dates: the unannounced inspections of contact, referral and
# assessment arrangements ran from 2009 to 2012; allow a year either side.
EARLIEST_DATE = dt.datetime(2008, 1, 1)
LATEST_DATE = dt.datetime(2014, 12, 31)
MAX_DAYS_TO_LETTER = 120  # the letter follows the end of the inspection within 120 days
MIN_FINDINGS, MAX_FINDINGS = 3, 40  # findings per letter a real letter has
MIN_THEME_COVERAGE = 0.7  # share of findings that carry at least one theme
