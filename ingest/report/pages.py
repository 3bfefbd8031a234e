"""What each page of the report says: figures from `queries`, charts from `charts`, arranged
for the templates. Pure: no I/O, so every page can be checked from its inputs.

Table cells are plain values (escaped by the template) or `Link`s; charts are SVG markup.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from ingest.letters.models import CATEGORIES
from ingest.report.charts import (
    BENCHMARK_COLOUR,
    CATEGORY_COLOURS,
    CATEGORY_LABELS,
    CONTEXT_COLOUR,
    HIGHLIGHT_COLOUR,
    INSPECTION_COLOUR,
    Series,
    category_series,
    responsive,
    svg_bar_chart,
    svg_column_chart,
)
from ingest.report.formats import fmt_date, fmt_int, fmt_pct
from ingest.report.queries import PRIORITY_ACTIONS_LISTED, TOP_AUTHORITIES_CHARTED, ReportData
from ingest.report.search import Place, SearchData, build_index

AUTHORITY_DIR = "authorities"
NEW_LISTED = 200


@dataclass(frozen=True)
class Link:
    text: str
    href: str


@dataclass(frozen=True)
class Lines:
    """A cell holding a short list, one item a line (never joined with commas)."""

    lines: Sequence[Any]


@dataclass
class Table:
    columns: Sequence[tuple[str, str]]  # (heading, "num" | "text")
    rows: list[list[Any]]
    caption: str = ""


def label(category: str) -> str:
    return CATEGORY_LABELS.get(category, category)


def _svg(markup: str) -> Markup:
    return Markup(markup)  # drawn by charts.py, which escapes every text it places


def column_chart(title: str, labels: Sequence[str], series: Sequence[Series], width: int = 560,
                 **kw: Any) -> Markup:
    """A column chart, drawn for wide screens and for phones (charts.responsive)."""
    return _svg(responsive(svg_column_chart, title, labels, series, width=width, **kw))


def bar_chart(title: str, labels: Sequence[str], series: Sequence[Series], width: int = 560,
              **kw: Any) -> Markup:
    """A horizontal bar chart, drawn for wide screens and for phones (charts.responsive)."""
    return _svg(responsive(svg_bar_chart, title, labels, series, width=width, **kw))


# --- the authority pages ----------------------------------------------------------------------

def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "authority"


@dataclass
class AuthorityPage:
    slug: str
    name: str
    matched: bool
    facts: list[tuple[str, str]]
    inspections: list[dict[str, Any]] = field(default_factory=list)
    successors: list[dict[str, Any]] = field(default_factory=list)
    authority_key: Any = None
    region: str | None = None

    @property
    def href(self) -> str:
        return f"{AUTHORITY_DIR}/{self.slug}.html"


def _page_key(i: dict[str, Any]) -> tuple:
    if i["authority_key"] is not None:
        return ("matched", i["authority_key"])
    return ("unmatched", (i["authority_name_as_written"] or "").strip().lower())


def _anchor(inspection_key: str) -> str:
    return f"inspection-{slug(str(inspection_key))}"


LetterLinks = Callable[[dict[str, Any]], list[Link]]


def authority_pages(d: ReportData, letter_links: LetterLinks) -> list[AuthorityPage]:
    """One page per authority inspected (matched or not), its inspections oldest first."""
    findings: dict[str, list[dict[str, Any]]] = {}
    for f in d.findings:
        findings.setdefault(f["inspection_key"], []).append(f)
    grouped: dict[tuple, list[dict[str, Any]]] = {}
    for i in d.inspections:
        grouped.setdefault(_page_key(i), []).append(i)
    pages: list[AuthorityPage] = []
    used: set[str] = set()
    for key, inspections in grouped.items():
        first = inspections[-1]
        name = first["authority_name"] or first["authority_name_as_written"] or "Authority not named"
        base = slug(f"{name} {first['gss_code'] or ''}") if key[0] == "matched" else slug(f"unmatched {name}")
        page_slug, n = base, 1
        while page_slug in used:
            n += 1
            page_slug = f"{base}-{n}"
        used.add(page_slug)
        facts = [("GSS code", first["gss_code"]), ("DfE LA code", first["dfe_la_code"]),
                 ("Region", first["region"]), ("Type", first["authority_type"])]
        if key[0] == "unmatched":
            facts = [("Matched to the register", "no: the name as written is not in the authority seed")]
        pages.append(AuthorityPage(
            slug=page_slug, name=name, matched=key[0] == "matched",
            facts=[(k, str(v)) for k, v in facts if v],
            inspections=inspections,
            successors=d.successors.get(first["gss_code"], []) if first["gss_code"] else [],
            authority_key=first["authority_key"], region=first["region"]))
    where = {i["inspection_key"]: (p, i) for p in pages for i in p.inspections}
    for p in pages:
        p.inspections = [{**_inspection_view(p, n, i, where, findings.get(i["inspection_key"], []),
                                             letter_links),
                          "versions": versions_view(d, i["inspection_key"], letter_links)}
                         for n, i in enumerate(p.inspections)]
    pages.sort(key=lambda p: (not p.matched, p.name.lower()))
    return pages


def _inspection_view(page: AuthorityPage, n: int, i: dict[str, Any], where: dict, findings: list[dict],
                     letter_links: Callable[[dict[str, Any]], list[Link]]) -> dict[str, Any]:
    def link_to(other: dict[str, Any] | None, text: str) -> Link | None:
        if other is None:
            return None
        other_page = where[other["inspection_key"]][0]
        prefix = "" if other_page is page else f"{other_page.slug}.html"
        return Link(f"{text}: {fmt_date(other['inspection_start_date'])}",
                    f"{prefix}#{_anchor(other['inspection_key'])}")

    stated = where.get(i.get("previous_inspection_key"))
    previous = stated[1] if stated else (page.inspections[n - 1] if n > 0 else None)
    following = page.inspections[n + 1] if n + 1 < len(page.inspections) else None
    anchor = _anchor(i["inspection_key"])
    by_category = []
    for c in (*CATEGORIES, *sorted({f["category"] for f in findings} - set(CATEGORIES))):
        listed = [f for f in findings if f["category"] == c]
        by_category.append((label(c), c, [{**f, "position": n, "anchor": f"{anchor}-{c}-{n}"}
                                          for n, f in enumerate(listed, 1)]))
    version = ""
    if i.get("letter_version"):
        version = f"version {i['letter_version']}" + (
            f", corrected; first published {fmt_date(i['first_published_date'])}"
            if i.get("is_corrected") else "")
    return {**i, "anchor": anchor, "version": version,
            "previous": link_to(previous, "Previous inspection"),
            "next": link_to(following, "Next inspection"),
            "letters": letter_links(i),
            "categories": [(lbl, c, fs) for lbl, c, fs in by_category if fs]}


CHANGE_LABELS = {"added": "Added", "removed": "Removed", "reworded": "Reworded"}


def versions_view(d: ReportData, inspection_key: str, letter_links: LetterLinks) -> list[dict[str, Any]]:
    """Every letter of a re-issued inspection, oldest first: its date, signatory, links to its
    archived copy (through `letter_links`, as for the current letter) and what it changed
    against the one before (fct_finding_changes). Empty for an inspection with one letter."""
    versions = d.versions.get(inspection_key, [])
    if len(versions) < 2:
        return []
    out = []
    for v in versions:
        changes = [{"type": c["change_type"], "label": CHANGE_LABELS.get(c["change_type"], c["change_type"]),
                    "category": label(c["category"]), "old": c["old_finding_text"],
                    "new": c["new_finding_text"]}
                   for c in d.changes.get((inspection_key, v["letter_version"]), [])]
        out.append({"version": v["letter_version"], "letter_date": v["letter_date"],
                    "inspector_name": v["inspector_name"], "finding_count": v["finding_count"],
                    "links": letter_links({"_sha256": v["_sha256"], "_source_uri": v["_source_uri"]}),
                    "changes": changes})
    return out


def _successor_text(s: dict[str, Any]) -> str:
    name = s["successor_authority_name"]
    weight = s.get("weight")
    if weight is None:
        return name
    return f"{name} (all)" if weight >= 0.9995 else f"{name} ({weight:.1%})"


# --- comparisons: an authority beside its region and England -----------------------------------

HEADLINE_MEASURES = (
    ("share_with_priority_action", "all", "Inspections with a priority action"),
    *(("findings_per_inspection", c, f"{CATEGORY_LABELS[c]} per inspection") for c in CATEGORIES),
    ("working_days_to_first_letter", "all", "Working days to the first letter"),
)


VALUE_COLUMNS = ("authority_value", "region_value", "england_value")


def _measure_value(measure: str, v: float | None) -> str:
    if v is None:
        return "–"
    if measure.startswith("share"):
        return f"{v:.0%}" if v == 0 or v >= 0.1 else f"{v:.1%}"
    return f"{v:.1f}"


def _by_measure(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["measure"], r["subject"]): r for r in rows}


def comparison_view(page: AuthorityPage, d: ReportData) -> dict[str, Any] | None:
    """The authority beside its region and England (authority_comparisons): a small table of the
    headline measures, its theme shares, and a chart of areas for development per inspection
    across the region's authorities with this one's bar highlighted."""
    mine = d.comparisons.get(page.authority_key) if page.authority_key is not None else None
    if not mine:
        return None
    measures = _by_measure(mine)
    region = page.region or "Region"
    rows = [[name, *(_measure_value(m, measures[(m, s)][k]) for k in VALUE_COLUMNS)]
            for m, s, name in HEADLINE_MEASURES if (m, s) in measures]
    themes = sorted((r for r in mine if r["measure"] == "share_of_findings"
                     and (r["authority_value"] or r["england_value"])),
                    key=lambda r: (-(r["authority_value"] or 0), r["measure_name"]))
    theme_rows = [[r["measure_name"].removeprefix("Share of findings: "),
                   *(_measure_value("share", r[k]) for k in VALUE_COLUMNS)]
                  for r in themes]
    columns = [("Measure", "text"), (page.name, "num"), (region, "num"), ("England", "num")]
    first = mine[0]
    key = ("findings_per_inspection", "area_for_development")
    peers = sorted(((rows_[0]["authority_name"], _by_measure(rows_)[key]["authority_value"], k)
                    for k, rows_ in d.comparisons.items()
                    if rows_ and rows_[0]["region"] == page.region and key in _by_measure(rows_)),
                   key=lambda t: (-(t[1] or 0), t[0]))
    own = measures.get(key)
    labels = ["England", f"{region} (all)", *(name for name, _, _ in peers)]
    values = [own["england_value"] if own else 0, own["region_value"] if own else 0,
              *(v or 0 for _, v, _ in peers)]
    colours = [BENCHMARK_COLOUR, BENCHMARK_COLOUR,
               *(HIGHLIGHT_COLOUR if k == page.authority_key else CONTEXT_COLOUR for _, _, k in peers)]
    chart = bar_chart(f"Areas for development per inspection: {page.name} beside {region} and England",
                      labels, [Series("Areas for development per inspection", values, CONTEXT_COLOUR,
                                      colours)],
                      fmt=lambda v: f"{v:.1f}")
    return {
        "table": Table(columns, rows),
        "themes": Table([("Theme (share of findings)", "text"), *columns[1:]], theme_rows),
        "chart": chart,
        "note": (f"{page.name}: {first['authority_inspection_count']:,} inspection"
                 f"{'' if first['authority_inspection_count'] == 1 else 's'}; {region}: "
                 f"{_count(first['region_inspection_count'], 'inspection')} of "
                 f"{_count(first['region_authority_count'], 'authority', 'authorities')}; England: "
                 f"{_count(first['england_inspection_count'], 'inspection')} of "
                 f"{_count(first['england_authority_count'], 'authority', 'authorities')}. Each figure is "
                 "over every inspection in the warehouse (marts.authority_comparisons)."),
    }


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def regions_comparison_view(d: ReportData) -> dict[str, Any] | None:
    """Each region beside England on the headline measures (authority_comparisons), and a chart of
    areas for development per inspection by region with England's bar highlighted."""
    regions: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for rows in d.comparisons.values():
        if rows and rows[0]["region"]:
            regions.setdefault(rows[0]["region"], _by_measure(rows))
    if not regions:
        return None
    england = next(iter(regions.values()))

    def row(name: str, measures: dict, which: str) -> list[Any]:
        any_row = next(iter(measures.values()))
        return [name, fmt_int(any_row[f"{which}_inspection_count"]),
                *(_measure_value(m, measures[(m, s)][f"{which}_value"]) if (m, s) in measures else "–"
                  for m, s, _ in HEADLINE_MEASURES)]

    ordered = sorted(regions)
    key = ("findings_per_inspection", "area_for_development")
    labels = ["England", *ordered]
    values = [england[key]["england_value"] or 0, *(regions[r][key]["region_value"] or 0 for r in ordered)]
    colours = [HIGHLIGHT_COLOUR, *(CONTEXT_COLOUR for _ in ordered)]
    return {
        "table": Table([("Region", "text"), ("Inspections", "num"),
                        *((n, "num") for _, _, n in HEADLINE_MEASURES)],
                       [*(row(r, regions[r], "region") for r in ordered), row("England", england, "england")],
                       "Each region beside England (marts.authority_comparisons; matched authorities)"),
        "chart": bar_chart("Areas for development per inspection, by region", labels,
                           [Series("Areas for development per inspection", values, CONTEXT_COLOUR, colours)],
                           fmt=lambda v: f"{v:.1f}"),
    }


