"""The report's offline search: a static index the night writes beside the pages, holding what
the warehouse computed, so the search box finds and ranks exactly what `ofsted search` and
`marts.search_findings` do (dbt_project/macros/search_index.sql defines the search once).

The index is a JavaScript file (`search-index.js`) that sets one global, so the search box
works from `file://`, a file share or an artefact store with no server and no network
(browsers refuse `fetch()` of a local JSON file). It holds:

- `rules`: the token patterns (`marts.search_rules`) and the query bounds of `ofsted search`
  (`ingest.warehouse.search.QUERY_BOUNDS`): the browser cuts a query into words as SQL does;
- `terms` (sorted) and, per term, `words`: the words of `marts.search_vocabulary` that have
  it (written as suffixes of the term where they start with it: "threshold" + "s"), and
  `stop`: the stop words. The browser looks a word's term up here and never stems: a word
  that is not in the vocabulary matches nothing, as in SQL;
- `postings`: per term, the distinct finding texts that have it with the term's BM25 weight
  there (`marts.finding_terms.bm25_weight`, in millionths: weights are rounded to 6 places,
  so the browser's integer sums are SQL's scores exactly), as "text:weight" pairs, text ids
  delta-encoded, all in base 36;
- `texts` (each distinct finding text once), `docs`: one row per finding in `finding_key`
  order (so ties rank as in SQL): [inspection, category, position, text];
  `inspections` (page, anchor, date, region, year; page -1 for one no page lists), `pages`
  (href, authority), `categories`, `regions` and `years` for the filters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ingest.warehouse.search import QUERY_BOUNDS

INDEX_GLOBAL = "OFSTED_SEARCH"
NOT_MATCHED = "Authority not matched"
REGION_NOT_KNOWN = "Region not known"
YEAR_NOT_KNOWN = "Year not known"

FINDINGS_SQL = f"""
select
    finding_key,
    inspection_key,
    category,
    finding_text,
    case when authority_key is null then '{NOT_MATCHED}'
         else coalesce(region, '{REGION_NOT_KNOWN}') end as region,
    coalesce(cast(calendar_year as varchar), '{YEAR_NOT_KNOWN}') as year
from marts.findings_wide
order by finding_key
"""

# One row per (term, distinct finding text): a term's weight depends only on the text (its
# frequency and the text's length) and the collection, so findings with the same text agree.
POSTINGS_SQL = """
select
    terms.term,
    findings.finding_text,
    min(terms.bm25_weight) as bm25_weight,
    max(terms.bm25_weight) as max_weight
