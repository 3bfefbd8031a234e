"""The pipeline steps the DAG calls, and an HTTP source end to end against a real local server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from _http_support import Fault, TestHTTPServer
from _load_support import SAMPLES, count, make_settings, manifest, query, write_synthetic

from devtools.synthetic import generate_letter, render_pdf
from ingest.raw.pipeline import (
    content_hash,
    fetch_and_archive,
    load_batches,
    make_batches,
    parse_batch,
    run_load,
)


def test_make_batches_keeps_order_and_size():
    docs = [{"i": i} for i in range(7)]
    assert make_batches(docs, 3) == [docs[0:3], docs[3:6], docs[6:7]]
    assert make_batches([], 3) == []


def test_steps_return_json_and_parse_batch_is_idempotent(tmp_path):
    box = tmp_path / "inbox"
    write_synthetic(box, [1, 2, 3], pdf={2})
    (box / "junk.txt").write_text("not a letter at all")
    s = make_settings(tmp_path, box)
    docs = fetch_and_archive(s)
    assert json.loads(json.dumps(docs)) == docs  # XCom-safe
    assert len(docs) == 4 and {d["status"] for d in docs} == {"fetched"}
    for d in docs:
        assert (s.archive_dir / d["archive_path"]).is_file()
        assert d["archive_path"] == f"{d['sha256'][:2]}/{d['sha256']}.{d['ext']}"
    assert not list((s.runs_dir / "incoming").glob("*"))  # fetched temp files moved into the archive

    first = parse_batch(s, docs, "run-1", 1)
    rows1 = pq.read_table(first).drop(["parsed_at"]).to_pylist()
    again = parse_batch(s, docs, "run-1", 1)
    assert again == first and Path(first).name == "batch_00001.parquet"
    assert pq.read_table(again).drop(["parsed_at"]).to_pylist() == rows1
    assert [r["outcome"] for r in rows1].count("parsed") == 3
    junk = next(r for r in rows1 if r["source_uri"].endswith("junk.txt"))
    assert junk["outcome"] == "rejected" and junk["reason"]

    counts = load_batches(s, [first])
    assert json.loads(json.dumps(counts)) == counts
    assert (counts["new"], counts["rejected"], counts["batches"]) == (3, 1, 1)
    assert counts["rejections"][0]["source_uri"].endswith("junk.txt")
    # loading the same batch file again changes nothing
    assert load_batches(s, [first])["unchanged"] == 3
    assert count(s, "letters") == 3 and count(s, "rejected_documents") == 1
    # everything is settled: the next fetch has nothing to hand on
    assert fetch_and_archive(s) == []


def test_content_hash_ignores_layout_but_not_content():
    a = generate_letter(5).to_letter()
    b = generate_letter(5).to_letter(source_format="pdf")
    assert content_hash(a) == content_hash(b)
    c = generate_letter(6).to_letter()
    assert content_hash(a) != content_hash(c)


def test_http_source_end_to_end(tmp_path):
    letters = {f"/letters/{i}.txt": generate_letter(100 + i).to_bytes() for i in range(4)}
    letters["/letters/4.pdf"] = render_pdf(generate_letter(104))
    letters["/letters/dorset.txt"] = (SAMPLES / "000_0d07fcbfe49cee7c.txt").read_bytes()
    letters["/mirror/dorset-copy.txt"] = letters["/letters/dorset.txt"]
    with TestHTTPServer() as srv:
        for path, body in letters.items():
            srv.serve(path, body)
        srv.serve_index("/index.html", [*letters, "/letters/missing.txt"])
        srv.inject("/letters/1.txt", Fault(status=500))  # once: retried within the run
        srv.inject("/letters/2.txt", Fault(status=503), times=2)  # down for this run (2 attempts)
        s = make_settings(tmp_path, OFSTED_SOURCE="http", OFSTED_HTTP_INDEX_URL=srv.url("/index.html"),
                          OFSTED_HTTP_RETRIES="1")

        first = run_load(s)
        assert (first["new"], first["duplicate"], first["failed"]) == (5, 1, 2)
        failed = {f["source_uri"].rsplit("/", 1)[-1] for f in first["failures"]}
        assert failed == {"2.txt", "missing.txt"}
        assert count(s, "letters") == 5
        assert query(s, "select count(*) from raw.letters where source_format = 'pdf'")[0][0] == 1
        m = manifest(s)
        assert m["2.txt"][0] == "failed" and m["2.txt"][2]
        assert m["dorset-copy.txt"][0] == "duplicate"
        for name in ("0.txt", "1.txt", "3.txt", "4.pdf", "dorset.txt"):
            assert m[name][0] == "loaded"

        # the next night: the flaky server is back; unchanged documents answer 304
        srv.clear_requests()
        second = run_load(s)
        assert (second["new"], second["unchanged"], second["failed"]) == (1, 6, 1)
        assert count(s, "letters") == 6
        asked = srv.requests_for("/letters/0.txt")
        assert len(asked) == 1 and asked[0].headers.get("if-none-match")  # conditional: answered 304
        assert manifest(s)["2.txt"][0] == "loaded"

        # a corrected letter at the same URL is fetched again and supersedes the old one
        srv.serve("/letters/3.txt", generate_letter(203).to_bytes())
        third = run_load(s)
        assert third["new"] == 1 and count(s, "letters") == 7
        superseded = query(s, "select count(*) from raw.letters where _superseded_by is not null")[0][0]
        assert superseded == 1


def test_archiver_group_commit(tmp_path):
    from ingest.raw import archive

    root = tmp_path / "archive"
    srcs = []
    for i in range(5):
        p = tmp_path / f"in_{i}.part"
        p.write_bytes(f"letter {i % 4}".encode())  # the last one repeats the first's bytes
        srcs.append(p)
    arch = archive.Archiver(root, group=3)
    import hashlib

    rels = [arch.add(p, hashlib.sha256(p.read_bytes()).hexdigest(), "txt") for p in srcs]
    # the first three were flushed as a group; the fourth waits under a temp name only
    assert (root / rels[0]).read_bytes() == b"letter 0"
    assert not (root / rels[3]).exists()
    assert list((root / rels[3]).parent.glob(".*.tmp"))
    assert rels[4] == rels[0]
    missing = arch.add(tmp_path / "gone.part", "f" * 64, "pdf")
    assert arch.finish() == {missing: "cannot archive: No such file or directory"}
    assert (root / rels[3]).read_bytes() == b"letter 3"
    assert not list(root.rglob("*.tmp")) and not any(p.exists() for p in srcs)  # moved, none left behind
    assert sorted(p.name for p in root.rglob("*.txt")) == sorted({r.rsplit("/", 1)[1] for r in rels})


def test_one_or_two_parse_workers_load_the_same_rows(tmp_path):
    from _load_support import snapshot

    box = tmp_path / "inbox"
    write_synthetic(box, list(range(500, 530)), pdf={503, 517})
    (box / "copy.txt").write_bytes((box / "letter_505.txt").read_bytes())
    pooled = make_settings(tmp_path / "a", box, OFSTED_BATCH_SIZE="5")
    inline = make_settings(tmp_path / "b", box, OFSTED_BATCH_SIZE="5")
    a = run_load(pooled, parse_workers=1)
    b = run_load(inline, parse_workers=2)  # a batch split over two worker processes
    assert (a["new"], a["duplicate"], a["batches"]) == (30, 1, 7)
    assert {k: a[k] for k in ("new", "duplicate", "rejected", "batches")} == \
        {k: b[k] for k in ("new", "duplicate", "rejected", "batches")}
    assert snapshot(pooled, with_times=False) == snapshot(inline, with_times=False)


def test_dag_style_run_ids_and_cleanup(tmp_path):
    from ingest.raw.pipeline import remove_run_files

    s = make_settings(tmp_path, SAMPLES)
    docs = fetch_and_archive(s)
    run_id = "scheduled__2026-01-01T02:00:00+00:00"
    paths = [parse_batch(s, b, run_id, n) for n, b in enumerate(make_batches(docs, 2))]
    assert [Path(p).name for p in paths] == ["batch_00000.parquet", "batch_00001.parquet"]
    assert load_batches(s, paths)["new"] == 3
    assert load_batches(s, paths)["unchanged"] == 3  # a retried load task changes nothing
    remove_run_files(s, run_id)
    assert not Path(paths[0]).parent.exists()


def test_dag_parse_task_rejects_a_bomb_and_parses_the_rest_of_its_batch(tmp_path):
    """The DAG's parse task (`parse_batch`): a document that blows its worker's memory limit
    is a rejected row naming the limit; the documents after it, in the same batch, parse."""
    from hostile_corpus import flate_bomb

    from ingest.raw.pipeline import batch_path

    box = tmp_path / "inbox"
    box.mkdir()
    for p in sorted(SAMPLES.iterdir()):
        shutil.copy(p, box / p.name)
    (box / "001_bomb.pdf").write_bytes(flate_bomb())
    s = make_settings(tmp_path, box, OFSTED_PARSE_MEMORY_BYTES=str(512 * 1024 * 1024))
    docs = fetch_and_archive(s)
    assert [Path(d["source_uri"]).name for d in docs][:2] == ["000_0d07fcbfe49cee7c.txt", "001_bomb.pdf"]
    rows = pq.read_table(parse_batch(s, docs, "manual__bomb", 0)).to_pylist()
    outcome = {Path(r["source_uri"]).name: (r["outcome"], r["reason"]) for r in rows}
    assert outcome["001_bomb.pdf"] == ("rejected", "pdf extraction exceeded 512 MiB of memory")
    assert [o for name, (o, _) in outcome.items() if name != "001_bomb.pdf"] == ["parsed"] * 3
    counts = load_batches(s, [batch_path(s, "manual__bomb", 0)])
    assert (counts["new"], counts["rejected"]) == (3, 1)