def authority_trend(page: AuthorityPage) -> Markup:
    labels = [fmt_date(i["inspection_start_date"]) for i in page.inspections]
    return column_chart(
        f"Findings per inspection, {page.name}", labels,
        category_series([{c: i[f"{c}_count"] for c in CATEGORIES} for i in page.inspections]),
        y_label="findings", width=560, height=240)


def search_index(pages: Sequence[AuthorityPage], data: SearchData | None) -> dict:
    """The offline search index: what the warehouse computed for the search (`data`), with each
    finding's place on the authority pages."""
    page_rows, inspections, places = [], [], {}
    for n, p in enumerate(pages):
        page_rows.append((p.href, p.name))
        for i in p.inspections:
            start = i["inspection_start_date"]
            inspections.append((n, i["anchor"], start.isoformat() if start else ""))
            for _, _, fs in i["categories"]:
                places.update({f["finding_key"]: Place(len(inspections) - 1, f["position"]) for f in fs})
    categories = [(c, label(c)) for c in CATEGORIES]
    return build_index(data, page_rows, inspections, places, categories)


# --- the front page ---------------------------------------------------------------------------

def summary_cards(d: ReportData) -> list[tuple[str, str, str]]:
    t = d.totals
    span = (f"{fmt_date(t['first_inspection'])} – {fmt_date(t['last_inspection'])}"
            if t["first_inspection"] else "–")
    unmatched = t["unmatched_inspections"]
    return [
        ("Inspections", fmt_int(t["inspections"]), span),
        ("Authorities inspected", fmt_int(t["authorities"]),
         f"{unmatched:,} letter{'' if unmatched == 1 else 's'} not matched" if unmatched
         else "every letter matched"),
        ("Findings", fmt_int(t["findings"]),
         f"{t['findings'] / t['inspections']:.1f} per inspection" if t["inspections"] else ""),
        ("Priority actions", fmt_int(t["priority_actions"]),
         f"in {fmt_int(t['inspections_with_priority_action'])} inspections "
         f"({fmt_pct(t['inspections_with_priority_action'], t['inspections'])})"),
        ("Latest letter", fmt_date(t["last_letter"]), ""),
    ]


