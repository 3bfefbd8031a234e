"""A small, valid work warehouse for the data-quality tests.

Raw tables come from the real contract (`ingest/raw/schema.sql`); the marts are built from them
here in SQL with the column names of issue #4 (the dbt models' contract), so that every
count agrees. Tests then break one rule with one SQL statement and check that exactly the
expectation guarding it fails.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from ingest.raw.db import SCHEMA_SQL  # noqa: E402

# (authority as the letter writes it, inspection start, letter days after end, inspector)
LETTERS = [
    ("Dudley Metropolitan Borough Council", dt.date(2010, 3, 9), 21, "Jane Smith HMI"),
    ("Dorset County Council", dt.date(2010, 6, 15), 30, "Peter Jones HMI"),
    ("City of York Council", dt.date(2011, 1, 18), 14, "Jane Smith HMI"),
    ("Royal Borough of Kingston upon Thames", dt.date(2011, 9, 6), 45, "Asha Patel HMI"),
    ("Dudley Metropolitan Borough Council", dt.date(2012, 2, 7), 28, "Asha Patel HMI"),
]

# (authority_key, gss_code, dfe_la_code, authority_name, authority_type, region, match word)
AUTHORITIES = [
    (-1, None, None, "Unknown authority", "unknown", None, None),
    (1, "E08000027", "332", "Dudley", "metropolitan district", "West Midlands", "Dudley"),
    (2, "E10000009", "835", "Dorset", "county", "South West", "Dorset"),
    (3, "E06000014", "816", "York", "unitary authority", "Yorkshire and the Humber", "York"),
    (4, "E09000021", "314", "Kingston upon Thames", "london borough", "London", "Kingston"),
]

FINDINGS = [  # per letter: (category, heading, text)
    ("strength", "Strengths", "Management oversight of referrals is strong and consistent."),
    ("strength", "Strengths", "Multi-agency working with the police is effective."),
    ("satisfactory", "Satisfactory practice", "Thresholds for contact screening are understood."),
    ("area_for_development", "Areas for development", "Supervision is not recorded on case files."),
    ("area_for_development", "Areas for development", "Timeliness of initial assessments varies."),
    ("priority_action", "Priority actions", "Reduce the number of unallocated cases."),
]

THEMES = [  # (theme_key, theme_name, pattern)
    (1, "management oversight", "oversight"),
    (2, "multi-agency working", "multi-agency"),
    (3, "thresholds and contact screening", "threshold"),
    (4, "supervision", "supervision"),
    (5, "timeliness of assessments", "timeliness"),
]


def sha(i: int) -> str:
    return f"{i:02d}" + "ab" * 31


def build_raw(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA_SQL.read_text())
    for i, (authority, start, days, inspector) in enumerate(LETTERS, start=1):
        end = start + dt.timedelta(days=1)
        con.execute(
            "insert into raw.letters (_sha256, _content_hash, _source_uri, _archive_path, _fetched_at,"
            " _parsed_at, _parser_version, source_format, letter_date, recipient_name, recipient_title,"
            " authority_name, inspection_start_date, inspection_end_date, inspector_name, finding_count)"
            " values (?, ?, ?, ?, now(), now(), 'test-1', 'text', ?, ?, ?, ?, ?, ?, ?, ?)",
            [sha(i), f"content-{i}", f"file:///letters/{i}.txt", f"{sha(i)[:2]}/{sha(i)}.txt",
             end + dt.timedelta(days=days), "Director", "Director of Children's Services", authority,
             start, end, inspector, len(FINDINGS)],
        )
        ordinals: dict[str, int] = {}
        for category, heading, text in FINDINGS:
            ordinals[category] = ordinals.get(category, 0) + 1
            con.execute(
                "insert into raw.findings (_sha256, category, heading, ordinal, finding_text)"
                " values (?, ?, ?, ?, ?)",
                [sha(i), category, heading, ordinals[category], text],
            )


MARTS_SQL = """
create schema if not exists marts;

create or replace table marts.dim_authorities as
select authority_key, gss_code, dfe_la_code, authority_name, authority_type, region,
       date '1974-04-01' as valid_from, cast(null as date) as valid_to, match_word
from authorities_src;

create or replace table marts.dim_inspectors as
select row_number() over (order by inspector_name) as inspector_key, inspector_name
from (select distinct inspector_name from raw.letters);

create or replace table marts.dim_dates as
select cast(d as date) as date_day,
       year(d) as calendar_year
