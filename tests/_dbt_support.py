"""Warehouses for the dbt tests and benchmark: raw tables filled with known letters.

`write_raw` creates the raw schema from the contract (`ingest/raw/schema.sql`, via
`ingest.raw.db`) in a DuckDB file and inserts `Letter` records the way the loader stores
them (one row per letter keyed by the sha256 of its bytes, its findings and copy
recipients). The letters come from the real sample letters (parsed by `ingest.letters.parse`) or
from the synthetic generator, so the expected values are known independently of dbt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingest.letters.models import Letter
from ingest.raw.db import ensure_schema
from ingest.settings import PROJECT_ROOT, Settings

LETTER_COLUMNS = (
    "_sha256", "_content_hash", "_source_uri", "_archive_path", "_fetched_at", "_parsed_at",
    "_parser_version", "source_format", "letter_date", "recipient_name", "recipient_title",
    "authority_name", "inspection_start_date", "inspection_end_date", "statutory_basis",
    "previous_inspection", "summary", "inspector_name", "finding_count",
)
SAMPLE_LETTERS = PROJECT_ROOT / "data" / "sample_letters"


def mart_tables() -> tuple[str, ...]:
    """Every mart dbt builds as a table, from the manifest (`make setup`): the list mart_volumes
    guards. A function, not a constant: mart_volumes imports GX, which collection need not pay."""
    from expectations.mart_volumes import project_marts

    return tuple(name.split(".", 1)[1] for name in project_marts())


def _load_theme_quality():
    """benchmarks/theme_quality.py as a module (benchmarks/ is not a package)."""
    path = PROJECT_ROOT / "benchmarks" / "theme_quality.py"
    spec = importlib.util.spec_from_file_location("theme_quality", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["theme_quality"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


theme_quality = _load_theme_quality()


@dataclass(frozen=True)
class RawLetter:
    sha256: str  # of the file's bytes
    letter: Letter
    source_uri: str
    parsed_at: dt.datetime


def dbt_settings(tmp: Path, warehouse: Path | None = None, inbox: Path | None = None) -> Settings:
    """Settings that write only under `tmp`: the warehouse (default `tmp/work.duckdb`), the
    archive and parse scratch of a load, dbt's target and logs."""
    return Settings.from_env().with_overrides(
        data_dir=tmp,
        inbox_dir=inbox,
        archive_dir=tmp / "archive",
        runs_dir=tmp / "runs",
        work_warehouse=warehouse or tmp / "work.duckdb",
        published_warehouse=tmp / "published.duckdb",
        report_dir=tmp / "report",
        alert_log=tmp / "alerts.jsonl",
        dbt_target_dir=tmp / "dbt_target",
    )


def real_letters(parsed_at: dt.datetime | None = None) -> list[RawLetter]:
    """The bundled real letters, parsed by the project's parser."""
    from ingest.letters.parse import parse_document

    at = parsed_at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    out = []
    for path in sorted(SAMPLE_LETTERS.iterdir()):
        data = path.read_bytes()
        out.append(RawLetter(hashlib.sha256(data).hexdigest(), parse_document(data, path.name),
                             path.as_uri(), at))
    return out


def synthetic_letters(seeds: Iterable[int], parsed_at: dt.datetime | None = None) -> list[RawLetter]:
    """Letters from the synthetic generator, keyed by the sha256 of their bytes."""
    from devtools.synthetic import generate_letter

    at = parsed_at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    out = []
    for seed in seeds:
        s = generate_letter(seed)
        sha = hashlib.sha256(s.to_bytes()).hexdigest()
        out.append(RawLetter(sha, s.to_letter(), f"file:///synthetic/{seed}.txt", at))
    return out


def letters_per_authority(parsed_at: dt.datetime | None = None) -> list[tuple[RawLetter, str]]:
    """One synthetic letter per authority of 2010, named as letters write it, with the GSS code
    it must be matched to."""
    from devtools.synthetic import AUTHORITIES, generate_letter

    at = parsed_at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    out = []
    for i, authority in enumerate(AUTHORITIES):
        s = generate_letter(10_000 + i, authority=authority)
        sha = hashlib.sha256(s.to_bytes()).hexdigest()
        out.append((RawLetter(sha, s.to_letter(), f"file:///synthetic/a{i}.txt", at), authority.gss_code))
    return out


def _content_hash(letter: Letter) -> str:
    key = [letter.authority_name, str(letter.inspection_start_date), str(letter.inspection_end_date)]
    key += [f"{f.category}|{f.ordinal}|{f.text}" for f in letter.findings]
    return hashlib.sha256("\n".join(key).encode()).hexdigest()


def write_raw(warehouse: Path, letters: Sequence[RawLetter]) -> None:
    """Create the raw schema (if needed) and insert these letters (replacing same-sha rows)."""
    with duckdb.connect(str(warehouse)) as con:
        ensure_schema(con)
        shas = [r.sha256 for r in letters]
        for table in ("findings", "copy_recipients", "letters"):
            con.execute(f"delete from raw.{table} where _sha256 in (select unnest(?))", [shas])
        if not letters:
            return
        marks = ", ".join("?" * len(LETTER_COLUMNS))
        con.executemany(
            f"insert into raw.letters ({', '.join(LETTER_COLUMNS)}) values ({marks})",
            [(r.sha256, _content_hash(r.letter), r.source_uri, f"{r.sha256[:2]}/{r.sha256}.txt",
              r.parsed_at, r.parsed_at, r.letter.parser_version, r.letter.source_format,
              r.letter.letter_date, r.letter.recipient_name, r.letter.recipient_title,
              r.letter.authority_name, r.letter.inspection_start_date, r.letter.inspection_end_date,
              r.letter.statutory_basis, r.letter.previous_inspection, r.letter.summary,
              r.letter.inspector_name, len(r.letter.findings)) for r in letters],
        )
        findings = [(r.sha256, f.category, f.heading, f.ordinal, f.text)
                    for r in letters for f in r.letter.findings]
        if findings:
            con.executemany("insert into raw.findings values (?,?,?,?,?)", findings)
        copies = [(r.sha256, c.ordinal, c.name, c.role) for r in letters for c in r.letter.copy_recipients]
        if copies:
            con.executemany("insert into raw.copy_recipients values (?,?,?,?)", copies)


def query(warehouse: Path, sql: str, params: Sequence | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse)) as con:
        return con.execute(sql, params or []).fetchall()