def _category_cells(r: dict[str, Any]) -> list[str]:
    return [fmt_int(r[c]) for c in CATEGORIES]


CATEGORY_COLUMNS = [(CATEGORY_LABELS[c], "num") for c in CATEGORIES]


def years_view(d: ReportData) -> dict[str, Any]:
    labels = [str(r["year"]) for r in d.years]
    rows = []
    for r in d.years:
        total = sum(r[c] for c in CATEGORIES)
        rows.append([r["year"], fmt_int(r["inspections"]), fmt_int(r["with_priority_action"]),
                     *_category_cells(r), fmt_int(total),
                     f"{total / r['inspections']:.1f}" if r["inspections"] else "–"])
    return {
        "inspections": column_chart(
            "Inspections per year", labels,
            [Series("Inspections", [r["inspections"] for r in d.years], INSPECTION_COLOUR)],
            y_label="inspections"),
        "findings": column_chart("Findings per year, by category", labels, category_series(d.years),
                             y_label="findings"),
        "table": Table([("Year", "text"), ("Inspections", "num"), ("With priority action", "num"),
                        *CATEGORY_COLUMNS, ("Findings", "num"), ("Findings per inspection", "num")],
                       rows, "Inspections and findings by year the inspection started"),
    }


def financial_years_view(d: ReportData) -> dict[str, Any]:
    fys = d.financial_years
    labels = [r["financial_year"] or "date not in dim_dates" for r in fys]
    rows = [[lbl, fmt_int(r["inspections"]), fmt_int(r["authorities"]), fmt_int(r["with_priority_action"]),
             fmt_pct(r["with_priority_action"], r["inspections"]), *_category_cells(r),
             f"{r['priority_action'] / r['inspections']:.2f}" if r["inspections"] else "–"]
            for lbl, r in zip(labels, fys, strict=True)]
    return {
        "findings": column_chart("Findings per financial year, by category", labels,
                             category_series(fys), y_label="findings"),
        "trend": column_chart(
            "Priority actions per financial year", labels,
            [Series("Priority actions", [r["priority_action"] for r in fys],
                    CATEGORY_COLOURS["priority_action"])],
            y_label="priority actions"),
        "table": Table([("Financial year", "text"), ("Inspections", "num"), ("Authorities", "num"),
                        ("With priority action", "num"), ("Share with priority action", "num"),
                        *CATEGORY_COLUMNS, ("Priority actions per inspection", "num")],
                       rows, "By the financial year (April to March) the inspection started"),
    }


