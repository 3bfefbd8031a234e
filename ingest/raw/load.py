"""Parsed batches -> DuckDB raw tables, idempotently.

One transaction per batch: a crash (or a bad batch file) leaves the tables exactly as they were
before that batch. Rows go in with `insert ... select` from the batch's Arrow table, never row
by row.

Duplicates (how a document is recognised as one already loaded):

- same bytes (`_sha256`) under another name or URL: not loaded again; the second URI is
  recorded in `raw.manifest` with status `duplicate` and `duplicate_of` = that sha256;
- same letter in other bytes (text and PDF, CRLF line endings, another encoding): the
  `_content_hash` of the parse (authority, inspection dates and each finding's category and
  text, case-folded, whitespace and punctuation ignored) equals a loaded letter's: recorded as
  a duplicate of that letter in the manifest, not loaded twice.

The first copy seen is the one loaded; re-loading the same inbox changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ingest.raw.db import REJECTION_KEY_SQL, WarehouseLocked, connect, ensure_schema
from ingest.settings import Settings

__all__ = [
    "WarehouseLocked", "ensure_schema", "load_batch_file", "load_batch_table", "open_warehouse", "read_state",
    "record_fetches",
]


def open_warehouse(settings: Settings) -> duckdb.DuckDBPyConnection:
    return connect(settings.work_warehouse)


# --- what the warehouse already knows ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ManifestRow:
    etag: str | None
    last_modified: str | None
    sha256: str | None
    status: str
    last_seen_at: dt.datetime


@dataclass(slots=True)
class State:
    manifest: dict[str, ManifestRow] = field(default_factory=dict)
    letters_current: set[str] = field(default_factory=set)  # loaded by the current parser
    rejected_current: set[str] = field(default_factory=set)  # rejected by the current parser
    quarantined: set[str] = field(default_factory=set)  # out, by the data team: raw.quarantined_documents

    def is_settled(self, sha256: str | None, previous_status: str | None) -> bool:
        """Nothing left to do for these bytes: loaded or rejected by this parser, found a
        duplicate before (for the same URI), or quarantined (not re-loaded until released)."""
        if sha256 is None:
            return False
        return (sha256 in self.letters_current or sha256 in self.rejected_current
                or previous_status == "duplicate" or sha256 in self.quarantined)


def read_state(con: duckdb.DuckDBPyConnection, parser_version: str) -> State:
    st = State()
    for uri, etag, lm, sha, status, seen in con.execute(
        "select source_uri, etag, last_modified, _sha256, status, last_seen_at from raw.manifest"
    ).fetchall():
        st.manifest[uri] = ManifestRow(etag, lm, sha, status, seen)
    st.letters_current = {r[0] for r in con.execute(
        "select _sha256 from raw.letters where _parser_version = ?", [parser_version]).fetchall()}
    st.rejected_current = {r[0] for r in con.execute(
        "select _sha256 from raw.rejected_documents where _parser_version = ?", [parser_version]).fetchall()}
    st.quarantined = {r[0] for r in con.execute("select sha256 from raw.quarantined_documents").fetchall()}
    return st


def record_fetches(con: duckdb.DuckDBPyConnection, seen: list[dict[str, Any]],
                   failed: list[dict[str, Any]], now: dt.datetime) -> None:
    """Upsert the manifest rows of one fetch pass (bulk, one transaction)."""
    con.begin()
    try:
        if seen:
            t = _table([r | {"now": now} for r in _last_per_uri(seen)], pa.schema([
                ("source_uri", pa.string()), ("etag", pa.string()), ("last_modified", pa.string()),
                ("sha256", pa.string()), ("status", pa.string()), ("now", pa.timestamp("us", tz="UTC")),
            ]))
            con.register("_seen", t)
            con.execute("""
                insert into raw.manifest
                select source_uri, etag, last_modified, sha256, now, now, status, null, null from _seen
                on conflict (source_uri) do update set
                    etag = coalesce(excluded.etag, raw.manifest.etag),
                    last_modified = coalesce(excluded.last_modified, raw.manifest.last_modified),
                    _sha256 = excluded._sha256,
                    last_seen_at = excluded.last_seen_at,
                    status = excluded.status,
                    duplicate_of = case when excluded.status = 'archived' then null
                                        else raw.manifest.duplicate_of end,
                    detail = case when excluded.status = 'archived' then null else raw.manifest.detail end
            """)
            con.unregister("_seen")
        if failed:
            t = _table(
                [{"clear": False, "status": "failed"} | r | {"now": now} for r in _last_per_uri(failed)],
                pa.schema([
                    ("source_uri", pa.string()), ("detail", pa.string()), ("clear", pa.bool_()),
                    ("status", pa.string()), ("now", pa.timestamp("us", tz="UTC")),
                ]))
            con.register("_failed", t)
            # status failed (retried next run) or skipped (not a document: a link, FIFO, socket...)
            con.execute("""
                insert into raw.manifest
                select source_uri, null, null, null, now, now, status, null, detail from _failed
                on conflict (source_uri) do update set
                    last_seen_at = excluded.last_seen_at, status = excluded.status, detail = excluded.detail
            """)
            # forget the validators of a document whose archived copy is lost: fetched in full next run
            con.execute("update raw.manifest set etag = null, last_modified = null "
                        "where source_uri in (select source_uri from _failed where clear)")
            con.unregister("_failed")
        con.commit()
    except BaseException:
        rollback(con)
        raise


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if any, without masking the error being raised: after
    an I/O error (a full disk) DuckDB may have ended the transaction itself, and "cannot
    rollback - no transaction is active" must not replace "No space left on device"."""
    with contextlib.suppress(duckdb.Error):
        con.rollback()


