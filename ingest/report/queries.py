"""Every figure the report shows, read from the published warehouse's marts in plain SQL.

The connection is the same locked, read-only one as `ofsted sql` (`ingest.warehouse.query.readonly`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ingest.letters.models import CATEGORIES
from ingest.report.search import SearchData, read_search_data
from ingest.warehouse.query import QueryError, readonly
from ingest.warehouse.verdict import latest_run_id, read_verdict

TOP_AUTHORITIES_CHARTED = 20
PRIORITY_ACTIONS_LISTED = 200


@dataclass
class ReportData:
    warehouse: Path
    published_at: dt.datetime | None
    totals: dict[str, Any]
    years: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    themes: list[dict[str, Any]]
    unthemed_findings: int
    authorities: list[dict[str, Any]]
    priority_actions: list[dict[str, Any]]
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    recorded_dq: dict | None = None  # the latest run's verdict in audit.dq_checks, when present
    financial_years: list[dict[str, Any]] = field(default_factory=list)
    regions: list[dict[str, Any]] = field(default_factory=list)
    inspections: list[dict[str, Any]] = field(default_factory=list)  # every inspection, oldest first
    findings: list[dict[str, Any]] = field(default_factory=list)  # every finding, with its themes
    successors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by historic gss_code
    # letter versions of the corrected inspections (fct_letter_versions), by inspection_key
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # what each correction changed (fct_finding_changes), by (inspection_key, letter_version)
    changes: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    # each authority beside its region and England (authority_comparisons), by authority_key
    comparisons: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)
    search: SearchData | None = None  # what the warehouse computed for the search box


def _records(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


TOTALS_SQL = """
select
    count(*) as inspections,
    count(distinct authority_key) as authorities,
    coalesce(sum(strength_count + satisfactory_count + area_for_development_count
                 + priority_action_count), 0) as findings,
    coalesce(sum(priority_action_count), 0) as priority_actions,
    count(*) filter (where has_priority_action) as inspections_with_priority_action,
    count(*) filter (where authority_key is null) as unmatched_inspections,
    min(inspection_start_date) as first_inspection,
    max(inspection_start_date) as last_inspection,
    max(letter_date) as last_letter
from marts.fct_inspections
"""

YEARS_SQL = """
with per_year as (
    select
        year(inspection_start_date) as year,
        count(*) as inspections,
        count(*) filter (where has_priority_action) as with_priority_action,
        sum(strength_count) as strength,
        sum(satisfactory_count) as satisfactory,
        sum(area_for_development_count) as area_for_development,
        sum(priority_action_count) as priority_action
    from marts.fct_inspections
    group by 1
),
all_years as (
    select unnest(range(min(year), max(year) + 1)) as year from per_year
)
select
    all_years.year,
    coalesce(inspections, 0) as inspections,
    coalesce(with_priority_action, 0) as with_priority_action,
    coalesce(strength, 0) as strength,
    coalesce(satisfactory, 0) as satisfactory,
    coalesce(area_for_development, 0) as area_for_development,
    coalesce(priority_action, 0) as priority_action
from all_years
left join per_year using (year)
order by year
"""

CATEGORIES_SQL = """
select
    category,
    count(*) as findings,
    count(distinct inspection_key) as inspections
from marts.fct_findings
group by category
"""

THEMES_SQL = """
select
    themes.theme_name as theme,
    count(distinct bridge.finding_key) as findings,
""" + "".join(f"""    count(distinct bridge.finding_key) filter (where findings.category = '{c}') as {c},
""" for c in CATEGORIES) + """    count(distinct findings.inspection_key) as inspections
from marts.bridge_findings_themes as bridge
inner join marts.dim_themes as themes on bridge.theme_key = themes.theme_key
inner join marts.fct_findings as findings on bridge.finding_key = findings.finding_key
group by themes.theme_name
order by findings desc, theme
"""

UNTHEMED_SQL = """
select count(*) from marts.fct_findings as findings
where not exists (
    select 1 from marts.bridge_findings_themes as bridge where bridge.finding_key = findings.finding_key
)
"""

AUTHORITIES_SQL = """
select
    authorities.authority_name as authority,
    authorities.region,
    count(*) as inspections,
    count(*) filter (where inspections.has_priority_action) as inspections_with_priority_action,
    sum(inspections.priority_action_count) as priority_actions,
    sum(inspections.area_for_development_count) as areas_for_development,
    max(inspections.letter_date) filter (where inspections.has_priority_action) as latest_priority_letter
