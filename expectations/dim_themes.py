"""marts.dim_themes: one row per theme."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

TABLE = "marts.dim_themes"
ID_COLUMNS: tuple[str, ...] = ("theme_key",)
QUERY = "select * from marts.dim_themes"


def build_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="dim_themes",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToNotBeNull(column="theme_key"),
            gxe.ExpectColumnValuesToBeUnique(column="theme_key", notes="one row per theme"),
        ],
    )
