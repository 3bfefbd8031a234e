"""Helpers for the load/pipeline tests: isolated settings, inboxes of letters, table snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from devtools.synthetic import generate_letter, render_pdf
from ingest.settings import PROJECT_ROOT, Settings

SAMPLES = PROJECT_ROOT / "data" / "sample_letters"
RAW_TABLES = ("letters", "findings", "copy_recipients", "rejected_documents", "manifest")
# columns that record *when* something happened: compared separately
VOLATILE = {"_parsed_at", "_fetched_at", "first_seen_at", "last_seen_at"}


def make_settings(tmp: Path, inbox: Path | None = None, **env: str) -> Settings:
    base = {
        "OFSTED_DATA_DIR": str(tmp / "data"),
        "OFSTED_INBOX_DIR": str(inbox or tmp / "inbox"),
        "OFSTED_BATCH_SIZE": "50",
        "OFSTED_HTTP_MIN_INTERVAL_S": "0",
        "OFSTED_HTTP_BACKOFF_S": "0.01",
        "OFSTED_HTTP_TIMEOUT_S": "2",
    }
    return Settings.from_env(base | env)


def write_synthetic(folder: Path, seeds: list[int], *, pdf: set[int] = frozenset()) -> dict[int, Path]:
    """One letter per seed (as PDF for seeds in `pdf`); returns seed -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for seed in seeds:
        s = generate_letter(seed)
        if seed in pdf:
            p = folder / f"letter_{seed}.pdf"
            p.write_bytes(render_pdf(s))
        else:
            p = folder / f"letter_{seed}.txt"
            p.write_bytes(s.to_bytes())
        out[seed] = p
    return out


def query(settings: Settings, sql: str, params: list[Any] | None = None) -> list[tuple]:
    con = duckdb.connect(str(settings.work_warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def count(settings: Settings, table: str) -> int:
    return query(settings, f"select count(*) from raw.{table}")[0][0]


def snapshot(settings: Settings, *, with_times: bool = True) -> dict[str, list[tuple]]:
    """Every raw table's rows, sorted (optionally without the when-columns)."""
    con = duckdb.connect(str(settings.work_warehouse), read_only=True)
    try:
        out = {}
        for t in RAW_TABLES:
            cols = [r[0] for r in con.execute(f"describe raw.{t}").fetchall()]
            keep = [c for c in cols if with_times or c not in VOLATILE]
            out[t] = sorted(con.execute(f"select {', '.join(keep)} from raw.{t}").fetchall(), key=repr)
        return out
    finally:
        con.close()


def manifest(settings: Settings) -> dict[str, tuple]:
    """source file name -> (status, duplicate_of, detail)."""
    rows = query(settings, "select source_uri, status, duplicate_of, detail from raw.manifest")
    return {uri.rsplit("/", 1)[-1]: (status, dup, detail) for uri, status, dup, detail in rows}