from marts.finding_terms as terms
inner join marts.findings_wide as findings on terms.finding_key = findings.finding_key
group by all
"""

VOCABULARY_SQL = "select word, term, is_stop_word from marts.search_vocabulary order by word"
RULES_SQL = "select apostrophes_pattern, separators_pattern, weight_decimals from marts.search_rules"
NEEDED = ("findings_wide", "finding_terms", "search_vocabulary", "search_rules")


@dataclass
class SearchData:
    """What the warehouse computed for the search, read once for the report."""

    rules: dict[str, Any]
    findings: list[dict[str, Any]]
    postings: list[tuple[str, str, float]]  # (term, finding text, weight)
    vocabulary: list[tuple[str, str | None, bool]]  # (word, term, is_stop_word)
    missing: str | None = None  # why there is no index (an older warehouse)
    extra: dict[str, Any] = field(default_factory=dict)


def read_search_data(con: duckdb.DuckDBPyConnection) -> SearchData:
    """The search's rules, vocabulary, weights and findings, from the marts."""
    have = {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts'").fetchall()}
    absent = [t for t in NEEDED if t not in have]
    if absent:
        return SearchData({}, [], [], [], missing=f"this warehouse has no marts.{absent[0]} "
                                                   "(built before the search index): run the night again")
    apostrophes, separators, decimals = con.execute(RULES_SQL).fetchone()
    cur = con.execute(FINDINGS_SQL)
    cols = [d[0] for d in cur.description]
    findings = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    postings = []
    for term, text, weight, top in con.execute(POSTINGS_SQL).fetchall():
        if weight != top:  # cannot happen: the weight is a function of the text
            raise ValueError(f"term {term!r} has two weights in one finding text")
        postings.append((term, text, weight))
    vocabulary = [(w, t, bool(s)) for w, t, s in con.execute(VOCABULARY_SQL).fetchall()]
    rules = {"apostrophes": apostrophes, "separators": separators, "scale": 10 ** int(decimals),
             **QUERY_BOUNDS}
    return SearchData(rules, findings, postings, vocabulary)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while True:
        n, r = divmod(n, 36)
        s = digits[r] + s
        if not n:
            return s


def _postings(pairs: list[tuple[int, int]]) -> str:
    """[(text id, weight in millionths)] -> "id:w,id:w" with ids delta-encoded, base 36."""
    out, last = [], 0
    for text_id, weight in sorted(pairs):
        out.append(f"{_base36(text_id - last)}:{_base36(weight)}")
        last = text_id
    return ",".join(out)


def _words_of(term: str, words: Sequence[str]) -> str:
    """The words with `term`, space-separated: a word that starts with the term as its suffix
    after "~" ("~" alone for the term itself), any other word in full."""
    return " ".join(f"~{w[len(term):]}" if w.startswith(term) else w for w in sorted(words))


@dataclass(frozen=True)
class Place:
    """Where a finding is on the report: its inspection's row in the index and its position."""

    inspection: int
    position: int


def build_index(data: SearchData | None, pages: Sequence[tuple[str, str]],
                inspections: Sequence[tuple[int, str, str]], places: Mapping[str, Place],
                categories: Sequence[tuple[str, str]]) -> dict:
    """The index of `data` for the report: `pages` (href, authority name), `inspections` (page
    index, anchor, ISO date), `places` (finding_key -> Place; a finding without one is listed
    without a link), `categories` (code, label) in display order."""
    if data is None or data.missing:
        return {"missing": data.missing if data else "this report was written without a search index"}
    scale = data.rules["scale"]
    category_ids = {code: n for n, (code, _) in enumerate(categories)}
    extra_categories = sorted({f["category"] for f in data.findings} - set(category_ids))
    categories = [*categories, *((c, c) for c in extra_categories)]
    category_ids = {code: n for n, (code, _) in enumerate(categories)}
    regions = sorted({f["region"] for f in data.findings},
                     key=lambda r: (r in (NOT_MATCHED, REGION_NOT_KNOWN), r))
    years = sorted({f["year"] for f in data.findings}, key=lambda y: (y == YEAR_NOT_KNOWN, y))
    region_ids = {r: n for n, r in enumerate(regions)}
    year_ids = {y: n for n, y in enumerate(years)}
    # region and year are the inspection's: carried once per inspection, not per finding
    rows = [[*i, None, None] for i in inspections]
    unplaced: dict[str, int] = {}  # inspection_key -> row, for findings no page lists
    text_ids: dict[str, int] = {}
    docs = []
    for f in data.findings:
        text_id = text_ids.setdefault(f["finding_text"] or "", len(text_ids))
        place = places.get(f["finding_key"])
        if place is None:
            row = unplaced.setdefault(f["inspection_key"], len(rows))
            if row == len(rows):
                rows.append([-1, "", "", None, None])
            place = Place(row, 0)
        rows[place.inspection][3:] = [region_ids[f["region"]], year_ids[f["year"]]]
        docs.append([place.inspection, category_ids[f["category"]], place.position, text_id])
    terms = sorted({t for t, _, _ in data.postings})
    term_ids = {t: n for n, t in enumerate(terms)}
    per_term: list[list[tuple[int, int]]] = [[] for _ in terms]
    for term, text, weight in data.postings:
        per_term[term_ids[term]].append((text_ids[text or ""], round(weight * scale)))
    words: list[list[str]] = [[] for _ in terms]
    for word, term, is_stop in data.vocabulary:
        if not is_stop and term in term_ids:  # an inflection whose term no finding has is not listed
            words[term_ids[term]].append(word)
    return {
        "rules": data.rules,
        "terms": terms,
        "words": [_words_of(t, ws) for t, ws in zip(terms, words, strict=True)],
        "stop": sorted(w for w, _, is_stop in data.vocabulary if is_stop),
        "postings": [_postings(p) for p in per_term],
        "texts": list(text_ids),
        "docs": docs,
        "pages": [list(p) for p in pages],
        "inspections": rows,
        "categories": [list(c) for c in categories],
        "regions": regions,
        "years": years,
    }


def index_script(index: dict) -> str:
    """The index as a script that sets `window.OFSTED_SEARCH` (safe to place in a <script src>)."""
    body = json.dumps(index, ensure_ascii=False, separators=(",", ":"))
    body = body.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"window.{INDEX_GLOBAL} = {body};\n"
