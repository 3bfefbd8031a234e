"""Warehouses for the analysts' tests (`ofsted sql`, `ofsted export`, the HTML report).

`make_marts_warehouse` writes a small DuckDB file whose `marts` schema has the shape of the
dbt marts (issue #4 / `_marts__models.yml`), filled with a handful of made-up inspections:
quick enough for every fast test. `build_real_warehouse` runs the real night (load the
sample letters, `dbt build`) into a temp directory, for the slow tests.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import duckdb

from ingest.letters.models import CATEGORIES
from ingest.settings import PROJECT_ROOT, Settings

AUTHORITIES = [
    # key, gss, dfe, name, type, region
    (1, "E10000009", "835", "Dorset", "county", "South West"),
    (2, "E06000058", "839", "Bournemouth, Christchurch and Poole", "unitary", "South West"),
    (3, "E08000027", "332", "Dudley", "metropolitan district", "West Midlands"),
    (4, "E09000021", "314", "Kingston upon Thames", "london borough", "London"),
]

THEMES = [
    (1, "timeliness_of_assessments", "Timeliness of assessments"),
    (2, "management_oversight", "Management oversight"),
    (3, "supervision", "Supervision"),
    (4, "multi_agency_working", "Multi-agency working"),
]
UNMATCHED_NAME = "Borsetshire County Council"  # a letter whose authority is not in the register

# authority_key, start date, letter date, inspector_key, findings [(category, theme keys)]
INSPECTIONS = [
    (1, dt.date(2009, 11, 3), dt.date(2009, 12, 1), 1,
     [("strength", [4]), ("satisfactory", [3]), ("area_for_development", [1, 2])]),
    (3, dt.date(2010, 5, 18), dt.date(2010, 6, 17), 2,
     [("strength", [3]), ("area_for_development", [1]), ("priority_action", [2]),
      ("priority_action", [1, 2])]),
    (4, dt.date(2010, 9, 7), dt.date(2010, 10, 5), 1,
     [("satisfactory", [4]), ("satisfactory", []), ("area_for_development", [3])]),
    (1, dt.date(2011, 2, 8), dt.date(2011, 3, 4), 2,
     [("strength", [2]), ("area_for_development", [1]), ("priority_action", [1])]),
    (3, dt.date(2011, 6, 14), dt.date(2011, 7, 12), 1,
     [("strength", [4]), ("satisfactory", [3]), ("satisfactory", [2])]),
    (None, dt.date(2011, 9, 20), dt.date(2011, 10, 18), 2,
     [("area_for_development", [2]), ("priority_action", [1])]),
]

DDL = """
create schema marts;
create table marts.dim_authorities (
    authority_key integer, gss_code varchar, dfe_la_code varchar, authority_name varchar,
    authority_type varchar, region varchar, valid_from date, valid_to date,
    current_authority_names varchar[]);
create table marts.dim_inspectors (inspector_key integer, inspector_name varchar);
create table marts.dim_dates (date_day date, calendar_year integer, financial_year varchar,
    academic_year varchar);
create table marts.dim_themes (theme_key integer, theme_code varchar, theme_name varchar);
create table marts.fct_inspections (
    inspection_key varchar, authority_key integer, inspector_key integer,
    authority_name_as_written varchar, is_authority_matched boolean, letter_date date,
    inspection_start_date date, inspection_end_date date, days_from_inspection_to_letter integer,
    strength_count integer, satisfactory_count integer, area_for_development_count integer,
    priority_action_count integer, finding_count integer, has_priority_action boolean,
    previous_inspection_key varchar, _sha256 varchar);
create table marts.fct_findings (
    finding_key varchar, inspection_key varchar, authority_key integer, category varchar,
    heading varchar, ordinal integer, finding_text varchar);