from range(timestamp '2009-01-01', timestamp '2013-12-31', interval 1 day) as t(d);

create or replace table marts.dim_themes as
select theme_key, theme_name from themes_src;

create or replace table marts.fct_findings as
select row_number() over (order by f._sha256, f.category, f.ordinal) as finding_key,
       dense_rank() over (order by f._sha256) as inspection_key,
       coalesce(a.authority_key, -1) as authority_key,
       f.category, f.heading, f.ordinal, f.finding_text
from raw.findings as f
join raw.letters as l on l._sha256 = f._sha256
left join authorities_src as a on contains(l.authority_name, a.match_word);

create or replace table marts.fct_inspections as
select dense_rank() over (order by l._sha256) as inspection_key,
       coalesce(a.authority_key, -1) as authority_key,
       i.inspector_key,
       l.letter_date, l.inspection_start_date, l.inspection_end_date,
       datediff('day', l.inspection_end_date, l.letter_date) as days_from_inspection_to_letter,
       datediff('day', l.inspection_end_date, l.letter_date) as days_from_inspection_to_first_letter,
       (select count(*) from raw.findings f where f._sha256 = l._sha256 and f.category = 'strength')
           as strength_count,
       (select count(*) from raw.findings f where f._sha256 = l._sha256 and f.category = 'satisfactory')
           as satisfactory_count,
       (select count(*) from raw.findings f
         where f._sha256 = l._sha256 and f.category = 'area_for_development') as area_for_development_count,
       (select count(*) from raw.findings f where f._sha256 = l._sha256 and f.category = 'priority_action')
           as priority_action_count,
       l._sha256
from raw.letters as l
left join authorities_src as a on contains(l.authority_name, a.match_word)
left join marts.dim_inspectors as i on i.inspector_name = l.inspector_name;

alter table marts.fct_inspections add column has_priority_action boolean;
update marts.fct_inspections set has_priority_action = priority_action_count > 0;

create or replace table marts.fct_letter_versions as
select inspection_key, 1 as letter_version, letter_date, _sha256 from marts.fct_inspections;

create or replace table marts.fct_finding_versions as
select finding_key, inspection_key, 1 as letter_version, category, ordinal, finding_text
from marts.fct_findings;

create or replace table marts.bridge_findings_themes as
select f.finding_key, t.theme_key
from marts.fct_findings as f
join themes_src as t on contains(lower(f.finding_text), t.pattern);

-- the analysts' marts, as small as the volume check needs (it counts every mart the dbt
-- manifest lists); no letter here is corrected, so fct_finding_changes is empty, as dbt builds it
create or replace table marts.findings_wide as select * from marts.fct_findings;
create or replace table marts.inspections_wide as select * from marts.fct_inspections;
create or replace table marts.authority_comparisons as
select authority_key, 'findings_per_inspection' as measure, count(*) as authority_inspection_count
from marts.fct_inspections group by authority_key;
create or replace table marts.bridge_authority_successions as
select authority_key, gss_code as successor_gss_code, 1.0 as weight from marts.dim_authorities;
create or replace table marts.finding_terms as
select distinct finding_key, unnest(string_split(lower(finding_text), ' ')) as term from marts.fct_findings;
create or replace table marts.search_vocabulary as select distinct term from marts.finding_terms;
create or replace table marts.search_rules as select 1 as search_rules_version;
create or replace table marts.fct_finding_changes as
select inspection_key, 2 as letter_version, 'reworded' as change_type, finding_key as old_finding_key,
    finding_key as new_finding_key
from marts.fct_findings where false;
"""


def build_marts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace temp table authorities_src (authority_key integer, gss_code varchar,"
        " dfe_la_code varchar, authority_name varchar, authority_type varchar, region varchar,"
        " match_word varchar)"
    )
    con.executemany("insert into authorities_src values (?, ?, ?, ?, ?, ?, ?)", AUTHORITIES)
    con.execute(
        "create or replace temp table themes_src (theme_key integer, theme_name varchar, pattern varchar)"
    )
    con.executemany("insert into themes_src values (?, ?, ?)", THEMES)
    con.execute(MARTS_SQL)


def make_warehouse(path: Path, *, marts: bool = True) -> Path:
    """A valid work warehouse at `path`: raw tables (and marts) that pass every expectation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        build_raw(con)
        if marts:
            build_marts(con)
    finally:
        con.close()
    return path


def execute(path: Path, *statements: str) -> None:
    """Run SQL against a warehouse file (to break one rule in a test)."""
    con = duckdb.connect(str(path))
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
