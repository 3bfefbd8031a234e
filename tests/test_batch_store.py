"""The batch store (OFSTED_BATCH_STORE, an fsspec URL) on a real local S3 server (moto).

With a store, the fetch task (on the machine that owns the data directory) copies each document
to parse into the store; a parse task reads it from there and writes its batch there, so it can
run on a machine with an empty data directory and no archive; load_raw reads the batches back;
the night's end removes its files, and the next night's fetch removes what a failed night left.
Without a store, documents come from the local archive and batches stay under the runs folder.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from _s3_support import MotoServer

from ingest.raw.pipeline import (
    batch_url,
    fetch_and_archive,
    load_batches,
    make_batches,
    parse_batch,
    remove_run_files,
    staged_url,
)
from ingest.settings import PROJECT_ROOT, Settings

SAMPLE = PROJECT_ROOT / "data" / "sample_letters"
RUN = "manual__2026-12-01T02:00:00+00:00"


@pytest.fixture(scope="module")
def s3():
    server = MotoServer()
    try:
        with pytest.MonkeyPatch.context() as mp:  # AWS SDKs read the standard variables
            for key, value in server.env.items():
                mp.setenv(key, value)
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()  # one from another module may point elsewhere
            yield server
            s3fs.S3FileSystem.clear_instance_cache()
    finally:
        server.close()


def _settings(data_dir, store: str | None, **extra: str) -> Settings:
    return Settings.from_env({"OFSTED_DATA_DIR": str(data_dir), "OFSTED_INBOX_DIR": str(SAMPLE),
                              "OFSTED_BATCH_STORE": store or "", **extra})


def test_a_parse_worker_with_an_empty_data_dir_parses_from_the_store(tmp_path, s3):
    store = s3.url("night-1")
    host = _settings(tmp_path / "data-host", store)
    docs = fetch_and_archive(host)
    assert len(docs) == 3
    fs = s3.fs()
    staged = [staged_url(host, d["archive_path"]) for d in docs]
    assert all(fs.exists(u) for u in staged)
    # another machine: its own, empty data directory; no archive, nothing shared but the store
    elsewhere = _settings(tmp_path / "worker-2", store)
    written = [parse_batch(elsewhere, batch, RUN, n) for n, batch in enumerate(make_batches(docs, 2))]
    assert written == [batch_url(host, RUN, 0), batch_url(host, RUN, 1)]
    assert all(w.startswith(store + "/runs/") and fs.exists(w) for w in written)
    assert not (tmp_path / "worker-2").exists()  # nothing was read or written on its disk
    counts = load_batches(host, written)
    assert (counts["new"], counts["rejected"], counts["failed"]) == (3, 0, 0)

    remove_run_files(host, RUN)
    assert not any(fs.exists(u) for u in written + staged)


def test_the_next_night_removes_what_a_failed_night_left_in_the_store(tmp_path, s3):
    store = s3.url("night-2")
    host = _settings(tmp_path / "data", store)
    docs = fetch_and_archive(host)
    failed = parse_batch(host, docs, "scheduled__failed-night", 0)  # then that night failed: no load
    fs = s3.fs()
    assert fs.exists(failed)
    # the next night finds the same documents to parse (never loaded) and stages them afresh
    again = fetch_and_archive(host)
    assert [d["sha256"] for d in again] == [d["sha256"] for d in docs]
    assert not fs.exists(failed)
    assert all(fs.exists(staged_url(host, d["archive_path"])) for d in again)


def test_a_missing_or_oversized_staged_document_is_a_row_with_its_reason(tmp_path, s3):
    store = s3.url("night-3")
    host = _settings(tmp_path / "data", store)
    docs = fetch_and_archive(host)
    fs = s3.fs()
    fs.rm(staged_url(host, docs[0]["archive_path"]))
    small = _settings(tmp_path / "small", store, OFSTED_MAX_FILE_BYTES="200")
    rows = _rows(parse_batch(small, docs, RUN, 0))
    by_uri = {r["source_uri"]: r for r in rows}
    missing = by_uri[docs[0]["source_uri"]]
    assert missing["outcome"] == "failed" and "batch store" in missing["reason"]
    for d in docs[1:]:
        assert by_uri[d["source_uri"]]["outcome"] == "rejected"
        assert "file too large" in by_uri[d["source_uri"]]["reason"]


def _rows(url: str) -> list[dict]:
    import fsspec

    with fsspec.open(url, "rb") as fh:
        return pq.read_table(fh).to_pylist()


def test_without_a_store_batches_are_files_under_the_runs_folder(tmp_path):
    settings = _settings(tmp_path, None)
    docs = fetch_and_archive(settings)
    written = [parse_batch(settings, batch, RUN, n) for n, batch in enumerate(make_batches(docs, 2))]
    assert all(w.startswith(str(settings.runs_dir)) for w in written)
    counts = load_batches(settings, written)
    assert (counts["new"], counts["rejected"], counts["failed"]) == (3, 0, 0)
    remove_run_files(settings, RUN)
    assert not (settings.runs_dir / written[0]).exists()


def test_without_a_store_the_next_night_removes_a_failed_nights_batches_only(tmp_path):
    settings = _settings(tmp_path, None)
    docs = fetch_and_archive(settings)
    left = parse_batch(settings, docs, "scheduled__failed-night", 0)
    keep = settings.runs_dir / "incoming" / "keep.bin"  # not a batch: never touched
    keep.parent.mkdir(parents=True)
    keep.write_bytes(b"x")
    fetch_and_archive(settings)
    assert not (settings.runs_dir / left).exists()
    assert keep.exists()
