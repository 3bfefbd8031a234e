"""The duplicate rule: when two documents are the same letter (pure, no I/O).

`content_hash(letter)` is the sha256 of a letter's normalised parse: authority, inspection
dates, letter date and every finding (section and text). The same letter as text and as PDF,
or with other line endings or encoding, parses to the same values, so it gets the same hash
and is loaded once (`ingest.raw.load`). A re-dated or reworded letter (a correction) gets
another hash: it is loaded, and dbt makes it a new version of the same inspection
(dbt_project/README.md, "Inspections and letter versions").

Everything the hash reads is kept in the raw tables, so `rehash_rows` recomputes it from
them (`ingest.raw.db` does so once when the rule changes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable

from ingest.letters.models import Letter

_WORD = re.compile(r"[0-9a-z]+")


def _fold(text: str | None) -> str:
    """Case-folded words only: whitespace, line endings and punctuation do not count."""
    return " ".join(_WORD.findall((text or "").casefold()))


def _hash(authority_name: str, start: dt.date, end: dt.date, letter_date: dt.date | None,
          findings: Iterable[tuple[str, int, str]]) -> str:
    parts = [_fold(authority_name), start.isoformat(), end.isoformat(),
             letter_date.isoformat() if letter_date else ""]
    parts += [f"{category}|{_fold(text)}" for category, _, text in sorted(findings, key=lambda f: f[:2])]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def content_hash(letter: Letter) -> str:
    """sha256 of the letter's normalised parse (findings in section then ordinal order)."""
    return _hash(letter.authority_name, letter.inspection_start_date, letter.inspection_end_date,
                 letter.letter_date, ((f.category, f.ordinal, f.text) for f in letter.findings))


def rehash_rows(letters: Iterable[tuple], findings: Iterable[tuple]) -> dict[str, str]:
    """sha256 -> content hash, from raw.letters rows (sha256, authority_name, inspection_start_date,
    inspection_end_date, letter_date) and raw.findings rows (sha256, category, ordinal, text)."""
    by_letter: dict[str, list[tuple[str, int, str]]] = {}
    for sha, category, ordinal, text in findings:
        by_letter.setdefault(sha, []).append((category, ordinal, text))
    return {sha: _hash(name, start, end, letter_date, by_letter.get(sha, ()))
            for sha, name, start, end, letter_date in letters}
