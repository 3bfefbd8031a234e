"""raw.letters: one row per distinct letter, as the loader wrote it - the ingest contract.

Only letters the warehouse will publish are judged: a letter replaced by a later version
fetched from the same URI (`_superseded_by` set) is history, and a document the data team
quarantined (its latest `raw.quarantine` action) is out until released, so a quarantine
clears a raw-DQ failure at the next build. Keys and not-null inspection dates are dbt's tests
on the staging model; here, whether what the parser read is plausible.

Derived columns (SQL): `findings_loaded` (rows in raw.findings for the letter) and
`days_end_to_letter` (letter date minus inspection end date), for the first letter of an
inspection only (same authority as written and start date; earliest letter date, then
earliest fetched): the timing rule judges version 1, and a re-dated correction is a later
version whose lag is NULL here (not judged).
"""

from __future__ import annotations

import datetime as dt

import great_expectations as gx
import great_expectations.expectations as gxe

from expectations import Rules

TABLE = "raw.letters"
ID_COLUMNS: tuple[str, ...] = ("_sha256", "authority_name")
QUERY = """
with finding_counts as (
    select _sha256, count(*) as findings_loaded
    from raw.findings
    group by _sha256
),

quarantined as (
    select sha256
    from raw.quarantine
    qualify row_number() over (
        partition by sha256 order by acted_at desc, (action = 'quarantine') desc
    ) = 1 and action = 'quarantine'
),

published as (
    select
        l.*,
        row_number() over (
            partition by lower(trim(l.authority_name)), l.inspection_start_date
            order by l.letter_date nulls last, l._fetched_at, l._sha256
        ) as letter_version
    from raw.letters as l
    where l._superseded_by is null
        and l._sha256 not in (select q.sha256 from quarantined as q)
)

select
    l._sha256,
    l.authority_name,
    l.letter_date,
    l.inspection_start_date,
    l.inspection_end_date,
    coalesce(fc.findings_loaded, 0) as findings_loaded,
    case
        when l.letter_version = 1 then datediff('day', l.inspection_end_date, l.letter_date)
    end as days_end_to_letter
from published as l
left join finding_counts as fc on fc._sha256 = l._sha256
order by l._sha256
"""


def build_suite(rules: Rules) -> gx.ExpectationSuite:
    earliest, latest = rules.date("earliest_inspection_date"), rules.date("latest_inspection_date")
    max_days = int(rules.thresholds["max_days_inspection_to_letter"])
    fewest = int(rules.thresholds["min_findings_per_letter"])
    most = int(rules.thresholds["max_findings_per_letter"])
    years = f"{earliest.year}-{latest.year}"
    return gx.ExpectationSuite(
        name="raw_letters",
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=1, notes="the warehouse holds letters"),
            gxe.ExpectColumnValuesToNotBeNull(
                column="letter_date", notes="the parser found the letter's date",
            ),
            *(
                gxe.ExpectColumnValuesToBeBetween(
                    column=column, min_value=earliest, max_value=latest,
                    notes=f"inspections took place {years}",
                )
                for column in ("inspection_start_date", "inspection_end_date")
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="letter_date", min_value=earliest, max_value=latest + dt.timedelta(days=max_days),
                notes=f"letters were written {years} (or within {max_days} days after)",
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="days_end_to_letter", min_value=0, max_value=max_days,
                notes=f"the letter is dated 0-{max_days} days after the inspection ended",
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="findings_loaded", min_value=fewest, max_value=most,
                notes=f"a letter has between {fewest} and {most} findings",
            ),
        ],
    )
