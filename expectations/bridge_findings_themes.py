"""marts.bridge_findings_themes: which themes each finding is about (many to many).

Derived columns (SQL): `finding_found` and `theme_found`, the keys matched in fct_findings
and dim_themes (null for a dangling bridge row).
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

TABLE = "marts.bridge_findings_themes"
ID_COLUMNS: tuple[str, ...] = ("finding_key", "theme_key")
QUERY = """
select
    b.*,
    f.finding_key as finding_found,
    t.theme_key as theme_found
from marts.bridge_findings_themes as b
left join marts.fct_findings as f on f.finding_key = b.finding_key
left join marts.dim_themes as t on t.theme_key = b.theme_key
order by b.finding_key, b.theme_key
"""


def build_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="bridge_findings_themes",
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="finding_key"),
            gxe.ExpectColumnValuesToNotBeNull(column="theme_key"),
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["finding_key", "theme_key"], notes="a theme is linked to a finding once",
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="finding_found", notes="bridge rows point at findings"),
            gxe.ExpectColumnValuesToNotBeNull(column="theme_found", notes="bridge rows point at themes"),
        ],
    )
