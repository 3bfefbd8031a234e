"""raw.findings: one row per finding of a letter, as the loader wrote it.

Its structure (one row per letter, category and ordinal; known categories; a letter for every
finding) is dbt's tests on the staging model. The ingest contract here: findings were loaded
at all (findings per letter are judged on raw_letters). Findings of quarantined documents
(`raw.quarantined_documents`) are not judged, as on raw_letters.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from expectations import Rules

TABLE = "raw.findings"
ID_COLUMNS: tuple[str, ...] = ("_sha256", "category", "ordinal")
QUERY = """
select f._sha256, f.category, f.ordinal
from raw.findings as f
where f._sha256 not in (select q.sha256 from raw.quarantined_documents as q)
"""


def build_suite(rules: Rules) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="raw_findings",
        expectations=[gxe.ExpectTableRowCountToBeBetween(min_value=1, notes="the warehouse holds findings")],
    )
