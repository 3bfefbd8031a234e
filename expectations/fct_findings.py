"""marts.fct_findings: one row per finding.

Keys, relationships and categories are dbt's tests. Here: the share of findings the theme
rules give no theme.

Derived column (SQL): `has_no_theme` (1 when bridge_findings_themes gives the finding no theme):
its mean is the share of findings without a theme.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from expectations import Rules

TABLE = "marts.fct_findings"
ID_COLUMNS: tuple[str, ...] = ("finding_key", "inspection_key", "category")
QUERY = """
with themed as (
    select distinct finding_key
    from marts.bridge_findings_themes
)
select
    f.finding_key,
    f.inspection_key,
    f.category,
    case when t.finding_key is null then 1 else 0 end as has_no_theme
from marts.fct_findings as f
left join themed as t on t.finding_key = f.finding_key
order by f.finding_key
"""


def build_suite(rules: Rules) -> gx.ExpectationSuite:
    share = float(rules.thresholds["max_share_findings_without_theme"])
    return gx.ExpectationSuite(
        name="fct_findings",
        expectations=[
            gxe.ExpectColumnMeanToBeBetween(
                column="has_no_theme", min_value=0, max_value=share,
                notes=f"at most {share:.0%} of findings have no theme",
            ),
        ],
    )
