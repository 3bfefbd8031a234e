"""The report's offline search: a small static index the night writes beside the pages.

The index is a JavaScript file (`search-index.js`) that sets one global, so the search box
works from `file://`, a file share or an artefact store with no server and no network
(browsers refuse `fetch()` of a local JSON file). It holds:

- `rules`: how words become terms (lower-case, split on anything but letters and digits,
  stop words dropped, one suffix stripped). The browser applies the same rules to the query,
  read from the index itself, so the two can never drift apart.
- `docs`: one row per finding (page, anchor, date, category, text clipped to
  `SNIPPET_CHARS`) and one per authority page.
- `terms`: term -> ids of the docs that contain it, and `idf` per term for ranking.

Ranking in the browser: every query term must match (as a term or a prefix of one); docs are
ordered by the sum of the matched terms' idf, then newest first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

SNIPPET_CHARS = 220
MIN_STEM = 3
# (suffix, replacement), first match wins: "thresholds" -> "threshold", "agencies" -> "agency",
# "planning" -> "plann" (no undoubling: the query is stemmed the same way and matches by prefix).
SUFFIXES = (("ies", "y"), ("ied", "y"), ("ings", ""), ("ing", ""), ("edly", ""), ("ed", ""),
            ("ly", ""), ("es", "e"), ("s", ""))
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "for", "from", "has", "have",
    "in", "into", "is", "it", "its", "of", "on", "or", "that", "the", "their", "there", "these",
    "this", "to", "was", "were", "which", "with",
})
WORD = re.compile(r"[a-z0-9]+")


def stem(word: str) -> str:
    for suffix, replacement in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) + len(replacement) >= MIN_STEM:
            if suffix == "s" and word.endswith("ss"):
                return word
            return word[: len(word) - len(suffix)] + replacement
    return word


def terms(text: str) -> list[str]:
    """The index terms of `text`, in order (duplicates kept)."""
    return [stem(w) for w in WORD.findall(text.lower()) if w not in STOP_WORDS and len(w) > 1]


@dataclass(frozen=True)
class Doc:
    page: str  # href of the page, relative to the report's root
    anchor: str  # fragment on that page ("" for the page itself)
    date: str  # ISO date, for ordering newest first
    label: str  # what the result is: a category, or "Authority"
    title: str  # the authority
    text: str


def build_index(docs: Iterable[Doc]) -> dict:
    rows: list[list[str]] = []
    postings: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        rows.append([d.page, d.anchor, d.date, d.label, d.title,
                     d.text if len(d.text) <= SNIPPET_CHARS else d.text[: SNIPPET_CHARS - 1] + "…"])
        for term in set(terms(f"{d.title} {d.text}")):
            postings.setdefault(term, []).append(i)
    n = max(1, len(rows))
    return {
        "rules": {"suffixes": [list(s) for s in SUFFIXES], "stop": sorted(STOP_WORDS), "min_stem": MIN_STEM},
        "docs": rows,
        "terms": {t: ids for t, ids in sorted(postings.items())},
        "idf": {t: round(math.log(1 + n / len(ids)), 3) for t, ids in sorted(postings.items())},
    }


def index_script(index: dict) -> str:
    """The index as a script that sets `window.OFSTED_SEARCH` (safe to place in a <script src>)."""
    body = json.dumps(index, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return f"window.OFSTED_SEARCH = {body};\n"
