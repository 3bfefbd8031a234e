"""raw.letters: one row per distinct letter, as the loader wrote it.

Only current letters are judged: a letter replaced by a later version fetched from the same
URI (`_superseded_by` set) is history, kept but not published.

Derived columns (SQL): `findings_loaded` (rows in raw.findings for the letter) and
`days_end_to_letter` (letter date minus inspection end date).
"""

from __future__ import annotations

import datetime as dt

import great_expectations as gx
import great_expectations.expectations as gxe

from expectations import (
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_DAYS_TO_LETTER,
    MAX_FINDINGS,
    MIN_FINDINGS,
)

TABLE = "raw.letters"
ID_COLUMNS: tuple[str, ...] = ("_sha256", "authority_name")
QUERY = """
with finding_counts as (
    select _sha256, count(*) as findings_loaded
    from raw.findings
    group by _sha256
)
select
    l._sha256,
    l.authority_name,
    l.letter_date,
    l.inspection_start_date,
    l.inspection_end_date,
    l.finding_count,
    coalesce(fc.findings_loaded, 0) as findings_loaded,
    datediff('day', l.inspection_end_date, l.letter_date) as days_end_to_letter
from raw.letters as l
left join finding_counts as fc on fc._sha256 = l._sha256
where l._superseded_by is null
order by l._sha256
"""


def build_suite() -> gx.ExpectationSuite:
    date_cols = ("letter_date", "inspection_start_date", "inspection_end_date")
    latest_letter = LATEST_DATE + dt.timedelta(days=MAX_DAYS_TO_LETTER)
    return gx.ExpectationSuite(
        name="raw_letters",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=1, notes="the warehouse holds letters"),
            gxe.ExpectColumnValuesToNotBeNull(column="_sha256"),
            gxe.ExpectColumnValuesToBeUnique(column="_sha256", notes="one row per distinct file"),
            *(
                gxe.ExpectColumnValuesToNotBeNull(column=c, notes="every letter has its dates")
                for c in date_cols
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="inspection_start_date", min_value=EARLIEST_DATE, max_value=LATEST_DATE,
                notes="inspections took place 2008-2014",
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="inspection_end_date", min_value=EARLIEST_DATE, max_value=LATEST_DATE,
                notes="inspections took place 2008-2014",
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="letter_date", min_value=EARLIEST_DATE, max_value=latest_letter,
                notes="letters were written 2008-2014 (or within 120 days after)",
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="inspection_end_date", column_B="inspection_start_date", or_equal=True,
                notes="an inspection ends on or after the day it starts",
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="days_end_to_letter", min_value=0, max_value=MAX_DAYS_TO_LETTER,
                notes="the letter is dated 0-120 days after the inspection ended",
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="findings_loaded", min_value=MIN_FINDINGS, max_value=MAX_FINDINGS,
                notes="a letter has between 3 and 40 findings",
            ),
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="finding_count", column_B="findings_loaded",
                notes="raw.letters.finding_count equals the letter's rows in raw.findings",
            ),
        ],
    )