from marts.fct_inspections as inspections
inner join marts.dim_authorities as authorities on inspections.authority_key = authorities.authority_key
group by all
having sum(inspections.priority_action_count) > 0
order by priority_actions desc, inspections_with_priority_action desc, authority
"""

PRIORITY_ACTIONS_SQL = f"""
select
    coalesce(authorities.authority_name, inspections.authority_name_as_written) as authority,
    inspections.letter_date,
    inspections.inspection_start_date,
    findings.ordinal,
    findings.finding_text
from marts.fct_findings as findings
inner join marts.fct_inspections as inspections on findings.inspection_key = inspections.inspection_key
left join marts.dim_authorities as authorities on inspections.authority_key = authorities.authority_key
where findings.category = 'priority_action'
order by inspections.inspection_start_date desc, authority, findings.ordinal
limit {PRIORITY_ACTIONS_LISTED}
"""

UNMATCHED_SQL = """
select authority_name_as_written as name_as_written, count(*) as inspections,
       min(inspection_start_date) as first_inspection
from marts.fct_inspections
where authority_key is null
group by 1
order by inspections desc, name_as_written
"""


FINANCIAL_YEARS_SQL = """
select
    dates.financial_year,
    count(*) as inspections,
    count(distinct inspections.authority_key) as authorities,
    count(*) filter (where inspections.has_priority_action) as with_priority_action,
    sum(inspections.strength_count) as strength,
    sum(inspections.satisfactory_count) as satisfactory,
    sum(inspections.area_for_development_count) as area_for_development,
    sum(inspections.priority_action_count) as priority_action
from marts.fct_inspections as inspections
left join marts.dim_dates as dates on inspections.inspection_start_date = dates.date_day
group by all
order by dates.financial_year nulls last
"""

REGIONS_SQL = """
with per_region as (
select
    case when inspections.authority_key is null then 'Authority not matched'
         else coalesce(authorities.region, 'Region not known') end as region,
    count(distinct inspections.authority_key) as authorities,
    count(*) as inspections,
    count(*) filter (where inspections.has_priority_action) as with_priority_action,
    sum(inspections.priority_action_count) as priority_actions,
    sum(inspections.area_for_development_count) as areas_for_development,
    sum(inspections.finding_count) as findings
from marts.fct_inspections as inspections
left join marts.dim_authorities as authorities on inspections.authority_key = authorities.authority_key
group by all
)
select * from per_region
order by region = 'Authority not matched', region
"""

# Columns that later versions of the marts add; each page shows them when present.
OPTIONAL_INSPECTION_COLUMNS = ("letter_version", "is_corrected", "first_published_date", "_source_uri",
                               "_sha256", "source_format", "previous_inspection_key", "inspection_end_date")

FINDINGS_SQL = """
with themes as (
    select bridge.finding_key, list(themes.theme_name order by themes.theme_name) as themes
    from marts.bridge_findings_themes as bridge
    inner join marts.dim_themes as themes on bridge.theme_key = themes.theme_key
    group by bridge.finding_key
)
select findings.finding_key, findings.inspection_key, findings.category, findings.ordinal,
       findings.finding_text, coalesce(themes.themes, []) as themes
from marts.fct_findings as findings
left join themes on findings.finding_key = themes.finding_key
order by findings.inspection_key, findings.category, findings.ordinal
"""


def dq_from_audit(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The latest run's data-quality verdict (`audit.dq_checks`, through the one reader
    `ingest.warehouse.verdict`), with its checks per table; None when none is recorded."""
    run_id = latest_run_id(con)
    if run_id is None:
        return None
    verdict = read_verdict(con, run_id)
    per_table: dict[str, dict[str, Any]] = {}
    for table, status in con.execute(
            "select coalesce(table_name, '-'), status from audit.dq_checks where run_id = ?",
            [run_id]).fetchall():
        t = per_table.setdefault(table, {"table": table, "evaluated": 0, "failed": 0, "warned": 0})
        t["evaluated"] += 1
        t["failed"] += status == "fail"
        t["warned"] += status == "warn"
    at = verdict["checked_at"]
    return {**verdict, "validated_at": dt.datetime.fromisoformat(at) if isinstance(at, str) else at,
            "tables": sorted(per_table.values(), key=lambda t: t["table"])}


