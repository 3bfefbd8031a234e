"""raw.findings: one row per finding of a letter.

Derived column (SQL): `letter_sha256`, the matching raw.letters key (null for an orphan).
Findings of superseded letters (see raw_letters) are not judged.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from ingest.letters.models import CATEGORIES

TABLE = "raw.findings"
ID_COLUMNS: tuple[str, ...] = ("_sha256", "category", "ordinal")
QUERY = """
select
    f._sha256,
    f.category,
    f.heading,
    f.ordinal,
    f.finding_text,
    l._sha256 as letter_sha256
from raw.findings as f
left join raw.letters as l on l._sha256 = f._sha256
where l._superseded_by is null
order by f._sha256, f.category, f.ordinal
"""


def build_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="raw_findings",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=1, notes="the warehouse holds findings"),
            gxe.ExpectColumnValuesToNotBeNull(column="category"),
            gxe.ExpectColumnValuesToBeInSet(
                column="category", value_set=list(CATEGORIES), notes="no unknown finding category",
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="finding_text"),
            gxe.ExpectColumnValuesToBeBetween(column="ordinal", min_value=1, notes="ordinals are 1-based"),
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["_sha256", "category", "ordinal"], notes="one row per finding",
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column="letter_sha256", notes="every finding belongs to a letter in raw.letters",
            ),
        ],
    )