def regions_view(d: ReportData) -> dict[str, Any]:
    rows = [[r["region"], fmt_int(r["authorities"]), fmt_int(r["inspections"]),
             fmt_int(r["with_priority_action"]),
             fmt_pct(r["with_priority_action"], r["inspections"]), fmt_int(r["priority_actions"]),
             fmt_int(r["areas_for_development"]),
             f"{r['findings'] / r['inspections']:.1f}" if r["inspections"] else "–"]
            for r in d.regions]
    return {
        "chart": bar_chart(
            "Inspections by region", [r["region"] for r in d.regions],
            [Series("Without priority action",
                    [r["inspections"] - r["with_priority_action"] for r in d.regions],
                    INSPECTION_COLOUR),
             Series("With priority action", [r["with_priority_action"] for r in d.regions],
                    CATEGORY_COLOURS["priority_action"])]),
        "table": Table([("Region", "text"), ("Authorities", "num"), ("Inspections", "num"),
                        ("With priority action", "num"), ("Share with priority action", "num"),
                        ("Priority actions", "num"), ("Areas for development", "num"),
                        ("Findings per inspection", "num")], rows),
    }


def categories_view(d: ReportData) -> dict[str, Any]:
    total = sum(r["findings"] for r in d.categories)
    inspections = d.totals["inspections"]
    series = Series("Findings", [r["findings"] for r in d.categories], "#718096",
                    [CATEGORY_COLOURS.get(r["category"], "#718096") for r in d.categories])
    return {
        "chart": bar_chart("Findings by category", [label(r["category"]) for r in d.categories],
                           [series]),
        "table": Table([("Category", "text"), ("Findings", "num"), ("Share of findings", "num"),
                        ("Inspections with one", "num"), ("Share of inspections", "num")],
                       [[label(r["category"]), fmt_int(r["findings"]), fmt_pct(r["findings"], total),
                         fmt_int(r["inspections"]), fmt_pct(r["inspections"], inspections)]
                        for r in d.categories]),
    }


