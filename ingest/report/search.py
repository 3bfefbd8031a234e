"""The report's offline search: a small static index the night writes beside the pages.

The index is a JavaScript file (`search-index.js`) that sets one global, so the search box
works from `file://`, a file share or an artefact store with no server and no network
(browsers refuse `fetch()` of a local JSON file). It holds:

- `rules`: how words become terms (lower-case, split on anything but letters and digits,
  stop words dropped, one suffix stripped). The browser applies the same rules to the query,
  read from the index itself, so the two can never drift apart.
- `pages` (href, authority), `inspections` (page, anchor, date), `categories`, and `texts`:
  each distinct finding text once, clipped to `SNIPPET_CHARS` for display (the page has it
  in full); `docs`: one row per finding (inspection, category, position, text), all numbers.
- `terms`: term -> the texts that contain it; `page_terms`: term -> the pages whose
  authority name contains it. Id lists are delta-encoded in base 36 ("0,3,1a" = 0, 3, 49).

Matching in the browser: every query word must match (as a term or the prefix of one) the
finding's text or its authority's name; findings are ranked by the sum of the matched text
terms' idf (log(1 + texts / texts with the term)), then newest first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
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
class Finding:
    inspection: int  # index into the inspections given to build_index
    category: str
    position: int  # 1-based, within its category on the inspection's page
    text: str


def _ids(ids: Iterable[int]) -> str:
    out, last = [], 0
    for i in ids:
        out.append(_base36(i - last))
        last = i
    return ",".join(out)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while True:
        n, r = divmod(n, 36)
        s = digits[r] + s
        if not n:
            return s


def _postings(texts: Sequence[str]) -> dict[str, str]:
    found: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        for term in sorted(set(terms(text))):
            found.setdefault(term, []).append(i)
    return {t: _ids(ids) for t, ids in sorted(found.items())}


def build_index(pages: Sequence[tuple[str, str]], inspections: Sequence[tuple[int, str, str]],
                findings: Iterable[Finding], categories: Sequence[tuple[str, str]]) -> dict:
    """`pages` (href, authority name), `inspections` (page index, anchor, ISO date),
    `categories` (code, label) in display order."""
    category_ids = {code: n for n, (code, _) in enumerate(categories)}
    text_ids: dict[str, int] = {}
    docs = []
    for f in findings:
        text = f.text or ""
        text_id = text_ids.setdefault(text, len(text_ids))
        docs.append([f.inspection, category_ids[f.category], f.position, text_id])
    texts = list(text_ids)
    return {
        "rules": {"suffixes": [list(s) for s in SUFFIXES], "stop": sorted(STOP_WORDS), "min_stem": MIN_STEM},
        "pages": [list(p) for p in pages],
        "inspections": [list(i) for i in inspections],
        "categories": [list(c) for c in categories],
        "texts": [t if len(t) <= SNIPPET_CHARS else t[: SNIPPET_CHARS - 1] + "…" for t in texts],
        "docs": docs,
        "terms": _postings(texts),
        "page_terms": _postings([name for _, name in pages]),
    }


def index_script(index: dict) -> str:
    """The index as a script that sets `window.OFSTED_SEARCH` (safe to place in a <script src>)."""
    body = json.dumps(index, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return f"window.OFSTED_SEARCH = {body};\n"
