"""Full-text search over findings: the core of `ofsted search`.

The index is built by dbt each night (no DuckDB `fts` extension, which cannot be downloaded
here): `marts.finding_terms` holds one row per (Porter-stemmed term, finding), and the table
macro `marts.search_findings(query_text)` ranks findings by BM25 (dbt_project/macros/
search_index.sql). This module only calls that macro, so `ofsted search` and an analyst's
`select * from marts.search_findings('thresholds')` give the same answer.

    search(source, query, limit=20, timeout_s=30.0) -> list[dict]

`source` is the Settings (the published warehouse is opened read-only, external access off),
a path to a warehouse file, or an open DuckDB connection (left open). Each result is a dict
with the columns of `RESULT_COLUMNS`, best first. Bounds: the query's length and term count,
`limit` (1..MAX_LIMIT), and the time (the query is interrupted after `timeout_s`).
"""

from __future__ import annotations

import decimal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import duckdb

from ingest.settings import Settings
from ingest.warehouse.query import (
    FORMATS,
    Limits,
    Output,
    QueryError,
    connect_readonly,
    format_table,
    readonly,
    run_cli_query,
    with_one_line_errors,
    write_csv,
    write_json,
    write_markdown,
)

Source = Settings | Path | str | duckdb.DuckDBPyConnection

MAX_QUERY_CHARS = 1_000
MAX_QUERY_WORDS = 32
MAX_LIMIT = 1_000
RESULT_COLUMNS = (
    "rank", "score", "matched_terms", "authority_name_as_written", "authority_name", "gss_code",
    "inspection_start_date", "letter_date", "category", "themes", "finding_text", "source_uri",
    "finding_key", "inspection_key",
)


class SearchError(QueryError):
    """A search that cannot run, in one line (empty query, no index, timed out...)."""


def check_query(query: str, limit: int) -> str:
    """The query, stripped, or a SearchError saying what is wrong with it or with `limit`."""
    text = (query or "").strip()
    if not text:
        raise SearchError("empty search: give one or more words, e.g. ofsted search thresholds")
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError(f"search too long: {len(text):,} characters (at most {MAX_QUERY_CHARS:,})")
    if len(text.split()) > MAX_QUERY_WORDS:
        raise SearchError(f"search has {len(text.split())} words (at most {MAX_QUERY_WORDS})")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be a whole number from 1 to {MAX_LIMIT:,}, not {limit!r}")
    return text


@contextmanager
def _connection(source: Source) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(source, duckdb.DuckDBPyConnection):
        yield source
        return
    path = source.published_warehouse if isinstance(source, Settings) else Path(source)
    con = connect_readonly(path)
    try:
        yield con
    finally:
        con.close()


def _has_index(con: duckdb.DuckDBPyConnection) -> bool:
    (n,) = con.execute(
        "select count(*) from duckdb_functions() "
        "where schema_name = 'marts' and function_name = 'search_findings'").fetchone()
    return n > 0


def search(source: Source, query: str, limit: int = 20, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """The findings that match `query` (any of its words, stemmed), best first, at most `limit`.

    Raises SearchError (one line) for a bad query or limit, a warehouse without the index, or a
    search that ran longer than `timeout_s`; QueryError when the warehouse is missing."""
    text = check_query(query, limit)
    with _connection(source) as con:
        if not _has_index(con):
            raise SearchError("this warehouse has no search index (marts.search_findings): "
                              "run `ofsted build` or the night first")
        timer = threading.Timer(timeout_s, con.interrupt)
        timer.start()
        try:
            cur = con.execute(
                "select row_number() over (order by score desc, finding_key) as rank, "
                f"{', '.join(RESULT_COLUMNS[1:])} "
                "from marts.search_findings(?, max_results := ?) order by rank", [text, limit])
            rows = cur.fetchall()
        except duckdb.InterruptException as exc:
            raise SearchError(f"search took longer than {timeout_s:g} s and was stopped") from exc
        finally:
            timer.cancel()
    return [dict(zip(RESULT_COLUMNS, row, strict=True)) for row in rows]


# --- ofsted search ----------------------------------------------------------------------------

#: what the table and markdown formats show of a search hit (csv and json give every column)
SEARCH_TABLE_COLUMNS = ("rank", "score", "authority_name", "inspection_start_date", "category",
                        "finding_text")


def run_search(warehouse: Path, text: str, limit: int, output: Output, out: IO[str], *,
               limits: Limits | None = None, warnings: list[str] | None = None, **external: Any) -> int:
    """Rank the findings for `text` (marts.search_findings, built by the night) and print them."""
    if output.fmt not in FORMATS:
        raise QueryError(f"unknown format {output.fmt!r}; choose one of {', '.join(FORMATS)}")
    limits = limits or Limits()
    with readonly(warehouse, limits, warnings=warnings, **external) as con:
        hits = search(con, text, limit=limit, timeout_s=limits.timeout_s)
    if output.fmt in ("table", "markdown"):  # for reading: fewer columns, the score to 3 places
        columns = SEARCH_TABLE_COLUMNS
        rows = [tuple(round(h[c], 3) if c == "score" else h.get(c) for c in columns) for h in hits]
    else:
        columns = RESULT_COLUMNS
        rows = [tuple(h.get(c) for c in columns) for h in hits]
    types = [_python_type(c, rows) for c in range(len(columns))]
    if output.fmt == "table":
        out.write(format_table(columns, types, rows, False, output.max_width, output.wrap))
        return len(rows)
    if output.fmt == "markdown":
        return write_markdown(columns, types, [rows], out)
    return (write_csv if output.fmt == "csv" else write_json)(columns, [rows], out)


def _python_type(i: int, rows: Sequence[Sequence[Any]]) -> str:
    """A DuckDB-like type name for column `i` of Python rows (numbers are right-aligned)."""
    kinds = {type(r[i]) for r in rows if r[i] is not None}
    if kinds and kinds <= {int}:
        return "BIGINT"
    if kinds and kinds <= {int, float, decimal.Decimal}:
        return "DOUBLE"
    return "VARCHAR"


def cli_search(settings: Settings, text: str, limit: int = 20, fmt: str = "table",
               max_width: int | None = None, wrap: bool = False) -> int:
    """`ofsted search WORDS`: the findings that match, best first (BM25 over stemmed words)."""

    def action() -> int:
        output = Output(fmt, max_width, wrap)
        run_cli_query(settings, "search", lambda **kw: run_search(
            settings.published_warehouse, text, limit, output, sys.stdout, **kw))
        return 0

    return with_one_line_errors("search", action)