def themes_view(d: ReportData) -> dict[str, Any]:
    return {
        "chart": bar_chart("Findings by theme", [r["theme"] for r in d.themes],
                           category_series(d.themes), width=1060),
        "table": Table([("Theme", "text"), ("Findings", "num"), *CATEGORY_COLUMNS,
                        ("Share needing action", "num"), ("Inspections", "num")],
                       [[r["theme"], fmt_int(r["findings"]), *_category_cells(r),
                         fmt_pct(r["area_for_development"] + r["priority_action"], r["findings"]),
                         fmt_int(r["inspections"])] for r in d.themes]),
        "unthemed": d.unthemed_findings,
    }


def priority_view(d: ReportData, page_of: dict[str, str]) -> dict[str, Any]:
    top = d.authorities[:TOP_AUTHORITIES_CHARTED]
    return {
        "chart": bar_chart(
            "Priority actions by authority", [r["authority"] for r in top],
            [Series("Priority actions", [r["priority_actions"] for r in top],
                    CATEGORY_COLOURS["priority_action"])],
            width=1060, empty="No inspection in the warehouse found anything needing priority action."),
        "charted": TOP_AUTHORITIES_CHARTED, "count": len(d.authorities),
        "table": Table([("Authority", "text"), ("Region", "text"), ("Inspections", "num"),
                        ("With priority action", "num"), ("Priority actions", "num"),
                        ("Areas for development", "num"), ("Latest letter with one", "text")],
                       [[_maybe_link(r["authority"], page_of.get(r["authority"])), r["region"] or "–",
                         fmt_int(r["inspections"]), fmt_int(r["inspections_with_priority_action"]),
                         fmt_int(r["priority_actions"]), fmt_int(r["areas_for_development"]),
                         fmt_date(r["latest_priority_letter"])] for r in d.authorities]),
        "quotes": d.priority_actions,
        "all_listed": len(d.priority_actions) < PRIORITY_ACTIONS_LISTED,
        "listed": PRIORITY_ACTIONS_LISTED,
        "unmatched": Table([("Name as written", "text"), ("Inspections", "num"),
                            ("First inspection", "text")],
                           [[r["name_as_written"] or "–", fmt_int(r["inspections"]),
                             fmt_date(r["first_inspection"])] for r in d.unmatched]),
    }