def _last_per_uri(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({r["source_uri"]: r for r in rows}.values())


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows -> Arrow, column by column (much faster than `Table.from_pylist`)."""
    return pa.Table.from_pydict({n: [r.get(n) for r in rows] for n in schema.names}, schema=schema)


def reparse_candidates(con: duckdb.DuckDBPyConnection, parser_version: str, everything: bool,
                       retry_rejected: bool = False) -> list[dict]:
    """Archived documents to re-parse: letters and rejections from another parser version (or
    all); with `retry_rejected`, every rejection. A document rejected before it had a hash
    (never read in full) has nothing archived to re-parse: it is fetched again only when its
    source changes."""
    rows = con.execute("""
        select _sha256, _source_uri, _archive_path, _fetched_at from raw.letters
        where ? or _parser_version <> ?
        union all
        select _sha256, _source_uri, _archive_path, first_seen_at from raw.rejected_documents
        where (? or _parser_version <> ?) and _sha256 is not null
          and _sha256 not in (select _sha256 from raw.letters)
        order by 2, 1
    """, [everything, parser_version, everything or retry_rejected, parser_version]).fetchall()
    return [{"sha256": sha, "source_uri": uri, "archive_path": rel, "status": "fetched",
             "fetched_at": fetched.isoformat() if fetched else None} for sha, uri, rel, fetched in rows]


# --- one batch ------------------------------------------------------------------------------------------

_CLASSIFY_COLUMNS = ["source_uri", "sha256", "outcome", "reason", "content_hash", "parser_version",
                     "authority_name", "inspection_start_date", "etag", "last_modified"]


def _existing(con: duckdb.DuckDBPyConnection, shas: list[str], hashes: list[str]) -> tuple[dict, dict, set]:
    by_sha: dict[str, tuple[str, str, str]] = {}
    by_hash: dict[str, tuple[str, str]] = {}
    for sha, chash, uri, version in con.execute("""
        select _sha256, _content_hash, _source_uri, _parser_version from raw.letters
        where _sha256 in (select unnest(?::varchar[])) or _content_hash in (select unnest(?::varchar[]))
        order by _fetched_at, _sha256
    """, [shas, hashes]).fetchall():
        if sha in shas:
            by_sha[sha] = (chash, uri, version)
        by_hash.setdefault(chash, (sha, uri))
    rejected = {r[0] for r in con.execute(
        "select _sha256 from raw.rejected_documents where _sha256 in (select unnest(?::varchar[]))", [shas]
    ).fetchall()}
    return by_sha, by_hash, rejected


def _classify(rows: list[dict[str, Any]], by_sha: dict, by_hash: dict, rejected_before: set,
              replace: bool) -> dict[str, Any]:
    """Decide what each document of a batch becomes. Pure: works on the batch and the lookups."""
    insert: list[int] = []  # rows into raw.letters (new or replacing)
    replace_shas: list[str] = []  # letters whose rows are replaced
    drop_letters: list[str] = []  # letters a newer parser now rejects
    rejects: list[int] = []
    unreject: list[str] = []  # rejections a parser fix rescued
    manifest: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    counts = dict.fromkeys(("new", "unchanged", "duplicate", "rejected", "failed", "reparsed"), 0)
    by_sha = dict(by_sha)
    by_hash = dict(by_hash)
    for i, r in enumerate(rows):
        uri, sha, outcome = r["source_uri"], r["sha256"], r["outcome"]
        m = {"source_uri": uri, "sha256": sha, "etag": r["etag"], "last_modified": r["last_modified"],
             "duplicate_of": None, "detail": None}
        if outcome == "failed":
            counts["failed"] += 1
            events.append({"source_uri": uri, "outcome": "failed", "detail": r["reason"]})
            manifest.append(m | {"status": "failed", "detail": r["reason"]})
            continue
        if outcome == "rejected":
            counts["rejected"] += 1
            rejects.append(i)
            if sha is not None and sha in by_sha:
                drop_letters.append(sha)
                by_hash.pop(by_sha.pop(sha)[0], None)
            events.append({"source_uri": uri, "outcome": "rejected", "detail": r["reason"]})
            manifest.append(m | {"status": "rejected", "detail": r["reason"]})
            continue
        chash = r["content_hash"]
        if sha in by_sha:
            old_hash, old_uri, old_version = by_sha[sha]
            if replace or old_version != r["parser_version"]:
                counts["reparsed"] += 1
                insert.append(i)
                replace_shas.append(sha)
                by_sha[sha] = (chash, old_uri, r["parser_version"])
                by_hash.setdefault(chash, (sha, old_uri))
                events.append({"source_uri": uri, "outcome": "reparsed",
                               "detail": f"re-parsed by parser {r['parser_version']} (was {old_version})"})
                manifest.append(m | {"status": "loaded"} if old_uri == uri else
                                m | {"status": "duplicate", "duplicate_of": sha,
                                     "detail": f"same bytes as {old_uri}"})
            elif old_uri == uri:
                counts["unchanged"] += 1
                manifest.append(m | {"status": "loaded"})
            else:
                counts["duplicate"] += 1
                detail = f"same bytes as {old_uri}"
                events.append({"source_uri": uri, "outcome": "duplicate", "detail": detail,
                               "duplicate_of": sha, "duplicate_of_uri": old_uri, "how": "bytes"})
                manifest.append(m | {"status": "duplicate", "duplicate_of": sha, "detail": detail})
            continue
        if sha in rejected_before:
            unreject.append(sha)
        if chash in by_hash:
            orig_sha, orig_uri = by_hash[chash]
            counts["duplicate"] += 1
            detail = f"same letter as {orig_uri} (content hash)"
            events.append({"source_uri": uri, "outcome": "duplicate", "detail": detail,
                           "duplicate_of": orig_sha, "duplicate_of_uri": orig_uri, "how": "content"})
            manifest.append(m | {"status": "duplicate", "duplicate_of": orig_sha, "detail": detail})
            continue
        counts["new"] += 1
        insert.append(i)
        by_sha[sha] = (chash, uri, r["parser_version"])
        by_hash[chash] = (sha, uri)
        events.append({"source_uri": uri, "outcome": "new",
                       "detail": f"{r['authority_name']}, inspected {r['inspection_start_date']}"})
        manifest.append(m | {"status": "loaded"})
    return {"insert": insert, "replace_shas": replace_shas, "drop_letters": drop_letters, "rejects": rejects,
            "unreject": unreject, "manifest": manifest, "events": events, "counts": counts}


_MANIFEST_SCHEMA = pa.schema([
    ("source_uri", pa.string()), ("sha256", pa.string()), ("etag", pa.string()),
    ("last_modified", pa.string()), ("status", pa.string()), ("duplicate_of", pa.string()),
    ("detail", pa.string()), ("now", pa.timestamp("us", tz="UTC")),
])


def load_batch_file(con: duckdb.DuckDBPyConnection, path: Path, *, replace: bool = False) -> dict[str, Any]:
    """Load one parsed batch file in one transaction; returns its counts (see pipeline.load_batches)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise RuntimeError(f"cannot read batch file {path}: {exc}".splitlines()[0]) from exc
    return load_batch_table(con, table, replace=replace)


def load_batch_table(con: duckdb.DuckDBPyConnection, table: pa.Table, *,
                     replace: bool = False) -> dict[str, Any]:
    """Load one parsed batch (an Arrow table of `pipeline.BATCH_SCHEMA`) in one transaction."""
    cols = table.select(_CLASSIFY_COLUMNS).to_pydict()
    rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
    parsed = [r for r in rows if r["outcome"] == "parsed"]
    shas = sorted({r["sha256"] for r in rows if r["sha256"]})
    hashes = sorted({r["content_hash"] for r in parsed})
    now = dt.datetime.now(dt.UTC)

    con.begin()
    try:
        by_sha, by_hash, rejected_before = _existing(con, shas, hashes)
        plan = _classify(rows, by_sha, by_hash, rejected_before, replace)
        _apply(con, table, plan, now)
        con.commit()
    except BaseException:
        rollback(con)
        raise
    c = plan["counts"]
    events = plan["events"]
    return c | {
        "batches": 1,
        "rejections": [{"source_uri": e["source_uri"], "reason": e["detail"]}
                       for e in events if e["outcome"] == "rejected"],
        "failures": [{"source_uri": e["source_uri"], "reason": e["detail"]}
                     for e in events if e["outcome"] == "failed"],
        "duplicates": [{k: e[k] for k in ("source_uri", "duplicate_of", "duplicate_of_uri", "how")}
                       for e in events if e["outcome"] == "duplicate"],
        "documents": [{k: e[k] for k in ("source_uri", "outcome", "detail")} for e in events],
    }


def _apply(con: duckdb.DuckDBPyConnection, table: pa.Table, plan: dict[str, Any], now: dt.datetime) -> None:
    """The writes of one batch (inside the caller's transaction)."""
    gone = plan["replace_shas"] + plan["drop_letters"]
    if gone:
        # replaced letters keep where and when they were first fetched
        con.execute("create or replace temp table _kept as select _sha256, _source_uri, _archive_path, "
                    "_fetched_at, _superseded_by from raw.letters "
                    "where _sha256 in (select unnest(?::varchar[]))", [plan["replace_shas"]])
        for t in ("raw.findings", "raw.copy_recipients", "raw.letters"):
            con.execute(f"delete from {t} where _sha256 in (select unnest(?::varchar[]))", [gone])
    else:
        con.execute("create or replace temp table _kept (_sha256 varchar, _source_uri varchar, "
                    "_archive_path varchar, _fetched_at timestamptz, _superseded_by varchar)")
    if plan["insert"]:
        ins = table.take(pa.array(plan["insert"], pa.int64()))
        con.register("_ins", ins)
        con.execute("""
            insert into raw.letters by name
            select b.sha256 as _sha256, b.content_hash as _content_hash,
                   coalesce(k._source_uri, b.source_uri) as _source_uri,
                   coalesce(k._archive_path, b.archive_path) as _archive_path,
                   coalesce(k._fetched_at, b.fetched_at) as _fetched_at,
                   b.parsed_at as _parsed_at, b.parser_version as _parser_version,
                   b.source_format, b.letter_date, b.recipient_name, b.recipient_title, b.authority_name,
                   b.inspection_start_date, b.inspection_end_date, b.statutory_basis, b.previous_inspection,
                   b.summary, b.inspector_name, b.finding_count, k._superseded_by as _superseded_by
            from _ins b left join _kept k on k._sha256 = b.sha256
        """)
        con.execute("""
            insert into raw.findings
            select sha256, f.category, f.heading, f.ordinal, f.finding_text
            from (select sha256, unnest(findings) as f from _ins)
        """)
        con.execute("""
            insert into raw.copy_recipients
            select sha256, c.ordinal, c.name, c.role
            from (select sha256, unnest(copy_recipients) as c from _ins)
        """)
        # a new version of a letter from the same URI supersedes the earlier one
        con.execute("""
            update raw.letters as l set _superseded_by = n.sha256
            from (select source_uri, sha256, replaces_sha256 from _ins where replaces_sha256 is not null) as n
            where l._sha256 = n.replaces_sha256 and l._source_uri = n.source_uri and l._superseded_by is null
        """)
        con.unregister("_ins")
    if plan["unreject"]:
        con.execute("delete from raw.rejected_documents where _sha256 in (select unnest(?::varchar[]))",
                    [plan["unreject"]])
    if plan["rejects"]:
        rej = table.take(pa.array(plan["rejects"], pa.int64())).select(
            ["sha256", "source_uri", "archive_path", "parser_version", "reason", "fetched_at"])
        # one row per key: the sha256 (the same rejected bytes may come under two names in one
        # batch), or for a document refused before it had one, its URI and fetch time
        con.register("_rej", rej)
        con.execute(f"""
            insert into raw.rejected_documents
            select {REJECTION_KEY_SQL} as k, first(sha256), first(source_uri), first(archive_path),
                   first(parser_version), first(reason), ?::timestamptz, ?::timestamptz
            from _rej group by k
            on conflict (_rejection_key) do update set
                _archive_path = coalesce(excluded._archive_path, raw.rejected_documents._archive_path),
                _parser_version = excluded._parser_version, reason = excluded.reason,
                last_seen_at = excluded.last_seen_at
        """, [now, now])
        con.unregister("_rej")
    if plan["manifest"]:
        rows = list({m["source_uri"]: m | {"now": now} for m in plan["manifest"]}.values())
        con.register("_man", _table(rows, _MANIFEST_SCHEMA))
        con.execute("""
            insert into raw.manifest
            select source_uri, etag, last_modified, sha256, now, now, status, duplicate_of, detail from _man
            on conflict (source_uri) do update set
                etag = coalesce(excluded.etag, raw.manifest.etag),
                last_modified = coalesce(excluded.last_modified, raw.manifest.last_modified),
                _sha256 = coalesce(excluded._sha256, raw.manifest._sha256),
                last_seen_at = excluded.last_seen_at, status = excluded.status,
                duplicate_of = excluded.duplicate_of, detail = excluded.detail
        """)
        con.unregister("_man")
