"""Typed records shared by the parser, the loader and the command line.

`parse.parse_document` returns a `Letter` or raises `RejectedDocument`; nothing else in the
package builds these by hand except tests and the synthetic-letter generator.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: The four categories of finding, in the order a letter lists them, each with its label as
#: readers know it: the one definition. The parser's headings, the report (labels, columns,
#: colours) and the tests read it; dbt's copies (accepted_values of every `category` column,
#: fct_inspections' `<category>_count` columns) are checked against it by tests/test_categories.py.
CATEGORY_LABELS: dict[str, str] = {
    "strength": "Strengths",
    "satisfactory": "Satisfactory practice",
    "area_for_development": "Areas for development",
    "priority_action": "Priority action",
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_LABELS)


class RejectedDocument(Exception):
    """A document the parser will not load. `reason` is one line, fit to show a user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Finding:
    category: str
    heading: str  # the section heading as written in the letter
    ordinal: int  # 1-based position within its section
    text: str  # one finding, lines joined, whitespace normalised


@dataclass(frozen=True, slots=True)
class CopyRecipient:
    ordinal: int
    name: str
    role: str | None


@dataclass(frozen=True, slots=True)
class Letter:
    parser_version: str
    source_format: Literal["pdf", "text"]
    letter_date: dt.date | None
    recipient_name: str | None
    recipient_title: str | None
    authority_name: str
    inspection_start_date: dt.date
    inspection_end_date: dt.date
    statutory_basis: str | None
    previous_inspection: str | None
    summary: str | None
    inspector_name: str | None
    findings: tuple[Finding, ...]
    copy_recipients: tuple[CopyRecipient, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(CATEGORIES, 0)
        for f in self.findings:
            out[f.category] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        """The record as `ofsted parse` prints it: dates as YYYY-MM-DD."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, dt.date):
                d[k] = v.isoformat()
        d["status"] = "parsed"
        return d


# --- what the fetcher hands to the pipeline ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class KnownDocument:
    """What the manifest remembers of a source URI, for conditional / incremental fetching."""

    etag: str | None
    last_modified: str | None
    sha256: str | None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One source document after a fetch attempt.

    status:
      - "fetched": `path` is a complete, verified local temp file (the caller archives it and
        may delete it); `sha256` and `size` describe its bytes.
      - "not_modified": the source says it is unchanged since `known` (304, or same local stamp).
      - "failed": could not be fetched; `reason` is one line. Nothing was archived; retried
        next run.
      - "rejected": refused by a limit before its bytes were read in full (larger than the
        size cap, a decompression bomb): recorded in raw.rejected_documents with `reason`,
        not retried while the source says it is unchanged (`etag` / `last_modified`).
      - "skipped": not a document (a symbolic link, FIFO, socket or device in the inbox): never
        read; `reason` says why, recorded in the manifest.
    """

    source_uri: str
    status: Literal["fetched", "not_modified", "failed", "rejected", "skipped"]
    path: str | None = None
    sha256: str | None = None
    size: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    filename: str | None = None  # name to give the parser (extension tells PDF from text)
    reason: str | None = None
    fetched_at: dt.datetime | None = None