def _maybe_link(text: str, href: str | None) -> Any:
    return Link(text, href) if href else text


def directory_table(pages: Sequence[AuthorityPage]) -> Table:
    rows = []
    for p in pages:
        first, last = p.inspections[0], p.inspections[-1]
        rows.append([Link(p.name, p.href), dict(p.facts).get("Region", "–"), fmt_int(len(p.inspections)),
                     fmt_int(sum(i["priority_action_count"] for i in p.inspections)),
                     fmt_date(first["inspection_start_date"]), fmt_date(last["inspection_start_date"]),
                     Lines([_successor_text(s) for s in p.successors]) if p.successors else "–"])
    return Table([("Authority", "text"), ("Region", "text"), ("Inspections", "num"),
                  ("Priority actions", "num"),
                  ("First inspection", "text"), ("Latest inspection", "text"), ("Today", "text")], rows)


# --- what changed since the last report, and the nights --------------------------------------

def changes_since(previous: dict | None, current: dict[str, str], inspections: Sequence[dict[str, Any]],
                  page_of_inspection: dict[str, str]) -> dict[str, Any] | None:
    """Inspections added, corrected (another letter) or gone since the report `previous` recorded."""
    if previous is None:
        return None
    before: dict[str, str] = previous.get("inspections") or {}
    by_key = {i["inspection_key"]: i for i in inspections}

    def row(key: str, what: str) -> list[Any]:
        i = by_key[key]
        name = i["authority_name"] or i["authority_name_as_written"] or "–"
        return [_maybe_link(name, page_of_inspection.get(key)), what, fmt_date(i["inspection_start_date"]),
                fmt_date(i["letter_date"]), fmt_int(i["priority_action_count"])]

    added = [k for k in current if k not in before]
    corrected = [k for k in current if k in before and before[k] != current[k]]
    gone = sorted(k for k in before if k not in current)
    rows = [row(k, "new inspection") for k in added] + [row(k, "new letter (correction)") for k in corrected]
    rows.sort(key=lambda r: (r[1], r[2]))
    since = previous.get("built_at")
    return {"since": _when(since) if since else None, "added": len(added), "corrected": len(corrected),
            "gone": len(gone), "listed": NEW_LISTED,
            "table": Table([("Authority", "text"), ("What", "text"), ("Inspection", "text"),
                            ("Letter", "text"), ("Priority actions", "num")], rows[:NEW_LISTED])}