def _failure_ids(dq: dict) -> set[tuple]:
    return {(f.get("table"), f.get("expectation"), f.get("column")) for f in dq.get("failures") or []}


def choose_dq(given: dict | None, recorded: dict | None) -> dict | None:
    """The result to show: what the run passed in, or the recorded run when it says the same and more.

    The nightly run hands over its verdict; `audit.dq_checks` in the published warehouse holds
    every check of that run (raw tables, dbt's tests, marts). The recorded run is shown instead only when
    it is consistent with what was given (same verdict, every given failure in it), so a result
    from another run can never hide a failure.
    """
    if given is None or recorded is None:
        return given or recorded
    consistent = (bool(given.get("success")) == bool(recorded["success"])
                  and recorded["evaluated"] >= int(given.get("evaluated") or 0)
                  and _failure_ids(given) <= _failure_ids(recorded))
    if not consistent:
        return given
    return {**recorded, "data_docs": given.get("data_docs")}


def columns(con: duckdb.DuckDBPyConnection, table: str, schema: str = "marts") -> set[str]:
    """The columns `schema.table` has (empty when there is no such table)."""
    return {r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table]).fetchall()}


def inspections_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Every inspection with its authority and inspector; optional columns as null when absent."""
    have = columns(con, "fct_inspections")
    optional = ",\n    ".join(
        f"inspections.{c}" if c in have else f"null as {c}" for c in OPTIONAL_INSPECTION_COLUMNS)
    inspector = ("inspectors.inspector_name", "left join marts.dim_inspectors as inspectors "
                 "on inspections.inspector_key = inspectors.inspector_key") \
        if columns(con, "dim_inspectors") >= {"inspector_key", "inspector_name"} else ("null", "")
    authority_cols = columns(con, "dim_authorities")
    extra = ",\n    ".join(f"authorities.{c}" if c in authority_cols else f"null as {c}"
                           for c in ("gss_code", "dfe_la_code", "authority_type", "current_authority_names"))
    return f"""
select
    inspections.inspection_key,
    inspections.authority_key,
    inspections.authority_name_as_written,
    authorities.authority_name,
    authorities.region,
    {extra},
    inspections.inspection_start_date,
    inspections.letter_date,
    inspections.strength_count,
    inspections.satisfactory_count,
    inspections.area_for_development_count,
    inspections.priority_action_count,
    inspections.has_priority_action,
    {inspector[0]} as inspector_name,
    {optional}
from marts.fct_inspections as inspections
left join marts.dim_authorities as authorities on inspections.authority_key = authorities.authority_key
{inspector[1]}
order by inspections.inspection_start_date, inspections.inspection_key
"""


def successors(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """Today's authorities for each historic GSS code, with the share of it each took.

    From `marts.bridge_authority_successions` when the warehouse has it (weights), else from
    `dim_authorities.current_authority_names` (names only), else nothing.
    """
    have = columns(con, "bridge_authority_successions")
    if {"gss_code", "successor_gss_code", "successor_authority_name"} <= have:
        picked = [c if c in have else f"null as {c}" for c in
                  ("gss_code", "successor_gss_code", "successor_authority_name", "weight",
                   "weight_quality", "change_type", "change_date")]
        rows = _records(con, f"select {', '.join(picked)} from marts.bridge_authority_successions "
                             "order by gss_code, weight desc nulls last, successor_authority_name")
    elif {"gss_code", "current_authority_names"} <= columns(con, "dim_authorities"):
        rows = _records(con, """
            select distinct gss_code, unnest(current_authority_names) as successor_authority_name,
                   null as successor_gss_code, null as weight, null as weight_quality,
                   null as change_type, null as change_date
            from marts.dim_authorities where gss_code is not null
            order by gss_code, successor_authority_name""")
    else:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["gss_code"], []).append(r)
    return out


VERSIONS_SQL = """
select versions.inspection_key, versions.letter_version, versions.letter_date, versions.inspector_name,
       versions.finding_count, versions.findings_added_count, versions.findings_removed_count,
       versions.findings_reworded_count, versions._sha256, versions._source_uri
