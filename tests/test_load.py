"""Loading letters into the raw tables: idempotent, duplicates recognised, rejections kept, crash-safe."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from _load_support import SAMPLES, count, make_settings, manifest, query, snapshot, write_synthetic

from devtools.synthetic import generate_letter, render_pdf
from ingest.letters import parse
from ingest.raw.commands import cli_load, cli_reparse
from ingest.raw.pipeline import (
    fetch_and_archive,
    load_batches,
    make_batches,
    parse_batch,
    run_load,
    run_reparse,
)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    box = tmp_path / "inbox"
    box.mkdir()
    for p in SAMPLES.iterdir():
        shutil.copy(p, box / p.name)
    write_synthetic(box / "more", [11, 12, 13, 14, 15], pdf={14})
    return box


def test_load_twice_changes_nothing(tmp_path, inbox):
    s = make_settings(tmp_path, inbox)
    first = run_load(s)
    assert (first["new"], first["duplicate"], first["rejected"], first["failed"]) == (8, 0, 0, 0)
    assert count(s, "letters") == 8
    expected_findings = sum(generate_letter(i).expected["counts"][c]
                            for i in range(11, 16) for c in generate_letter(i).expected["counts"])
    real = query(s, "select count(*) from raw.findings f join raw.letters l using (_sha256) "
                    "where l._source_uri like '%sample%' or l._source_uri like '%/inbox/0%'")[0][0]
    assert real == 3 + 7 + 8 + 2 + 8 + 9 + 2 + 5 + 6  # the three real letters' findings
    assert count(s, "findings") == real + expected_findings
    before = snapshot(s)
    before_manifest = snapshot(s, with_times=False)["manifest"]

    second = run_load(s)
    assert (second["new"], second["unchanged"], second["duplicate"]) == (0, 8, 0)
    after = snapshot(s)
    for table in ("letters", "findings", "copy_recipients", "rejected_documents"):
        assert after[table] == before[table], table
    assert snapshot(s, with_times=False)["manifest"] == before_manifest
    # every archived file is there under its content address, unchanged
    for p in inbox.rglob("*.*"):
        sha = _sha(p)
        assert (s.archive_dir / sha[:2] / f"{sha}{p.suffix}").read_bytes() == p.read_bytes()


def test_load_parses_the_letter_fields(tmp_path, inbox):
    s = make_settings(tmp_path, inbox)
    run_load(s)
    sha = _sha(inbox / "000_0d07fcbfe49cee7c.txt")
    row = query(s, "select authority_name, inspection_start_date::varchar, inspection_end_date::varchar, "
                   "letter_date::varchar, inspector_name, finding_count, source_format, _parser_version "
                   "from raw.letters where _sha256 = ?", [sha])[0]
    assert row == ("Dorset County Council", "2010-05-18", "2010-05-19", "2010-06-17", "Martin Davis", 18,
                   "text", parse.PARSER_VERSION)
    cats = dict(query(s, "select category, count(*) from raw.findings where _sha256 = ? group by 1", [sha]))
    assert cats == {"strength": 3, "satisfactory": 7, "area_for_development": 8}
    pdf_letter = generate_letter(14)
    pdf_row = query(s, "select authority_name, source_format, finding_count from raw.letters "
                       "where _source_uri like '%letter_14.pdf'")[0]
    assert pdf_row == (pdf_letter.expected["authority_name"], "pdf", len(pdf_letter.expected["findings"]))
    texts = [r[0] for r in query(s, "select finding_text from raw.findings f join raw.letters l "
                                    "using (_sha256) where l._source_uri like '%letter_14.pdf'")]
    assert sorted(texts) == sorted(f["text"] for f in pdf_letter.expected["findings"])


def test_same_bytes_under_other_names_is_one_letter(tmp_path, inbox):
    s = make_settings(tmp_path, inbox)
    run_load(s)
    original = inbox / "000_0d07fcbfe49cee7c.txt"
    (inbox / "copies").mkdir()
    shutil.copy(original, inbox / "copies" / "dorset_again.txt")
    shutil.copy(original, inbox / "copies" / "dorset_third.TXT")
    counts = run_load(s)
    assert (counts["new"], counts["duplicate"], counts["unchanged"]) == (0, 2, 8)
    assert count(s, "letters") == 8
    m = manifest(s)
    sha = _sha(original)
    assert m["dorset_again.txt"][:2] == ("duplicate", sha)
    assert m["dorset_third.TXT"][:2] == ("duplicate", sha)
    assert "same bytes as" in m["dorset_again.txt"][2] and original.name in m["dorset_again.txt"][2]
    assert {d["how"] for d in counts["duplicates"]} == {"bytes"}
    again = run_load(s)  # and they stay duplicates
    assert (again["new"], again["duplicate"], again["unchanged"]) == (0, 0, 10)


def test_duplicates_within_one_run(tmp_path):
    box = tmp_path / "inbox"
    box.mkdir()
    shutil.copy(SAMPLES / "003_9c1c04a8ac30f548.txt", box / "a.txt")
    shutil.copy(SAMPLES / "003_9c1c04a8ac30f548.txt", box / "b.txt")
    raw = (SAMPLES / "003_9c1c04a8ac30f548.txt").read_bytes()
    (box / "c_crlf.txt").write_bytes(raw.replace(b"\n", b"\r\n"))
    s = make_settings(tmp_path, box, OFSTED_BATCH_SIZE="2")  # the duplicates fall in another batch
    counts = run_load(s)
    assert (counts["new"], counts["duplicate"]) == (1, 2)
    assert count(s, "letters") == 1 and count(s, "findings") == 19
    m = manifest(s)
    assert m["a.txt"][0] == "loaded"
    assert m["b.txt"][:2] == ("duplicate", _sha(box / "a.txt"))
    assert m["c_crlf.txt"][:2] == ("duplicate", _sha(box / "a.txt"))
    assert "content hash" in m["c_crlf.txt"][2]


def test_crlf_and_other_encoding_variants_are_duplicates(tmp_path, inbox):
    s = make_settings(tmp_path, inbox)
    run_load(s)
    letter = generate_letter(12)
    text = letter.text
    variants = tmp_path / "inbox" / "variants"
    variants.mkdir()
    (variants / "crlf.txt").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    (variants / "bom.txt").write_bytes(text.encode("utf-8-sig"))
    (variants / "cr_only.txt").write_bytes(text.replace("\n", "\r").encode("utf-8"))
    (variants / "trailing_spaces.txt").write_bytes(("\n".join(ln + "  " for ln in text.split("\n"))).encode())
    counts = run_load(s)
    assert counts["new"] == 0 and counts["duplicate"] == 4, counts["documents"]
    assert {d["how"] for d in counts["duplicates"]} == {"content"}
    original_sha = query(s, "select _sha256 from raw.letters where _source_uri like '%letter_12.txt'")[0][0]
    assert {v[1] for k, v in manifest(s).items() if k in {"crlf.txt", "bom.txt", "cr_only.txt",
                                                            "trailing_spaces.txt"}} == {original_sha}
    assert count(s, "letters") == 8


def test_text_and_pdf_of_the_same_letter_load_once(tmp_path):
    box = tmp_path / "inbox"
    box.mkdir()
    letter = generate_letter(31)
    (box / "a_letter.txt").write_bytes(letter.to_bytes())
    (box / "b_letter.pdf").write_bytes(render_pdf(letter))
    s = make_settings(tmp_path, box)
    counts = run_load(s)
    assert (counts["new"], counts["duplicate"]) == (1, 1)
    assert count(s, "letters") == 1
    assert query(s, "select source_format from raw.letters") == [("text",)]
    dup = counts["duplicates"][0]
    assert dup["source_uri"].endswith("b_letter.pdf") and dup["how"] == "content"
    assert dup["duplicate_of_uri"].endswith("a_letter.txt")


def test_rejected_files_are_kept_with_reason_and_the_rest_loads(tmp_path, inbox, capsys):
    bad = inbox / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "noise.pdf").write_bytes(os.urandom(3000))
    (bad / "other_letter.txt").write_text(
        "12 May 2010\n\nDear Headteacher\n\nInspection of Little Town Primary School\n\n"
        "Thank you for your help when I inspected your school. The school is good.\n\nYours sincerely\n")
    s = make_settings(tmp_path, inbox)
    assert cli_load(s) == 0
    out = capsys.readouterr().out
    assert count(s, "letters") == 8
    rejected = {uri.rsplit("/", 1)[-1]: (reason, rel) for uri, reason, rel in
                query(s, "select _source_uri, reason, _archive_path from raw.rejected_documents")}
    assert set(rejected) == {"empty.txt", "noise.pdf", "other_letter.txt"}
    for name, (reason, rel) in rejected.items():
        assert reason and "\n" not in reason
        assert (s.archive_dir / rel).read_bytes() == (bad / name).read_bytes()  # kept in the archive
        assert f"{name}  ({reason})" in out
    assert manifest(s)["noise.pdf"][0] == "rejected"
    assert "8 new, 0 unchanged, 0 duplicate, 3 rejected, 0 failed" in out.splitlines()[-1]
    # a second run does not retry them (same parser) and changes nothing
    assert cli_load(s) == 0
    assert "0 new, 11 unchanged, 0 duplicate, 0 rejected, 0 failed" in capsys.readouterr().out
    assert count(s, "rejected_documents") == 3


def test_changed_file_at_the_same_uri_supersedes_the_old_version(tmp_path):
    box = tmp_path / "inbox"
    box.mkdir()
    p = box / "letter.txt"
    p.write_bytes(generate_letter(40).to_bytes())
    s = make_settings(tmp_path, box)
    run_load(s)
    old_sha = _sha(p)
    corrected = generate_letter(41, authority=generate_letter(40).authority)
    p.write_bytes(corrected.to_bytes())
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 10**9))
    counts = run_load(s)
    assert counts["new"] == 1
    new_sha = _sha(p)
    rows = dict(query(s, "select _sha256, _superseded_by from raw.letters"))
    assert rows == {old_sha: new_sha, new_sha: None}
    assert manifest(s)["letter.txt"][0] == "loaded"
    assert query(s, "select _sha256 from raw.manifest")[0][0] == new_sha


def _batches(s, size: int) -> list[str]:
    docs = fetch_and_archive(s)
    return [parse_batch(s, b, "run-test", n) for n, b in enumerate(make_batches(docs, size), 1)]


def test_failed_batch_leaves_tables_as_before_it_and_rerun_completes(tmp_path, inbox):
    s = make_settings(tmp_path, inbox)
    paths = _batches(s, 3)  # 8 documents -> 3 batches
    assert len(paths) == 3
    Path(paths[1]).write_bytes(Path(paths[1]).read_bytes()[:200])  # batch 2 torn mid-write
    with pytest.raises(RuntimeError, match="cannot read batch file"):
        load_batches(s, paths)
    assert count(s, "letters") == 3  # batch 1 committed, batch 2 rolled back, batch 3 never reached
    statuses = sorted(st for st, *_ in manifest(s).values())
    assert statuses == ["archived"] * 5 + ["loaded"] * 3

    counts = run_load(s)  # the next run picks up what was archived but never loaded
    assert (counts["new"], counts["unchanged"], counts["duplicate"]) == (5, 3, 0)
    reference = make_settings(tmp_path / "ref", inbox)
    run_load(reference)
    assert snapshot(s, with_times=False) == snapshot(reference, with_times=False)


def test_killed_load_then_rerun(tmp_path):
    box = tmp_path / "inbox"
    write_synthetic(box, list(range(200, 360)))
    s = make_settings(tmp_path, box, OFSTED_BATCH_SIZE="10")
    env = os.environ | {"OFSTED_DATA_DIR": str(s.data_dir), "OFSTED_INBOX_DIR": str(box),
                        "OFSTED_BATCH_SIZE": "10"}
    proc = subprocess.Popen([sys.executable, "-m", "ingest.cli", "load"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    killed = False
    # `ofsted load` prints each document's line as its batch commits: kill once five batches have
    for n, _line in enumerate(proc.stdout, 1):
        if n == 50:
            proc.send_signal(signal.SIGKILL)  # mid-run: some batches committed, others parsed or loading
            killed = True
            break
    proc.stdout.close()
    proc.wait(30)
    assert killed, "the load finished before it could be killed"
    loaded_before = count(s, "letters")
    # five batches had committed, not all 16 (the kill may have let one more commit)
    assert 50 <= loaded_before < 160

    counts = run_load(s)
    assert counts["new"] + counts["unchanged"] == 160 and counts["duplicate"] == 0
    assert counts["unchanged"] == loaded_before  # what the killed run committed is kept, once
    assert count(s, "letters") == 160
    expected = sum(len(generate_letter(i).expected["findings"]) for i in range(200, 360))
    assert count(s, "findings") == expected
    assert query(s, "select count(*) from (select _sha256 from raw.findings "
                    "group by _sha256, category, ordinal having count(*) > 1)")[0][0] == 0
    assert set(st for st, *_ in manifest(s).values()) == {"loaded"}


def _as_loaded_by(s, version: str, where: str = "true") -> None:
    """The warehouse as an older release of the parser left it (its version on the rows)."""
    con = duckdb.connect(str(s.work_warehouse))
    try:
        con.execute(f"update raw.letters set _parser_version = ? where {where}", [version])
        con.execute(f"update raw.rejected_documents set _parser_version = ? where {where}", [version])
    finally:
        con.close()


def test_reparse_after_parser_version_change(tmp_path, inbox, capsys):
    s = make_settings(tmp_path, inbox)
    run_load(s)
    before = snapshot(s, with_times=False)
    current = parse.PARSER_VERSION
    _as_loaded_by(s, "0.9")

    counts = run_reparse(s)
    assert (counts["reparsed"], counts["new"], counts["candidates"]) == (8, 0, 8)
    assert query(s, "select distinct _parser_version from raw.letters") == [(current,)]
    after = snapshot(s, with_times=False)
    assert after["letters"] == before["letters"]
    assert after["findings"] == before["findings"]
    assert after["copy_recipients"] == before["copy_recipients"]
    # nothing left at an older version: a second reparse has nothing to do
    assert run_reparse(s)["candidates"] == 0
    # the command: --all re-parses everything again with the installed parser
    assert cli_reparse(s, everything=True) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("re-parsed into ") and "8 reparsed, 0 new" in out[-1]
    assert sum(line.startswith("reparsed ") for line in out) == 8
    assert query(s, "select distinct _parser_version from raw.letters") == [(current,)]
    assert count(s, "letters") == 8 and snapshot(s, with_times=False)["findings"] == before["findings"]


def test_reparse_rescues_documents_an_older_parser_rejected(tmp_path, inbox):
    s = make_settings(tmp_path, inbox)
    first = run_load(s)
    assert (first["new"], first["rejected"]) == (8, 0)
    # as an older release that could not read PDFs left it: letter_14.pdf rejected, the rest loaded
    con = duckdb.connect(str(s.work_warehouse))
    try:
        sha, uri, rel, fetched = con.execute("select _sha256, _source_uri, _archive_path, _fetched_at "
                                             "from raw.letters where source_format = 'pdf'").fetchone()
        for t in ("raw.findings", "raw.copy_recipients", "raw.letters"):
            con.execute(f"delete from {t} where _sha256 = ?", [sha])
        con.execute("insert into raw.rejected_documents values (?, ?, ?, ?, '0.1', "
                    "'PDF letters not supported yet', ?, ?)", [sha, sha, uri, rel, fetched, fetched])
        con.execute("update raw.manifest set status = 'rejected' where _sha256 = ?", [sha])
    finally:
        con.close()
    _as_loaded_by(s, "0.1")

    counts = run_load(s)  # the next load notices the parser changed and re-parses what it did before
    assert counts["new"] == 1 and counts["reparsed"] == 7 and counts["rejected"] == 0
    assert count(s, "rejected_documents") == 0 and count(s, "letters") == 8
    assert manifest(s)["letter_14.pdf"][0] == "loaded"


def test_locked_warehouse_is_one_clear_line(tmp_path, inbox, capsys):
    s = make_settings(tmp_path, inbox)
    run_load(s)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(60)", str(s.work_warehouse)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert cli_load(s) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "in use by another process" in err and str(s.work_warehouse) in err
    finally:
        holder.kill()
        holder.wait()


def test_ofsted_load_command_with_inbox_and_warehouse_flags(tmp_path, inbox, monkeypatch, capsys):
    from ingest.cli import main

    monkeypatch.setenv("OFSTED_DATA_DIR", str(tmp_path / "data"))
    (inbox / "broken.pdf").write_bytes(b"%PDF-1.4\n% torn off here")
    warehouse = tmp_path / "elsewhere" / "mine.duckdb"
    assert main(["load", "--inbox", str(inbox), "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("new ") for line in out) == 8
    assert any(line.startswith("rejected ") and "broken.pdf" in line for line in out)
    assert out[-1] == (f"loaded into {warehouse}: 8 new, 0 unchanged, 0 duplicate, 1 rejected, 0 failed")
    assert warehouse.is_file() and not (tmp_path / "data" / "warehouse").exists()
    assert main(["load", "--inbox", str(inbox), "--warehouse", str(warehouse)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"loaded into {warehouse}: 0 new, 9 unchanged, 0 duplicate, 0 rejected, 0 failed"]


def test_lost_archive_copy_is_reported_and_restored_by_the_next_load(tmp_path, inbox, monkeypatch):
    s = make_settings(tmp_path, inbox)
    run_load(s)
    original = inbox / "003_9c1c04a8ac30f548.txt"
    sha = _sha(original)
    archived = s.archive_dir / sha[:2] / f"{sha}.txt"
    archived.unlink()
    _as_loaded_by(s, "0.9")  # forces a re-parse

    counts = run_reparse(s)
    assert counts["reparsed"] == 7 and counts["failed"] == 1
    assert counts["failures"][0]["reason"] == "cannot read archived copy: No such file or directory"
    assert count(s, "letters") == 8  # the loaded letter is kept

    counts = run_load(s)  # the source still has it: fetched again, archive restored
    assert counts["reparsed"] == 1 and counts["failed"] == 0
    assert archived.read_bytes() == original.read_bytes()
    assert manifest(s)[original.name][0] == "loaded"


def test_a_full_disk_during_load_is_reported_as_itself(tmp_path, inbox, monkeypatch, capsys):
    """DuckDB may end the transaction itself on an I/O error; the rollback that follows must
    not replace "No space left on device" with "cannot rollback - no transaction is active"."""
    from ingest.raw import load

    s = make_settings(tmp_path, inbox)
    real_apply = load._apply

    def disk_full(con, *args, **kwargs):
        real_apply(con, *args, **kwargs)
        con.rollback()  # what DuckDB does to the transaction when its write fails
        raise duckdb.IOException("IO Error: Could not write file: No space left on device")

    monkeypatch.setattr(load, "_apply", disk_full)
    assert cli_load(s) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("No space left on device"), err
    assert "rollback" not in err[0]
    monkeypatch.undo()
    assert run_load(s)["new"] == 8  # nothing was half-loaded: the next run loads everything


def test_orphaned_archive_temp_files_are_cleaned_by_the_next_run(tmp_path, inbox):
    s = make_settings(tmp_path, inbox)
    run_load(s)
    folder = next(p for p in s.archive_dir.iterdir() if p.is_dir())
    orphan = folder / f".{'a' * 64}.pdf.0123abcd.tmp"
    orphan.write_bytes(b"half a file from a run that died")
    run_load(s)
    assert not orphan.exists()
    assert not list(s.archive_dir.rglob("*.tmp"))


def test_an_archive_write_error_keeps_its_cause_and_is_retried(tmp_path, inbox, capsys):
    s = make_settings(tmp_path, inbox)
    s.archive_dir.parent.mkdir(parents=True)
    s.archive_dir.write_text("a file where the archive folder should be")
    cli_load(s)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].endswith("0 new, 0 unchanged, 0 duplicate, 0 rejected, 8 failed")
    assert all(line.endswith("(cannot archive: Not a directory)") for line in out[:-1])
    s.archive_dir.unlink()
    assert run_load(s)["new"] == 8


def test_a_failed_fetch_fails_the_command_after_loading_what_it_could(tmp_path, inbox, monkeypatch,
                                                                      capsys):
    missing = make_settings(tmp_path / "a", tmp_path / "no-such-inbox")
    assert cli_load(missing) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ofsted load: error: fetch failed: inbox folder {tmp_path / 'no-such-inbox'} "
                   "does not exist or is not a folder"]

    # a sub-folder that cannot be listed (injected: CI runs as root, which permissions do not stop)
    real_scandir = os.scandir
    locked = str(inbox / "more")

    def scandir(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    s = make_settings(tmp_path / "b", inbox)
    assert cli_load(s) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"ofsted load: error: fetch failed: cannot read folder {locked}: Permission denied")
    assert sum(line.startswith("new ") for line in captured.out.splitlines()) == 3
    assert count(s, "letters") == 3  # the three letters beside it were loaded


def test_a_warehouse_from_before_rejections_without_hash_is_migrated(tmp_path):
    """raw.rejected_documents used to be keyed by _sha256: opening such a warehouse rekeys it
    by _rejection_key, keeping every row, and a file rejected unread can then be recorded."""
    from ingest.raw.db import connect

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema raw")
    con.execute("""create table raw.rejected_documents (_sha256 varchar primary key,
        _source_uri varchar not null, _archive_path varchar, _parser_version varchar not null,
        reason varchar not null, first_seen_at timestamptz not null, last_seen_at timestamptz not null)""")
    con.execute("insert into raw.rejected_documents values ('ab12', 'file:///in/x.pdf', 'ab/ab12.pdf', "
                "'1.0.0', 'empty file', '2026-01-01 02:00:00+00', '2026-01-02 02:00:00+00')")
    con.close()

    con = connect(path)
    try:
        assert con.execute("select _rejection_key, _sha256, _source_uri, reason from raw.rejected_documents"
                           ).fetchall() == [("ab12", "ab12", "file:///in/x.pdf", "empty file")]
        con.execute("insert into raw.rejected_documents values ('file:///in/big.txt @ 2026-01-03T02:00:00Z', "
                    "null, 'file:///in/big.txt', null, '1.0.0', 'file too large', now(), now())")
    finally:
        con.close()
    con = connect(path)  # a second open changes nothing
    try:
        assert con.execute("select count(*) from raw.rejected_documents").fetchone()[0] == 2
    finally:
        con.close()
