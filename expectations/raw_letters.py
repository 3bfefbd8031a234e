"""raw.letters: one row per distinct letter, as the loader wrote it - the ingest contract.

Only what is raw is judged here (columns, types, ranges, what the parser found): never which
letter is an inspection's first, current or n-th version, nor the 120-day letter rule. Those
need versions, and versions exist only in dbt (`int_letters_versioned`; the rule is the dbt
test `assert_letter_follows_inspection`), which runs after this suite.

Every letter is judged except a document the data team has quarantined
(`raw.quarantined_documents`, the one quarantine rule), so a quarantine clears a raw-DQ
failure at the next build. A letter replaced at its URI (`_superseded_by`) is still judged:
dbt keeps it as an earlier version of its inspection. Keys and not-null inspection dates are
dbt's tests on the staging model.

Derived column (SQL): `findings_loaded` (rows in raw.findings for the letter).

An undated letter (`letter_date` null: the parser found no date) is a WARNING, not a failure:
dbt places it in its inspection's versions (before the dated ones) and the night goes on.
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
)

select
    l._sha256,
    l.authority_name,
    l.letter_date,
    l.inspection_start_date,
    l.inspection_end_date,
    coalesce(fc.findings_loaded, 0) as findings_loaded
from raw.letters as l
left join finding_counts as fc on fc._sha256 = l._sha256
where l._sha256 not in (select q.sha256 from raw.quarantined_documents as q)
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
                column="letter_date", severity="warning",
                notes="the parser found the letter's date (an undated letter is kept: it comes first "
                      "among its inspection's versions)",
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
                column="findings_loaded", min_value=fewest, max_value=most,
                notes=f"a letter has between {fewest} and {most} findings",
            ),
        ],
    )