create table marts.bridge_findings_themes (finding_key varchar, theme_key integer);
"""

HEADINGS = {
    "strength": "Strengths",
    "satisfactory": "Satisfactory practice",
    "area_for_development": "Areas for development",
    "priority_action": "Priority action",
}


def make_marts_warehouse(path: Path) -> Path:
    """A small warehouse with marts-shaped tables. Returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute(DDL)
        con.executemany(
            "insert into marts.dim_authorities values (?, ?, ?, ?, ?, ?, date '2009-04-01', null, ?)",
            [(*a, [a[3]]) for a in AUTHORITIES],
        )
        con.executemany("insert into marts.dim_inspectors values (?, ?)",
                        [(1, "Jane Inspector"), (2, "Sam Reviewer")])
        con.execute("""
            insert into marts.dim_dates
            select d::date, year(d),
                   case when month(d) >= 4 then year(d) || '-' || (year(d) + 1) % 100
                        else (year(d) - 1) || '-' || year(d) % 100 end,
                   case when month(d) >= 9 then year(d) || '/' || (year(d) + 1) % 100
                        else (year(d) - 1) || '/' || year(d) % 100 end
            from range(date '2009-01-01', date '2012-01-01', interval 1 day) t(d)""")
        con.executemany("insert into marts.dim_themes values (?, ?, ?)", THEMES)
        previous: dict[int, str] = {}
        for n, (auth, start, letter, inspector, findings) in enumerate(INSPECTIONS, 1):
            key = f"insp{n:03d}"
            counts = {c: sum(1 for f in findings if f[0] == c) for c in CATEGORIES}
            end = start + dt.timedelta(days=1)
            written = next((a[3] for a in AUTHORITIES if a[0] == auth), UNMATCHED_NAME)
            con.execute(
                "insert into marts.fct_inspections values "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [key, auth, inspector, written, auth is not None, letter, start, end, (letter - end).days,
                 counts["strength"], counts["satisfactory"], counts["area_for_development"],
                 counts["priority_action"], len(findings), counts["priority_action"] > 0,
                 previous.get(auth), f"{n:064x}"],
            )
            if auth is not None:
                previous[auth] = key
            ordinals: dict[str, int] = {}
            for category, themes in findings:
                ordinals[category] = ordinals.get(category, 0) + 1
                fkey = f"{key}-{category}-{ordinals[category]}"
                con.execute(
                    "insert into marts.fct_findings values (?, ?, ?, ?, ?, ?, ?)",
                    [fkey, key, auth, category, HEADINGS[category], ordinals[category],
                     f"{HEADINGS[category]} finding {ordinals[category]} of inspection {key}."],
                )
                for theme in themes:
                    con.execute("insert into marts.bridge_findings_themes values (?, ?)", [fkey, theme])
    finally:
        con.close()
    return path


def real_settings(tmp: Path, inbox: Path | None = None) -> Settings:
    """Settings that keep every file a night writes under `tmp` (default inbox: the sample letters)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFSTED_")}
    env.update({
        "OFSTED_DATA_DIR": str(tmp / "data"),
        "OFSTED_INBOX_DIR": str(inbox or PROJECT_ROOT / "data" / "sample_letters"),
        "OFSTED_DBT_TARGET_DIR": str(tmp / "dbt_target"),
        "OFSTED_ALERT_LOG": str(tmp / "alerts.jsonl"),
    })
    return Settings.from_env(env)


def build_real_warehouse(tmp: Path, synthetic_letters: int = 0,
                         extra_letters: dict[str, bytes] | None = None) -> Settings:
    """The real night minus Airflow: load letters, `dbt build`, publish. Returns its settings.

    The inbox is the bundled sample letters plus `synthetic_letters` generated ones (text, fixed
    seed), so the marts have several years, authorities with priority actions and many themes,
    plus `extra_letters` (file name -> bytes).
    """
    from devtools.synthetic import write_corpus
    from ingest.raw.pipeline import run_load
    from ingest.warehouse.build import run_dbt
    from ingest.warehouse.publish import publish_warehouse

    inbox = tmp / "inbox"
    shutil.copytree(PROJECT_ROOT / "data" / "sample_letters", inbox)
    if synthetic_letters:
        write_corpus(inbox / "synthetic", synthetic_letters, seed=6, pdf_share=0.0)
    for name, data in (extra_letters or {}).items():
        (inbox / name).write_bytes(data)
    settings = real_settings(tmp, inbox)
    run_load(settings)
    rc = run_dbt(settings, ["build"])
    if rc != 0:
        raise RuntimeError(f"dbt build failed with exit code {rc}")
    publish_warehouse(settings.work_warehouse, settings.published_warehouse)
    return settings


def correction_letters(seed: int = 11, kinds: tuple[str, ...] = ("reworded", "reworded", "moved", "removed",
                                                                   "redated")) -> list:
    """Generated letters with corrections of each kind in `kinds`: [(original, correction), ...],
    the first of each kind in the corpus of `seed` (`devtools.synthetic.iter_corpus`)."""
    from devtools.synthetic import iter_corpus

    wanted = list(kinds)
    out, previous = [], None
    for _, letter, _ in iter_corpus(20_000, seed=seed, pdf_share=0.0):
        change = letter.expected.get("correction", {}).get("change")
        if change in wanted and previous is not None:
            wanted.remove(change)
            out.append((previous, letter))
            if not wanted:
                return out
        previous = letter
    raise AssertionError(f"no correction of kind {wanted} in the corpus")


def build_corrections_warehouse(tmp: Path) -> tuple[Settings, list]:
    """The real night minus Airflow on the sample letters plus generated letters and their
    corrections (`correction_letters`): each original in the first load, its correction in a
    second, as a re-issue arrives. Returns the settings and the (original, correction) pairs."""
    from devtools.synthetic import file_name
    from ingest.raw.pipeline import run_load
    from ingest.warehouse.build import run_dbt
    from ingest.warehouse.publish import publish_warehouse

    pairs = correction_letters()
    inbox = tmp / "inbox"
    shutil.copytree(PROJECT_ROOT / "data" / "sample_letters", inbox)
    settings = real_settings(tmp, inbox)
    for n, (original, _) in enumerate(pairs):
        (inbox / file_name(n, original, "txt")).write_bytes(original.to_bytes())
    run_load(settings)
    for n, (_, correction) in enumerate(pairs):
        (inbox / file_name(100 + n, correction, "txt")).write_bytes(correction.to_bytes())
    run_load(settings)
    rc = run_dbt(settings, ["build"])
    if rc != 0:
        raise RuntimeError(f"dbt build failed with exit code {rc}")
    publish_warehouse(settings.work_warehouse, settings.published_warehouse)
    return settings, pairs


_REAL: dict[str, Settings] = {}
_CORRECTED: dict[str, tuple[Settings, list]] = {}


def corrections_warehouse(tmp_path_factory) -> tuple[Settings, list]:
    """One corrections build per test session, shared by the analysts' test modules."""
    if "built" not in _CORRECTED:
        _CORRECTED["built"] = build_corrections_warehouse(tmp_path_factory.mktemp("corrections_night"))
    return _CORRECTED["built"]


