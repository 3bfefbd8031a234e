"""The static HTML report the data team opens in the morning: `index.html`, one self-contained file.

No server, no network, no JavaScript: every chart is an inline SVG drawn here in Python and
the styles are inline, so the page opens from a file share, an e-mail attachment or an
artefact store exactly as it was written. Each chart has a table with the same figures beside
it (what a screen reader, a copy-paste into a spreadsheet, or a sceptical reader needs).

Data is read from the published warehouse through the same locked, read-only connection as
`ofsted sql` (`ingest.warehouse.query.readonly`); the file is written to a temporary name and renamed.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ingest.letters.models import CATEGORIES
from ingest.settings import Settings
from ingest.warehouse.query import QueryError, readonly, with_one_line_errors

REPORT_FILE = "index.html"

CATEGORY_LABELS = {
    "strength": "Strengths",
    "satisfactory": "Satisfactory practice",
    "area_for_development": "Areas for development",
    "priority_action": "Priority action",
}
CATEGORY_COLOURS = {
    "strength": "#2f855a",
    "satisfactory": "#5b8fd0",
    "area_for_development": "#dd9a2b",
    "priority_action": "#c53030",
}
INSPECTION_COLOUR = "#2c4f7c"
TOP_AUTHORITIES_CHARTED = 20
PRIORITY_ACTIONS_LISTED = 200

# Pages the night publishes beside the report (dbt docs by the DAG, data docs by the GX suites);
# linked only when present.
SIBLING_PAGES = (
    ("dbt docs", "dbt_docs/index.html"),
    ("Great Expectations data docs", "data_docs/index.html"),
)


# --- what the report shows --------------------------------------------------------------------

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
    recorded_dq: dict | None = None  # the latest run's result in audit.dq_results, when present


def _records(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
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
    count(distinct bridge.finding_key) filter (where findings.category = 'strength') as strength,
    count(distinct bridge.finding_key) filter (where findings.category = 'satisfactory') as satisfactory,
    count(distinct bridge.finding_key)
        filter (where findings.category = 'area_for_development') as area_for_development,
    count(distinct bridge.finding_key)
        filter (where findings.category = 'priority_action') as priority_action,
    count(distinct findings.inspection_key) as inspections
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


LATEST_DQ_SQL = """
with latest as (
    select run_id, max(validated_at) as validated_at
    from audit.dq_results
    group by run_id
    order by validated_at desc
    limit 1
)
select results.table_name, results.expectation_type, results.column_name, results.success,
       results.details, latest.run_id, latest.validated_at
from audit.dq_results as results
inner join latest on results.run_id = latest.run_id
order by results.success, results.table_name, results.expectation_type, results.column_name
"""


def dq_from_audit(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The latest run's data-quality result as recorded in `audit.dq_results`, if there is one."""
    exists = con.execute("select count(*) from information_schema.tables "
                         "where table_schema = 'audit' and table_name = 'dq_results'").fetchone()[0]
    if not exists:
        return None
    rows = _records(con, LATEST_DQ_SQL)
    if not rows:
        return None
    failed = [r for r in rows if not r["success"]]
    per_table: dict[str, dict[str, Any]] = {}
    for r in rows:
        t = per_table.setdefault(r["table_name"], {"table": r["table_name"], "evaluated": 0, "failed": 0})
        t["evaluated"] += 1
        t["failed"] += not r["success"]
    return {
        "success": not failed,
        "evaluated": len(rows),
        "failed": len(failed),
        "failures": [{"table": r["table_name"], "expectation": r["expectation_type"],
                      "column": r["column_name"], "detail": r["details"]} for r in failed],
        "run_id": rows[0]["run_id"],
        "validated_at": rows[0]["validated_at"],
        "tables": sorted(per_table.values(), key=lambda t: t["table"]),
    }


def _failure_ids(dq: dict) -> set[tuple]:
    return {(f.get("table"), f.get("expectation"), f.get("column")) for f in dq.get("failures") or []}