def _when(v: Any) -> str:
    if isinstance(v, str):
        try:
            v = dt.datetime.fromisoformat(v)
        except ValueError:
            return v
    return f"{v:%d %b %Y %H:%M} UTC" if isinstance(v, dt.datetime) else "–"


def _suite_cell(dq: dict | None) -> str:
    if not dq or dq.get("evaluated") is None:
        return "–"
    failed = int(dq.get("failed") or 0)
    evaluated = int(dq["evaluated"])
    return f"{evaluated:,} checks, {failed:,} failed" if failed else f"{evaluated:,} passed"


def night_banner(nights: Sequence[dict[str, Any]], last_good: dict[str, Any] | None) -> dict[str, str] | None:
    """What the header says about the latest night: nothing when it succeeded."""
    if not nights:
        return None
    latest = nights[0]
    state = latest.get("state")
    if state in ("success", "publishing"):  # publishing: the night writing this report, after its checks
        return None
    when = _when(latest.get("started_at"))
    good = (f"the warehouse below is from the night of {_when(last_good.get('started_at'))}"
            if last_good else "no night has succeeded yet; the warehouse below is the last one published")
    if state == "running":
        return {"cls": "running", "text": f"A night is running (started {when}); {good}."}
    where = latest.get("failed_task") or "an unknown task"
    reason = f": {latest['reason']}" if latest.get("reason") else ""
    return {"cls": "fail", "text": f"Last night ({when}) failed at {where}{reason}; {good}."}


def history_table(nights: Sequence[dict[str, Any]]) -> Table:
    rows = []
    for n in nights:
        dq = n.get("dq") or {}
        rows.append([_when(n.get("started_at")), n.get("state") or "–",
                     n.get("failed_task") or "–", n.get("reason") or "",
                     _suite_cell(dq.get("raw")), _suite_cell(dq.get("marts")),
                     "yes" if n.get("published") else "no", n.get("run_id") or "–"])
    return Table([("Night started", "text"), ("State", "text"), ("Failed at", "text"), ("Why", "text"),
                  ("Raw checks", "text"), ("Mart checks", "text"), ("Published", "text"), ("Run", "text")],
                 rows, f"The last {len(rows)} night{'' if len(rows) == 1 else 's'}, newest first")
