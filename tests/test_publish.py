"""Write-audit-publish: the published warehouse only ever changes by one atomic swap."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from ingest.settings import Settings
from ingest.warehouse.publish import (
    mart_row_counts,
    publish,
    publish_directory,
    publish_report,
    sha256_file,
    staging_report_dir,
    staging_settings,
)


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path / "data")})


def _write_night(path: Path, inspections: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists marts")
    con.execute("create or replace table marts.fct_inspections as select range as inspection_key "
                f"from range({inspections})")
    con.execute("create or replace table marts.dim_authorities as select 'E10000009' as gss_code")
    con.close()


def test_publish_copies_the_work_warehouse_and_reports_mart_rows(tmp_path):
    s = _settings(tmp_path)
    _write_night(s.work_warehouse, 3)
    out = publish(s)["warehouse"]
    assert out["path"] == str(s.published_warehouse)
    assert out["marts"] == {"dim_authorities": 1, "fct_inspections": 3}
    assert out["sha256"] == sha256_file(s.published_warehouse)
    assert mart_row_counts(s.published_warehouse)["fct_inspections"] == 3
    # nothing left beside the published file but the file itself
    assert sorted(p.name for p in s.published_warehouse.parent.iterdir()) == sorted(
        [s.published_warehouse.name, s.work_warehouse.name])


def test_a_reader_holding_the_old_file_keeps_yesterdays_data(tmp_path):
    s = _settings(tmp_path)
    _write_night(s.work_warehouse, 3)
    publish(s)
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(s.published_warehouse)!r}, read_only=True)
            q = "select count(*) from marts.fct_inspections"
            print(con.execute(q).fetchone()[0], flush=True)
            sys.stdin.readline()
            print(con.execute(q).fetchone()[0], flush=True)
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "3"
        _write_night(s.work_warehouse, 7)  # tonight's build
        publish(s)
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "3"  # still yesterday's, not blocked
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    assert reader.returncode == 0
    assert mart_row_counts(s.published_warehouse)["fct_inspections"] == 7  # new readers: tonight


def test_a_broken_work_warehouse_leaves_the_published_file_byte_for_byte(tmp_path):
    s = _settings(tmp_path)
    _write_night(s.work_warehouse, 3)
    publish(s)
    before = sha256_file(s.published_warehouse)
    s.work_warehouse.write_bytes(b"this is not a duckdb file" * 100)
    with pytest.raises(duckdb.Error):
        publish(s)
    assert sha256_file(s.published_warehouse) == before
    assert not list(s.published_warehouse.parent.glob(".*publishing*"))


def test_missing_work_warehouse_is_a_clear_error(tmp_path):
    s = _settings(tmp_path)
    with pytest.raises(FileNotFoundError, match="work warehouse not found"):
        publish(s)
    assert not s.published_warehouse.exists()


def test_report_directory_is_swapped_by_one_rename(tmp_path):
    s = _settings(tmp_path)
    # a first run by older code left a real directory: it becomes a version
    s.report_dir.mkdir(parents=True)
    (s.report_dir / "index.html").write_text("night 0")
    for night in (1, 2, 3):
        stage = staging_report_dir(s, f"scheduled__2026-11-0{night}T02:00:00+00:00")
        assert staging_settings(s, f"scheduled__2026-11-0{night}T02:00:00+00:00").report_dir == stage
        (stage / "data_docs").mkdir(parents=True)
        (stage / "index.html").write_text(f"night {night}")
        (stage / "data_docs" / "index.html").write_text(f"docs {night}")
        if night == 2:
            held = (s.report_dir / "index.html").open()  # a reader mid-page
        publish_report(s, f"scheduled__2026-11-0{night}T02:00:00+00:00")
        assert (s.report_dir / "index.html").read_text() == f"night {night}"
        assert (s.report_dir / "data_docs" / "index.html").read_text() == f"docs {night}"
        assert not stage.exists()
    assert held.read() == "night 1"  # the old version stays readable through an open handle
    held.close()
    assert s.report_dir.is_symlink()
    versions = list((s.report_dir.parent / f".{s.report_dir.name}.versions").iterdir())
    assert len(versions) == 2  # the live one and the one before


def test_failed_nights_staging_dirs_are_kept_three_deep(tmp_path):
    s = _settings(tmp_path)
    for night in range(5):  # five failed nights: their data docs stay where the alerts said
        stage = staging_report_dir(s, f"failed-{night}")
        stage.mkdir(parents=True)
        os.utime(stage, (1_000_000 + night, 1_000_000 + night))
    good = staging_report_dir(s, "good")
    good.mkdir(parents=True)
    (good / "index.html").write_text("tonight")
    publish_report(s, "good")
    left = sorted(p.name for p in good.parent.iterdir())
    assert left == ["failed-2", "failed-3", "failed-4"]
    assert (s.report_dir / "index.html").read_text() == "tonight"


def test_publishing_a_missing_directory_changes_nothing(tmp_path):
    live = tmp_path / "report"
    with pytest.raises(FileNotFoundError, match="nothing to publish"):
        publish_directory(tmp_path / "missing", live)
    assert not live.exists()