def real_warehouse(tmp_path_factory) -> Settings:
    """One real build per test session, shared by the analysts' test modules."""
    if "settings" not in _REAL:
        _REAL["settings"] = build_real_warehouse(tmp_path_factory.mktemp("real_night"), REAL_SYNTHETIC)
    return _REAL["settings"]


REAL_SYNTHETIC = 40  # generated letters added to the samples for the real build


# The README's worked questions ("Query the warehouse"): run against the real build by the tests.
WORKED_QUESTIONS: list[tuple[str, str]] = [
    ("How many inspections and findings per year, by category?", """
select year(inspection_start_date) as year,
       count(*) as inspections,
       sum(strength_count) as strengths,
       sum(satisfactory_count) as satisfactory,
       sum(area_for_development_count) as areas_for_development,
       sum(priority_action_count) as priority_actions
from fct_inspections
group by all
order by year"""),
    ("What did each inspection find, and how long did the letter take?", """
select a.authority_name, a.region, i.inspection_start_date, i.letter_date,
       i.days_from_inspection_to_letter as days_to_letter,
       i.strength_count, i.area_for_development_count, i.priority_action_count
from fct_inspections as i
left join dim_authorities as a using (authority_key)
order by i.inspection_start_date, a.authority_name"""),
    ("What are the areas for development most often about?", """
select t.theme_name, count(*) as findings, count(distinct f.inspection_key) as inspections
from fct_findings as f
join bridge_findings_themes as b using (finding_key)
join dim_themes as t on t.theme_key = b.theme_key
where f.category = 'area_for_development'
group by all
order by findings desc, t.theme_name
limit 5"""),
    ("Which of today's authorities cover the areas inspected (Dorset 2010 -> Dorset and BCP)?", """
select a.authority_name as inspected, a.valid_to,
       unnest(a.current_authority_names) as covered_today_by
from fct_inspections as i
join dim_authorities as a using (authority_key)
order by inspected, covered_today_by"""),
    ("Which findings mention supervision, by financial year?", """
select d.financial_year, a.authority_name, f.category,
       left(f.finding_text, 60) as finding
from fct_findings as f
join fct_inspections as i using (inspection_key)
join dim_dates as d on d.date_day = i.inspection_start_date
join dim_authorities as a on a.authority_key = i.authority_key
where f.finding_text ilike '%supervision%'
order by d.financial_year, a.authority_name, f.category, finding"""),
    ("Which themes lead the areas for development, by financial year and region?", """
select f.financial_year, f.region, t.theme, count(*) as findings
from findings_wide as f, unnest(f.theme_names) as t(theme)
where f.category = 'area_for_development'
group by f.financial_year, f.region, t.theme
qualify row_number() over (partition by f.financial_year, f.region
                           order by count(*) desc, t.theme) <= 2
order by f.financial_year, f.region, findings desc, t.theme"""),
    ("Which of today's authorities does each inspection count for, and with what weight?", """
select i.authority_name_as_written as inspected, i.inspection_start_date,
       s.successor_authority_name as today, s.successor_dfe_la_code as today_dfe,
       s.change_type, round(s.weight, 3) as weight, s.weight_quality,
       round(i.area_for_development_count * s.weight, 2) as weighted_areas_for_development
from fct_inspections as i
join bridge_authority_successions as s using (authority_key)
order by inspected, i.inspection_start_date, weight desc, today"""),
    ("How many working days did each letter take, and which bank holidays fell in between?", """
select i.authority_name_as_written as authority, i.inspection_end_date, i.letter_date,
       i.days_from_inspection_to_letter as days,
       i.working_days_from_inspection_to_letter as working_days,
       (select string_agg(d.bank_holiday_name || ' ' || d.date_day, '; ' order by d.date_day)
        from dim_dates as d
        where d.date_day between i.inspection_end_date and i.letter_date
          and d.is_bank_holiday) as bank_holidays_between
from fct_inspections as i
order by i.inspection_end_date, authority"""),
    ("Which findings are about threshold guidance, best match first?", """
select round(score, 3) as score, matched_terms, authority_name, category,
       left(finding_text, 60) as finding
from search_findings('threshold guidance', any_word := true)
order by score desc, authority_name, finding
limit 5"""),
]
