"""marts.fct_inspections: one row per inspection.

Keys, relationships and finding counts that tie out are dbt's tests. Here, distributions:
the share of inspections whose authority the register does not match, the median days from
inspection to its first published letter (`days_from_inspection_to_first_letter`: dbt's
versions decide which letter is first; a correction re-dated months later does not move it).

Derived columns (SQL): `has_unmatched_authority` (1 when the inspection's authority has no GSS
code in dim_authorities: its mean is the unmatched share) and `letter_authority_name` (the
authority as the letter wrote it, from raw.letters).
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from expectations import Rules

TABLE = "marts.fct_inspections"
ID_COLUMNS: tuple[str, ...] = ("inspection_key", "letter_authority_name", "inspection_start_date")
QUERY = """
select
    i.inspection_key,
    i.inspection_start_date,
    i.days_from_inspection_to_first_letter,
    l.authority_name as letter_authority_name,
    case when a.gss_code is null then 1 else 0 end as has_unmatched_authority
from marts.fct_inspections as i
left join marts.dim_authorities as a on a.authority_key = i.authority_key
left join raw.letters as l on l._sha256 = i._sha256
order by i.inspection_key
"""


def build_suite(rules: Rules) -> gx.ExpectationSuite:
    unmatched = float(rules.thresholds["max_share_unmatched_authorities"])
    median_days = int(rules.thresholds["max_median_days_inspection_to_letter"])
    return gx.ExpectationSuite(
        name="fct_inspections",
        expectations=[
            gxe.ExpectColumnMeanToBeBetween(
                column="has_unmatched_authority", min_value=0, max_value=unmatched,
                notes=f"at most {unmatched:.0%} of inspections have an authority the register lacks",
            ),
            gxe.ExpectColumnMedianToBeBetween(
                column="days_from_inspection_to_first_letter", min_value=0, max_value=median_days,
                notes=f"the median first letter follows its inspection within {median_days} days",
            ),
        ],
    )
