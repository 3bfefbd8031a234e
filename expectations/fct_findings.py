"""marts.fct_findings: one row per finding.

Derived columns (SQL): `inspection_found` (the inspection_key matched in fct_inspections)
and `has_theme` (1 when bridge_findings_themes gives the finding at least one theme): its
mean is the theme coverage.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from expectations import MIN_THEME_COVERAGE
from ingest.letters.models import CATEGORIES

TABLE = "marts.fct_findings"
ID_COLUMNS: tuple[str, ...] = ("finding_key", "inspection_key", "category")
QUERY = """
with themed as (
    select distinct finding_key
    from marts.bridge_findings_themes
)
select
    f.*,
    i.inspection_key as inspection_found,
    case when t.finding_key is null then 0 else 1 end as has_theme
from marts.fct_findings as f
left join marts.fct_inspections as i on i.inspection_key = f.inspection_key
left join themed as t on t.finding_key = f.finding_key
order by f.finding_key
"""


def build_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="fct_findings",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToNotBeNull(column="finding_key"),
            gxe.ExpectColumnValuesToBeUnique(column="finding_key", notes="one row per finding"),
            gxe.ExpectColumnValuesToNotBeNull(
                column="inspection_found", notes="every finding belongs to an inspection in fct_inspections",
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="category", value_set=list(CATEGORIES), notes="no unknown finding category",
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="category"),
            gxe.ExpectColumnMeanToBeBetween(
                column="has_theme", min_value=MIN_THEME_COVERAGE, max_value=1,
                notes=f"theme coverage: at least {MIN_THEME_COVERAGE:.0%} of findings have a theme",
            ),
        ],
    )
