"""marts.dim_inspectors: one row per inspector."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

TABLE = "marts.dim_inspectors"
ID_COLUMNS: tuple[str, ...] = ("inspector_key",)
QUERY = "select * from marts.dim_inspectors"


def build_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="dim_inspectors",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToNotBeNull(column="inspector_key"),
            gxe.ExpectColumnValuesToBeUnique(column="inspector_key", notes="one row per inspector"),
        ],
    )
