"""Parse batches through fsspec: with OFSTED_BATCH_STORE set, the mapped parse tasks write
their batches to that URL and load_raw reads them from there (what lets Celery workers on
other machines share them); unset, they stay files under the runs folder."""

from __future__ import annotations

import fsspec
import pytest

from ingest.raw.pipeline import fetch_and_archive, load_batches, make_batches, parse_batch, remove_run_files
from ingest.settings import PROJECT_ROOT, Settings

SAMPLE = PROJECT_ROOT / "data" / "sample_letters"


@pytest.mark.parametrize("store", ["memory://ofsted-batches/runs", None])
def test_batches_round_trip_through_the_store_and_are_removed_after_the_night(tmp_path, store):
    settings = Settings.from_env({"OFSTED_DATA_DIR": str(tmp_path), "OFSTED_INBOX_DIR": str(SAMPLE),
                                  "OFSTED_BATCH_STORE": store or ""})
    docs = fetch_and_archive(settings)
    assert len(docs) == 3
    written = [parse_batch(settings, batch, "manual__2026-12-01T02:00:00+00:00", n)
               for n, batch in enumerate(make_batches(docs, 2))]
    assert len(written) == 2
    if store:
        assert all(w.startswith(store + "/") for w in written)
        fs = fsspec.filesystem("memory")
        assert all(fs.exists(w) for w in written)
        assert not (tmp_path / "runs").exists()  # nothing went to the local disk
    else:
        assert all(w.startswith(str(settings.runs_dir)) for w in written)

    counts = load_batches(settings, written)
    assert (counts["new"], counts["rejected"], counts["failed"]) == (3, 0, 0)

    remove_run_files(settings, "manual__2026-12-01T02:00:00+00:00")
    if store:
        assert not any(fsspec.filesystem("memory").exists(w) for w in written)
    else:
        assert not settings.runs_dir.joinpath(written[0]).exists()
