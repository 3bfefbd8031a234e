"""marts.dim_dates: one row per calendar day (with financial and academic years)."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

TABLE = "marts.dim_dates"
ID_COLUMNS: tuple[str, ...] = ("date_day",)
QUERY = "select * from marts.dim_dates order by date_day"


def build_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="dim_dates",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToNotBeNull(column="date_day"),
            gxe.ExpectColumnValuesToBeUnique(column="date_day", notes="one row per calendar day"),
        ],
    )