from marts.fct_letter_versions as versions
where versions.inspection_key in (
    select inspection_key from marts.fct_letter_versions where letter_version > 1)
order by versions.inspection_key, versions.letter_version
"""

CHANGES_SQL = """
select inspection_key, letter_version, change_type, category, old_ordinal, new_ordinal,
       old_finding_text, new_finding_text, similarity
from marts.fct_finding_changes
order by inspection_key, letter_version, category, coalesce(new_ordinal, old_ordinal), change_type
"""

COMPARISONS_SQL = """
select * from marts.authority_comparisons
order by authority_key, measure_order, subject
"""


def _grouped(rows: list[dict[str, Any]], *key: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r[key[0]] if len(key) == 1 else tuple(r[k] for k in key), []).append(r)
    return out


def corrections(con: duckdb.DuckDBPyConnection) -> tuple[dict, dict]:
    """The versions of every corrected inspection and what each correction changed (empty when
    the warehouse predates fct_letter_versions / fct_finding_changes)."""
    versions = _grouped(_records(con, VERSIONS_SQL), "inspection_key") \
        if columns(con, "fct_letter_versions") else {}
    changes = _grouped(_records(con, CHANGES_SQL), "inspection_key", "letter_version") \
        if columns(con, "fct_finding_changes") else {}
    return versions, changes


def comparisons(con: duckdb.DuckDBPyConnection) -> dict[Any, list[dict[str, Any]]]:
    """authority_comparisons by authority_key (empty when the warehouse has no such mart)."""
    if not columns(con, "authority_comparisons"):
        return {}
    return _grouped(_records(con, COMPARISONS_SQL), "authority_key")


def load_report_data(con: duckdb.DuckDBPyConnection, warehouse: Path) -> ReportData:
    """Every figure the report shows, read from the marts in a handful of queries."""
    totals = _records(con, TOTALS_SQL)[0]
    by_category = {r["category"]: r for r in _records(con, CATEGORIES_SQL)}
    categories = [
        {"category": c, "findings": by_category.get(c, {}).get("findings", 0),
         "inspections": by_category.get(c, {}).get("inspections", 0)}
        for c in CATEGORIES
    ]
    categories += [r for c, r in sorted(by_category.items()) if c not in CATEGORIES]
    stat = warehouse.stat()
    versions, changes = corrections(con)
    return ReportData(
        warehouse=warehouse,
        published_at=dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.UTC),
        totals=totals,
        years=_records(con, YEARS_SQL) if totals["inspections"] else [],
        categories=categories,
        themes=_records(con, THEMES_SQL),
        unthemed_findings=con.execute(UNTHEMED_SQL).fetchone()[0],
        authorities=_records(con, AUTHORITIES_SQL),
        priority_actions=_records(con, PRIORITY_ACTIONS_SQL),
        unmatched=_records(con, UNMATCHED_SQL),
        recorded_dq=dq_from_audit(con),
        financial_years=(_records(con, FINANCIAL_YEARS_SQL)
                         if totals["inspections"] and "financial_year" in columns(con, "dim_dates") else []),
        regions=_records(con, REGIONS_SQL) if totals["inspections"] else [],
        inspections=_records(con, inspections_sql(con)),
        findings=_records(con, FINDINGS_SQL),
        successors=successors(con),
        versions=versions,
        changes=changes,
        comparisons=comparisons(con),
        search=read_search_data(con),
    )


def read_report_data(warehouse: Path) -> ReportData:
    with readonly(warehouse) as con:
        missing = [t for t in ("fct_inspections", "fct_findings", "dim_authorities", "dim_themes",
                               "bridge_findings_themes")
                   if not con.execute("select count(*) from information_schema.tables "
                                      "where table_schema = 'marts' and table_name = ?", [t]).fetchone()[0]]
        if missing:
            raise QueryError(f"{warehouse} has no marts.{missing[0]}; run `make run` first")
        return load_report_data(con, warehouse)