def choose_dq(given: dict | None, recorded: dict | None) -> dict | None:
    """The result to show: what the run passed in, or the recorded run when it says the same and more.

    The nightly run hands over its marts result; `audit.dq_results` in the published warehouse
    holds every check of that run (raw tables too). The recorded run is shown instead only when
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


# --- formatting -------------------------------------------------------------------------------

def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def fmt_int(n: Any) -> str:
    return "–" if n is None else f"{int(n):,}"


def fmt_date(d: dt.date | None) -> str:
    return "–" if d is None else f"{d.day} {d:%b %Y}"


def fmt_pct(part: float, whole: float) -> str:
    return "–" if not whole else f"{100 * part / whole:.0f}%"


def nice_scale(max_value: float, ticks: int = 5) -> tuple[float, float]:
    """A round axis maximum and tick step covering `max_value` (whole numbers: counts)."""
    if max_value <= 0:
        return 1.0, 1.0
    raw = max_value / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    step = max(1.0, step)
    if step != int(step):
        step = math.ceil(step)
    return math.ceil(max_value / step) * step, float(step)


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str
    colours: Sequence[str] | None = None  # one per value, to colour each bar of a single series

    def colour_of(self, i: int) -> str:
        return self.colours[i] if self.colours else self.colour


def _legend(series: Sequence[Series]) -> str:
    if len(series) < 2:
        return ""
    items = "".join(
        f'<li><span class="swatch" style="background:{s.colour}"></span>{esc(s.name)}</li>'
        for s in series
    )
    return f'<ul class="legend">{items}</ul>'


def _empty(title: str, message: str | None) -> str:
    return f'<p class="empty">{esc(message or f"No data for “{title}” yet.")}</p>'


def svg_column_chart(title: str, labels: Sequence[str], series: Sequence[Series],
                     y_label: str = "", width: int = 560, height: int = 280, empty: str | None = None) -> str:
    """Vertical bars, stacked when there is more than one series; one <rect class="bar"> per value."""
    if not labels or not any(v for s in series for v in s.values):
        return _empty(title, empty)
    left, right, top, bottom = 48, 12, 22, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    y_max, step = nice_scale(max(totals))
    band = plot_w / len(labels)
    bar_w = max(2.0, min(48.0, band * 0.68))
    label_every = max(1, math.ceil(len(labels) * 34 / plot_w))
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="{esc(title)}" preserveAspectRatio="xMinYMin meet">',
           f"<title>{esc(title)}</title>"]
    tick = 0.0
    while tick <= y_max + 1e-9:
        y = top + plot_h - plot_h * tick / y_max
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f"{fmt_int(tick)}</text>")
        tick += step
    if y_label:
        out.append(f'<text class="axis-label" x="{left}" y="{top - 9}" text-anchor="start">'
                   f"{esc(y_label)}</text>")
    for i, label in enumerate(labels):
        x = left + band * i + (band - bar_w) / 2
        base = top + plot_h
        for s in series:
            v = s.values[i]
            if not v:
                continue
            h = plot_h * v / y_max
            base -= h
            out.append(f'<rect class="bar" x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" '
                       f'height="{h:.1f}" fill="{s.colour_of(i)}" data-value="{v}">'
                       f"<title>{esc(label)} · {esc(s.name)}: {fmt_int(v)}</title></rect>")
        if totals[i] and len(labels) <= 24:
            out.append(f'<text class="value" x="{x + bar_w / 2:.1f}" y="{base - 5:.1f}" '
                       f'text-anchor="middle">{fmt_int(totals[i])}</text>')
        if i % label_every == 0:
            out.append(f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{top + plot_h + 18}" '
                       f'text-anchor="middle">{esc(label)}</text>')
    base = top + plot_h
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{base}" y2="{base}"/>')
    out.append("</svg>")
    return "".join(out) + _legend(series)


def svg_bar_chart(title: str, labels: Sequence[str], series: Sequence[Series],
                  width: int = 560, row_height: int = 26, empty: str | None = None) -> str:
    """Horizontal bars (stacked for several series), a label left of each and its total after."""
    if not labels or not any(v for s in series for v in s.values):
        return _empty(title, empty)
    longest = max(len(label) for label in labels)
    label_chars = min(longest, max(20, int(width * 0.3 / 6.9)))
    left = 14 + int(label_chars * 6.9)
    right, top, bottom = 44, 8, 26
    plot_w = width - left - right
    height = top + bottom + row_height * len(labels)
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    x_max, step = nice_scale(max(totals), ticks=4)
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="{esc(title)}" preserveAspectRatio="xMinYMin meet">',
           f"<title>{esc(title)}</title>"]
    tick = 0.0
    while tick <= x_max + 1e-9:
        x = left + plot_w * tick / x_max
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                   f"{fmt_int(tick)}</text>")
        tick += step
    bar_h = row_height * 0.64
    for i, label in enumerate(labels):
        y = top + row_height * i + (row_height - bar_h) / 2
        shown = _clip(label, label_chars)
        out.append(f'<text class="label" x="{left - 8}" y="{y + bar_h / 2 + 4:.1f}" text-anchor="end">'
                   f"<title>{esc(label)}</title>{esc(shown)}</text>")
        x = float(left)
        for s in series:
            v = s.values[i]
            if not v:
                continue
            w = plot_w * v / x_max
            out.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{bar_h:.1f}" '
                       f'fill="{s.colour_of(i)}" data-value="{v}"><title>{esc(label)} · {esc(s.name)}: '
                       f"{fmt_int(v)}</title></rect>")
            x += w
        out.append(f'<text class="value" x="{x + 5:.1f}" y="{y + bar_h / 2 + 4:.1f}">'
                   f"{fmt_int(totals[i])}</text>")
    out.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}"/>')
    out.append("</svg>")
    return "".join(out) + _legend(series)


def html_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]],
               caption: str = "", scroll: bool = False) -> str:
    """`columns` are (heading, kind) with kind "num" (right-aligned) or "text"; cells pre-formatted."""
    head = "".join(f'<th scope="col" class="{k}">{esc(h)}</th>' for h, k in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{k}">{esc(v)}</td>' for (_, k), v in zip(columns, row, strict=True))
        + "</tr>" for row in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(columns)}" class="empty">None.</td></tr>'
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    table = f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="table-wrap{" scroll" if scroll else ""}">{table}</div>'


def category_series(rows: Sequence[dict[str, Any]]) -> list[Series]:
    return [Series(CATEGORY_LABELS[c], [r[c] for r in rows], CATEGORY_COLOURS[c]) for c in CATEGORIES]


# --- the page ---------------------------------------------------------------------------------

def section_years(d: ReportData) -> str:
    years = d.years
    labels = [str(r["year"]) for r in years]
    inspections = svg_column_chart(
        "Inspections per year", labels,
        [Series("Inspections", [r["inspections"] for r in years], INSPECTION_COLOUR)],
        y_label="inspections")
    findings = svg_column_chart("Findings per year, by category", labels, category_series(years),
                                y_label="findings")
    rows = []
    for r in years:
        total = sum(r[c] for c in CATEGORIES)
        rows.append([r["year"], fmt_int(r["inspections"]), fmt_int(r["with_priority_action"]),
                     *(fmt_int(r[c]) for c in CATEGORIES), fmt_int(total),
                     f"{total / r['inspections']:.1f}" if r["inspections"] else "–"])
    table = html_table(
        [("Year", "text"), ("Inspections", "num"), ("With priority action", "num"),
         *((CATEGORY_LABELS[c], "num") for c in CATEGORIES), ("Findings", "num"),
         ("Findings per inspection", "num")],
        rows, caption="Inspections and findings by year the inspection started")
    return (
        '<section id="years"><h2>Inspections and findings per year</h2>'
        '<p class="lead">By the calendar year the inspection started.</p>'
        f'<div class="charts"><figure><figcaption>Inspections</figcaption>{inspections}</figure>'
        f'<figure><figcaption>Findings by category</figcaption>{findings}</figure></div>'
        f"{table}</section>"
    )


def section_categories(d: ReportData) -> str:
    total = sum(r["findings"] for r in d.categories)
    inspections = d.totals["inspections"]
    labels = [CATEGORY_LABELS.get(r["category"], r["category"]) for r in d.categories]
    series = Series("Findings", [r["findings"] for r in d.categories], "#718096",
                    [CATEGORY_COLOURS.get(r["category"], "#718096") for r in d.categories])
    chart = svg_bar_chart("Findings by category", labels, [series])
    rows = [[CATEGORY_LABELS.get(r["category"], r["category"]), fmt_int(r["findings"]),
             fmt_pct(r["findings"], total), fmt_int(r["inspections"]),
             fmt_pct(r["inspections"], inspections)]
            for r in d.categories]
    table = html_table([("Category", "text"), ("Findings", "num"), ("Share of findings", "num"),
                        ("Inspections with one", "num"), ("Share of inspections", "num")], rows)
    return ('<section id="categories"><h2>Findings by category</h2>'
            '<p class="lead">How inspectors graded what they found, '
            "as the letters' section headings say.</p>"
            f'<div class="split"><figure>{chart}</figure>{table}</div></section>')


def section_themes(d: ReportData) -> str:
    labels = [r["theme"] for r in d.themes]
    chart = svg_bar_chart("Findings by theme", labels, category_series(d.themes), width=1060)
    rows = [[r["theme"], fmt_int(r["findings"]), *(fmt_int(r[c]) for c in CATEGORIES),
             fmt_pct(r["area_for_development"] + r["priority_action"], r["findings"]),
             fmt_int(r["inspections"])]
            for r in d.themes]
    table = html_table(
        [("Theme", "text"), ("Findings", "num"), *((CATEGORY_LABELS[c], "num") for c in CATEGORIES),
         ("Share needing action", "num"), ("Inspections", "num")],
        rows, scroll=len(rows) > 14)
    note = (f'<p class="note">{fmt_int(d.unthemed_findings)} finding'
            f'{"" if d.unthemed_findings == 1 else "s"} matched no theme. A finding can have several '
            "themes, so the theme counts add up to more than the findings.</p>")
    return ('<section id="themes"><h2>Findings by theme</h2>'
            '<p class="lead">What findings are about, from the theme taxonomy '
            "(<code>dim_themes</code>), split by category.</p>"
            f'<figure class="wide">{chart}</figure>{table}{note}</section>')


def section_authorities(d: ReportData) -> str:
    top = d.authorities[:TOP_AUTHORITIES_CHARTED]
    chart = svg_bar_chart(
        "Priority actions by authority", [r["authority"] for r in top],
        [Series("Priority actions", [r["priority_actions"] for r in top],
                CATEGORY_COLOURS["priority_action"])],
        width=1060, empty="No inspection in the warehouse found anything needing priority action.")
    shown = "" if len(d.authorities) <= TOP_AUTHORITIES_CHARTED else (
        f'<p class="note">The chart shows the {TOP_AUTHORITIES_CHARTED} authorities with the most '
        f"priority actions; the table lists all {len(d.authorities)}.</p>")
    rows = [[r["authority"], r["region"] or "–", fmt_int(r["inspections"]),
             fmt_int(r["inspections_with_priority_action"]), fmt_int(r["priority_actions"]),
             fmt_int(r["areas_for_development"]), fmt_date(r["latest_priority_letter"])]
            for r in d.authorities]
    table = html_table(
        [("Authority", "text"), ("Region", "text"), ("Inspections", "num"),
         ("With priority action", "num"), ("Priority actions", "num"), ("Areas for development", "num"),
         ("Latest letter with one", "text")],
        rows, scroll=len(rows) > 14) if rows else ""
    listed = "".join(
        f"<li><span class=\"meta\">{esc(r['authority'])} · inspected {fmt_date(r['inspection_start_date'])}"
        f"{' · letter ' + fmt_date(r['letter_date']) if r['letter_date'] else ''}</span>"
        f"{esc(r['finding_text'])}</li>"
        for r in d.priority_actions)
    more = (f" (the latest {PRIORITY_ACTIONS_LISTED})"
            if len(d.priority_actions) >= PRIORITY_ACTIONS_LISTED else "")
    details = (f'<details><summary>Read the priority actions as written{more}</summary>'
               f'<ol class="quotes">{listed}</ol></details>') if d.priority_actions else ""
    unmatched = ""
    if d.unmatched:
        unmatched = ('<div class="callout warn"><strong>Letters whose authority was not matched</strong> '
                     "(counted above under no authority; add an alias to the seed to fix):"
                     + html_table([("Name as written", "text"), ("Inspections", "num"),
                                   ("First inspection", "text")],
                                  [[r["name_as_written"] or "–", fmt_int(r["inspections"]),
                                    fmt_date(r["first_inspection"])] for r in d.unmatched])
                     + "</div>")
    return ('<section id="authorities"><h2>Authorities with priority actions</h2>'
            '<p class="lead">Authorities where an inspection found something needing priority action, '
            "most first.</p>"
            f"<figure>{chart}</figure>{shown}{table}{details}{unmatched}</section>")


def dq_status(dq: dict | None) -> tuple[str, str]:
    """(css class, one-line text) for the data-quality badge."""
    if not dq:
        return "unknown", "Data quality: not recorded for this report"
    evaluated, failed = int(dq.get("evaluated") or 0), int(dq.get("failed") or 0)
    if dq.get("success"):
        return "pass", f"Data quality: all {evaluated:,} checks passed"
    return "fail", f"Data quality: {failed:,} of {evaluated:,} checks failed"


def _href(target: str | Path, out_dir: Path) -> str:
    p = Path(target)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return p.as_uri()


def section_quality(dq: dict | None, out_dir: Path) -> str:
    cls, text = dq_status(dq)
    if not dq:
        body = ("<p>No data-quality result was given to this report and the warehouse has none in "
                "<code>audit.dq_results</code>. The nightly run writes the result of its "
                "Great Expectations suites here.</p>")
        return (f'<section id="quality"><h2>Data quality</h2><p class="badge {cls}">{esc(text)}</p>'
                f"{body}</section>")
    failures = dq.get("failures") or []
    rows = [[f.get("table") or "–", f.get("expectation") or "–", f.get("column") or "–",
             f.get("detail") or ""] for f in failures]
    table = html_table([("Table", "text"), ("Expectation", "text"), ("Column", "text"), ("Detail", "text")],
                       rows, caption="Failed checks") if failures else ""
    docs = ""
    if dq.get("data_docs"):
        href = esc(_href(dq["data_docs"], out_dir))
        docs = f'<p><a href="{href}">Open the data docs</a> for every check.</p>'
    run = ""
    if dq.get("run_id"):
        when = dq.get("validated_at")
        at = f" at {when:%d %b %Y %H:%M} UTC" if isinstance(when, dt.datetime) else ""
        run = f'<p class="note">Recorded in <code>audit.dq_results</code> by run {esc(dq["run_id"])}{at}.</p>'
    figures = (f'<dl class="figures"><div><dt>Checks run</dt><dd>{fmt_int(dq.get("evaluated"))}</dd></div>'
               f'<div><dt>Failed</dt><dd>{fmt_int(dq.get("failed"))}</dd></div></dl>{run}')
    per_table = ""
    if dq.get("tables"):
        per_table = html_table(
            [("Table checked", "text"), ("Checks", "num"), ("Failed", "num")],
            [[t["table"], fmt_int(t["evaluated"]), fmt_int(t["failed"])] for t in dq["tables"]],
            caption="Checks per table")
    return (f'<section id="quality"><h2>Data quality</h2><p class="badge {cls}">{esc(text)}</p>'
            f'{figures}{table}<div class="split">{per_table}</div>{docs}</section>')


def section_summary(d: ReportData) -> str:
    t = d.totals
    span = (f"{fmt_date(t['first_inspection'])} – {fmt_date(t['last_inspection'])}"
            if t["first_inspection"] else "–")
    cards = [
        ("Inspections", fmt_int(t["inspections"]), span),
        ("Authorities inspected", fmt_int(t["authorities"]),
         f"{_plural(t['unmatched_inspections'], 'letter')} not matched" if t["unmatched_inspections"] else
         "every letter matched"),
        ("Findings", fmt_int(t["findings"]),
         f"{t['findings'] / t['inspections']:.1f} per inspection" if t["inspections"] else ""),
        ("Priority actions", fmt_int(t["priority_actions"]),
         f"in {fmt_int(t['inspections_with_priority_action'])} inspections "
         f"({fmt_pct(t['inspections_with_priority_action'], t['inspections'])})"),
        ("Latest letter", fmt_date(t["last_letter"]), ""),
    ]
    html_cards = "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
        f'<div class="s">{esc(s)}</div></div>' for k, v, s in cards)
    return f'<section id="summary" class="cards">{html_cards}</section>'


def sibling_links(out_dir: Path) -> list[tuple[str, str]]:
    return [(name, rel) for name, rel in SIBLING_PAGES if (out_dir / rel).is_file()]


STYLE = """
:root { --ink:#1f2933; --muted:#5f6b7a; --line:#e3e7ec; --bg:#f5f7fa; --card:#fff; --accent:#2c4f7c; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header { background:var(--accent); color:#fff; padding:28px 0 22px; }
.wrap { max-width:1180px; margin:0 auto; padding:0 24px; }
h1 { margin:0 0 4px; font-size:26px; font-weight:650; letter-spacing:-.01em; }
header p { margin:0; color:#d6e2f0; }
header .badge { margin-top:14px; }
nav { background:#fff; border-bottom:1px solid var(--line); position:sticky; top:0; z-index:2; }
nav a { display:inline-block; padding:10px 14px 10px 0; margin-right:10px; color:var(--accent);
  text-decoration:none; font-weight:550; font-size:14px; }
nav a:hover { text-decoration:underline; }
main.wrap { padding-top:22px; padding-bottom:40px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:20px 24px 22px; margin:0 0 22px; }
section.cards { background:none; border:0; padding:0; display:grid;
  grid-template-columns:repeat(auto-fit,minmax(190px,1fr)); gap:14px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
.card .k { color:var(--muted); font-size:13px; text-transform:uppercase; letter-spacing:.04em; }
.card .v { font-size:26px; white-space:nowrap; font-weight:650; margin:2px 0;
  font-variant-numeric:tabular-nums; }
.card .s { color:var(--muted); font-size:13px; min-height:1.2em; }
h2 { margin:0 0 4px; font-size:19px; }
.lead { margin:0 0 14px; color:var(--muted); }
.note { color:var(--muted); font-size:13px; margin:10px 0 0; }
figure { margin:0 0 14px; min-width:0; }
figcaption { font-weight:600; font-size:14px; margin-bottom:6px; }
.charts { display:grid; grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr)); gap:24px; }
.split { display:grid; grid-template-columns:minmax(0,1.1fr) minmax(0,1fr); gap:24px; align-items:start; }
@media (max-width: 900px) { .split { grid-template-columns:1fr; } }
svg.chart { display:block; height:auto; max-width:100%; }
svg.chart text { font-family:inherit; font-size:11.5px; fill:#3e4c59; }
svg.chart text.value { font-size:11px; fill:#1f2933; font-weight:600; }
svg.chart text.axis-label { fill:var(--muted); font-size:11px; }
svg.chart .grid { stroke:#edf0f3; }
svg.chart .axis { stroke:#9aa5b1; }
svg.chart rect.bar:hover { opacity:.82; }
.legend { list-style:none; padding:0; margin:6px 0 0; display:flex; flex-wrap:wrap; gap:4px 16px;
  font-size:13px; color:var(--muted); }
.swatch { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:6px;
  vertical-align:-1px; }
.table-wrap { overflow-x:auto; }
.table-wrap.scroll { max-height:460px; overflow-y:auto; border:1px solid var(--line); border-radius:6px; }
table { border-collapse:collapse; width:100%; font-size:13.5px; }
caption { text-align:left; color:var(--muted); font-size:13px; padding:6px 0; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { text-align:left; background:#f8fafc; font-weight:600; position:sticky; top:0; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.num { white-space:nowrap; }
tbody tr:nth-child(even) { background:#fbfcfd; }
td.empty { color:var(--muted); text-align:center; }
.badge { display:inline-block; padding:5px 12px; border-radius:999px; font-weight:600; font-size:14px;
  margin:0; }
.badge.pass { background:#e3f4ea; color:#1e6b41; }
.badge.fail { background:#fde8e8; color:#9b1c1c; }
.badge.unknown { background:#edf0f3; color:#52606d; }
header .badge.pass { background:#d5f0df; }
.figures { display:flex; gap:28px; margin:14px 0; }
.figures dt { color:var(--muted); font-size:13px; } .figures dd { margin:0; font-size:22px; font-weight:650; }
details { margin-top:14px; }
summary { cursor:pointer; color:var(--accent); font-weight:550; }
ol.quotes { padding-left:22px; max-height:520px; overflow-y:auto; }
ol.quotes li { margin:0 0 10px; }
.meta { display:block; color:var(--muted); font-size:12.5px; }
.callout { margin-top:16px; padding:12px 14px; border-radius:8px; }
.callout.warn { background:#fff8e6; border:1px solid #f3d9a4; }
.empty { color:var(--muted); font-style:italic; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:.92em;
  background:#eef2f6; padding:1px 4px; border-radius:4px; }
footer { color:var(--muted); font-size:13px; padding:0 0 36px; }
footer a, main a { color:var(--accent); }
@media print { nav { display:none; } section { break-inside:avoid; } body { background:#fff; } }
"""


def render_html(d: ReportData, dq: dict | None, built_at: dt.datetime, out_dir: Path) -> str:
    """The whole page as one string (pure: no I/O beyond checking which sibling pages exist)."""
    cls, text = dq_status(dq)
    built = f"{built_at:%d %b %Y %H:%M} UTC"
    published = f"{d.published_at:%d %b %Y %H:%M} UTC" if d.published_at else "–"
    links = sibling_links(out_dir)
    footer_links = "".join(f' · <a href="{esc(href)}">{esc(name)}</a>' for name, href in links)
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in (
        ("years", "Per year"), ("categories", "Categories"), ("themes", "Themes"),
        ("authorities", "Priority actions"), ("quality", "Data quality")))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ofsted-letters report">
<title>Ofsted CRA letters — warehouse report, {esc(built)}</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head>
<body>
<header><div class="wrap">
<h1>Ofsted contact, referral and assessment letters</h1>
<p>Warehouse report built {esc(built)} · warehouse published {esc(published)}</p>
<p class="badge {cls}">{esc(text)}</p>
</div></header>
<nav><div class="wrap">{nav}</div></nav>
<main class="wrap">
{section_summary(d)}
{section_years(d)}
{section_categories(d)}
{section_themes(d)}
{section_authorities(d)}
{section_quality(dq, out_dir)}
</main>
<footer class="wrap">Read from <code>{esc(d.warehouse)}</code> · query it yourself with
<code>ofsted sql "select * from fct_inspections limit 10"</code>{footer_links}</footer>
</body>
</html>
"""


# --- writing it -------------------------------------------------------------------------------

def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(settings: Settings, dq: dict | None = None, out_dir: Path | None = None,
                 now: Callable[[], dt.datetime] | None = None) -> Path:
    """Write `index.html` for the published warehouse into `out_dir` (default `report_dir`)."""
    out_dir = Path(out_dir or settings.report_dir)
    data = read_report_data(settings.published_warehouse)
    dq = choose_dq(dq, data.recorded_dq)
    built_at = (now or (lambda: dt.datetime.now(dt.UTC)))()
    page = render_html(data, dq, built_at, out_dir)
    target = out_dir / REPORT_FILE
    write_atomically(target, page)
    return target


def cli_report(settings: Settings, out_dir: Path | None = None) -> int:
    """`ofsted report [--out DIR]`: write the report and print where it is."""

    def action() -> int:
        print(f"wrote {write_report(settings, None, out_dir)}")
        return 0

    return with_one_line_errors("report", action)
