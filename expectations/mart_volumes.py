"""The marts' volumes night on night: one row per mart with its rows tonight and the fewest it
may have given the published warehouse (last night's, as analysts see it).

A night may add letters but should not lose many: a mart shrinking by more than
`max_row_count_drop_share` of its published rows fails (a truncated load, a broken join).
The marts' keys and relationships are dbt's tests.

Derived columns (`derive`, from the rules): `published_row_count` (null on the first night)
and `min_row_count` (at least 1, and the published rows less the allowed drop).
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from expectations import Rules

TABLES: tuple[str, ...] = (
    "marts.dim_authorities",
    "marts.dim_inspectors",
    "marts.dim_dates",
    "marts.dim_themes",
    "marts.fct_inspections",
    "marts.fct_findings",
    "marts.bridge_findings_themes",
    "marts.fct_letter_versions",
    "marts.fct_finding_versions",
)
TABLE = "marts.*"
ID_COLUMNS: tuple[str, ...] = ("table_name", "published_row_count")
QUERY = "\nunion all\n".join(
    f"select '{table}' as table_name, count(*) as row_count from {table}" for table in TABLES
)


def derive(frame: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """Add each mart's published rows and the fewest rows it may have tonight."""
    if frame.empty:
        return frame
    frame = frame.copy()
    frame["published_row_count"] = [rules.previous_rows.get(t) for t in frame["table_name"]]
    frame["min_row_count"] = [rules.min_rows(t) for t in frame["table_name"]]
    return frame


def build_suite(rules: Rules) -> gx.ExpectationSuite:
    drop = float(rules.thresholds["max_row_count_drop_share"])
    return gx.ExpectationSuite(
        name="mart_volumes",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(
                min_value=len(TABLES), max_value=len(TABLES), notes="every mart was counted",
            ),
            gxe.ExpectColumnValuesToBeBetween(column="row_count", min_value=1, notes="every mart has rows"),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="row_count", column_B="min_row_count", or_equal=True,
                notes=f"no mart shrinks by more than {drop:.0%} of its published rows",
            ),
        ],
    )
