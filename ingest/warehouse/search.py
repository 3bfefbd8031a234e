"""Full-text search over findings: the core of `ofsted search`.

The index is built by dbt each night (no DuckDB `fts` extension, which cannot be downloaded
here): `marts.search_vocabulary` gives each word of the findings its Porter stem,
`marts.finding_terms` holds one row per (term, finding) with its BM25 weight, and the table
macro `marts.search_findings(query_text, max_results, any_word)` ranks findings
(dbt_project/macros/search_index.sql). This module only calls that macro, so `ofsted search`
and an analyst's `select * from marts.search_findings('thresholds')` give the same answer, and
the report's search box adds up the same weights (ingest/report/search.py).

The rule everywhere: every word of the query must be in the finding (stemmed: "thresholds"
finds "threshold"), or any of them with `any_word`; stop words are dropped; a word that no
finding has matches nothing. Best first by BM25 score (exact to 6 places), ties by finding_key.

    search(source, query, limit=20, timeout_s=30.0, any_word=False) -> list[dict]

`source` is the Settings (the published warehouse is opened read-only, external access off),
a path to a warehouse file, or an open DuckDB connection (left open). Each result is a dict
with the columns of `RESULT_COLUMNS`, best first. Bounds: the query's length (characters) and
words (as the search cuts them), `limit` (1..MAX_LIMIT), and the time (the query is
interrupted after `timeout_s`); the report's search box applies the same bounds, read from
`QUERY_BOUNDS`.
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
#: what the report's search box refuses, with the same wording (it reads this)
QUERY_BOUNDS = {"max_chars": MAX_QUERY_CHARS, "max_words": MAX_QUERY_WORDS}
RESULT_COLUMNS = (
    "rank", "score", "matched_terms", "authority_name_as_written", "authority_name", "gss_code",
    "region", "inspection_start_date", "calendar_year", "letter_date", "category", "themes",
    "finding_text", "source_uri", "finding_key", "inspection_key",
)
EMPTY_SEARCH = "empty search: give one or more words, e.g. ofsted search thresholds"


class SearchError(QueryError):
    """A search that cannot run, in one line (empty query, no index, timed out...)."""


def check_query(query: str, limit: int) -> str:
    """The query, or a SearchError saying what is wrong with it (blank, too long) or with `limit`.

    The number of words is checked by `check_words` once the warehouse is open."""
    text = query or ""
    if not text.strip():
        raise SearchError(EMPTY_SEARCH)
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError(f"search too long: {len(text):,} characters (at most {MAX_QUERY_CHARS:,})")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be a whole number from 1 to {MAX_LIMIT:,}, not {limit!r}")
    return text


def check_words(con: duckdb.DuckDBPyConnection, text: str) -> list[str]:
    """The query's words as the index cuts them (marts.search_words), or a SearchError."""
    (words,) = con.execute("select marts.search_words(?)", [text]).fetchone()
    if not words:
        raise SearchError(EMPTY_SEARCH)
    if len(words) > MAX_QUERY_WORDS:
        raise SearchError(f"search has {len(words)} words (at most {MAX_QUERY_WORDS})")
    return words


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
        "where schema_name = 'marts' and function_name in ('search_findings', 'search_words')").fetchone()
    return n > 1


def search(source: Source, query: str, limit: int = 20, timeout_s: float = 30.0,
           any_word: bool = False) -> list[dict[str, Any]]:
    """The findings that have every word of `query` (any of them with `any_word`), stemmed,
    best first, at most `limit`.

    Raises SearchError (one line) for a bad query or limit, a warehouse without the index, or a
    search that ran longer than `timeout_s`; QueryError when the warehouse is missing."""
    text = check_query(query, limit)
    with _connection(source) as con:
        if not _has_index(con):
            raise SearchError("this warehouse has no search index (marts.search_findings): "
                              "run `ofsted build` or the night first")
        check_words(con, text)
        timer = threading.Timer(timeout_s, con.interrupt)
        timer.start()
        try:
            cur = con.execute(
                "select row_number() over (order by score desc, finding_key) as rank, "
                f"{', '.join(RESULT_COLUMNS[1:])} "
                "from marts.search_findings(?, max_results := ?, any_word := ?) order by rank",
                [text, limit, bool(any_word)])
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


def unknown_words(con: duckdb.DuckDBPyConnection, text: str) -> list[str]:
    """The words of `text` that no finding has (they match nothing), in order."""
    rows = con.execute("select word from marts.search_terms(?) where term is null order by word",
                       [text]).fetchall()
    return [w for (w,) in rows]


def run_search(warehouse: Path, text: str, limit: int, output: Output, out: IO[str], *,
               any_word: bool = False, limits: Limits | None = None, warnings: list[str] | None = None,
               **external: Any) -> int:
    """Rank the findings for `text` (marts.search_findings, built by the night) and print them;
    say on `warnings` which words no finding has."""
    if output.fmt not in FORMATS:
        raise QueryError(f"unknown format {output.fmt!r}; choose one of {', '.join(FORMATS)}")
    limits = limits or Limits()
    with readonly(warehouse, limits, warnings=warnings, **external) as con:
        hits = search(con, text, limit=limit, timeout_s=limits.timeout_s, any_word=any_word)
        missing = unknown_words(con, text)
    if missing and warnings is not None:
        warnings.append(f"no finding has the word{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(repr(w) for w in missing)}: "
                        f"{'it matches' if len(missing) == 1 else 'they match'} nothing")
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
               max_width: int | None = None, wrap: bool = False, any_word: bool = False) -> int:
    """`ofsted search WORDS [--any]`: the findings with every word (or any), best first (BM25
    over stemmed words)."""

    def action() -> int:
        output = Output(fmt, max_width, wrap)
        run_cli_query(settings, "search", lambda **kw: run_search(
            settings.published_warehouse, text, limit, output, sys.stdout, any_word=any_word, **kw))
        return 0

    return with_one_line_errors("search", action)
