"""marts.dim_authorities: one row per local authority (2010's and today's successors)."""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

TABLE = "marts.dim_authorities"
ID_COLUMNS: tuple[str, ...] = ("authority_key", "authority_name")
QUERY = "select * from marts.dim_authorities"


def build_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="dim_authorities",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToNotBeNull(column="authority_key"),
            gxe.ExpectColumnValuesToBeUnique(column="authority_key", notes="one row per authority"),
            gxe.ExpectColumnValuesToNotBeNull(column="authority_name"),
            gxe.ExpectColumnValuesToMatchRegex(
                column="gss_code", regex=r"^[EW]\d{8}$",
                notes="a GSS code is E or W and eight digits (nulls are judged on fct_inspections)",
            ),
        ],
    )
