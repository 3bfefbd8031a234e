"""marts.fct_inspections: one row per inspection.

Derived columns (SQL): `authority_gss_code` (from dim_authorities through authority_key),
`letter_authority_name` (the authority as the letter wrote it, from raw.letters) and
`fct_findings_<category>_count` (rows per category in fct_findings).
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from expectations import MAX_DAYS_TO_LETTER
from ingest.letters.models import CATEGORIES

TABLE = "marts.fct_inspections"
ID_COLUMNS: tuple[str, ...] = ("inspection_key", "letter_authority_name", "inspection_start_date")
QUERY = """
with finding_counts as (
    select
        inspection_key,
        count(*) filter (where category = 'strength') as fct_findings_strength_count,
        count(*) filter (where category = 'satisfactory') as fct_findings_satisfactory_count,
        count(*) filter (where category = 'area_for_development')
            as fct_findings_area_for_development_count,
        count(*) filter (where category = 'priority_action') as fct_findings_priority_action_count
    from marts.fct_findings
    group by inspection_key
)
select
    i.*,
    a.gss_code as authority_gss_code,
    l.authority_name as letter_authority_name,
    coalesce(fc.fct_findings_strength_count, 0) as fct_findings_strength_count,
    coalesce(fc.fct_findings_satisfactory_count, 0) as fct_findings_satisfactory_count,
    coalesce(fc.fct_findings_area_for_development_count, 0) as fct_findings_area_for_development_count,
    coalesce(fc.fct_findings_priority_action_count, 0) as fct_findings_priority_action_count
from marts.fct_inspections as i
left join marts.dim_authorities as a on a.authority_key = i.authority_key
left join raw.letters as l on l._sha256 = i._sha256
left join finding_counts as fc on fc.inspection_key = i.inspection_key
order by i.inspection_key
"""


def build_suite() -> gx.ExpectationSuite:
    counts_agree = [
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A=f"{c}_count", column_B=f"fct_findings_{c}_count",
            notes=f"{c}_count equals the inspection's {c} rows in fct_findings",
        )
        for c in CATEGORIES
    ]
    return gx.ExpectationSuite(
        name="fct_inspections",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            gxe.ExpectColumnValuesToNotBeNull(column="inspection_key"),
            gxe.ExpectColumnValuesToBeUnique(column="inspection_key", notes="one row per inspection"),
            gxe.ExpectColumnValuesToNotBeNull(
                column="authority_gss_code",
                notes="every inspection has an authority with a GSS code (unmatched names fail here)",
            ),
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["authority_key", "inspection_start_date"],
                notes="no authority is inspected twice starting the same day",
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="inspection_end_date", column_B="inspection_start_date", or_equal=True,
                notes="an inspection ends on or after the day it starts",
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="days_from_inspection_to_letter", min_value=0, max_value=MAX_DAYS_TO_LETTER,
                notes="the letter follows the inspection within 120 days",
            ),
            *counts_agree,
        ],
    )
