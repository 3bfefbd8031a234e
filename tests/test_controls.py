"""The data team's controls without a night: the night history, `ofsted status`,
`ofsted quarantine` / `ofsted release` on a loaded warehouse, the data directory lock between
real processes (and a stale one taken over), one-line errors with the trace in the log file,
and orphaned publishing files cleaned. The whole-night flows are in tests/test_run.py."""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ingest.nights import finish_night, history_path, last_good_night, note_night, read_nights, start_night
from ingest.settings import PROJECT_ROOT, Settings

SAMPLE_LETTERS = PROJECT_ROOT / "data" / "sample_letters"
DORSET = "000_0d07fcbfe49cee7c.txt"


def env_for(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFSTED_", "AIRFLOW"))}
    env.update({"OFSTED_INBOX_DIR": str(root / "inbox"), "AIRFLOW_HOME": str(root / "airflow"),
                "DO_NOT_TRACK": "1"})
    env.update(extra)
    return env


def ofsted(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300):
    """`ofsted ARGS --data-dir ROOT/data` in a subprocess (the data dir given as the flag)."""
    argv = [sys.executable, "-m", "ingest.cli", *args]
    if args and args[0] not in ("parse",):
        argv += ["--data-dir", str(root / "data")]
    return subprocess.run(argv, env=env or env_for(root), cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def settings_of(root: Path) -> Settings:
    return Settings.from_env({"OFSTED_DATA_DIR": str(root / "data"), "OFSTED_INBOX_DIR": str(root / "inbox")})


def no_traceback(*outputs: str) -> None:
    for out in outputs:
        assert "Traceback" not in out and 'File "' not in out, out


@pytest.fixture(scope="module")
def loaded_once(tmp_path_factory) -> tuple[Path, Path]:
    """The sample letters loaded once for the module by `ofsted load` (raw tables only, no
    night), in a root folder, and a pristine copy of that folder to put it back from."""
    root = tmp_path_factory.mktemp("loaded")
    shutil.copytree(SAMPLE_LETTERS, root / "inbox")
    done = ofsted(root, "load")
    assert done.returncode == 0, done.stderr
    pristine = tmp_path_factory.mktemp("loaded_pristine") / "root"
    shutil.copytree(root, pristine, symlinks=True)
    return root, pristine


@pytest.fixture
def loaded(loaded_once) -> Path:
    """A data directory with the sample letters loaded (raw tables only, no night), this test's
    own: the module's one load put back as it was, at its own path (the warehouse holds the
    inbox's file URIs). A module's tests run one after another in one process."""
    root, pristine = loaded_once
    shutil.rmtree(root)
    shutil.copytree(pristine, root, symlinks=True)
    return root


def quarantine_log(root: Path) -> list[tuple]:
    con = duckdb.connect(str(settings_of(root).work_warehouse), read_only=True)
    try:
        return con.execute("select sha256, source_uri, reason, action, by_user, acted_at "
                           "from raw.quarantine order by acted_at").fetchall()
    finally:
        con.close()


def letter_shas(root: Path) -> dict[str, str]:
    con = duckdb.connect(str(settings_of(root).work_warehouse), read_only=True)
    try:
        return dict(con.execute("select _source_uri, _sha256 from raw.letters").fetchall())
    finally:
        con.close()


# --- the night history ----------------------------------------------------------------------

def test_night_history_merges_updates_newest_first_and_knows_the_last_good_night(tmp_path):
    s = settings_of(tmp_path)
    start_night(s, "n1", "scheduled")
    note_night(s, "n1", counts={"new": 3, "duplicate": 0, "documents": [{"x": 1}]},
               dq={"raw": {"success": True, "evaluated": 20, "failed": 0, "failures": []}})
    finish_night(s, "n1", "success", published=True)
    start_night(s, "n2", "scheduled")
    note_night(s, "n2", dq={"marts": {"success": False, "evaluated": 30, "failed": 1,
                                      "failures": [{"detail": "two inspections on one day\nsecond line"}]}})
    finish_night(s, "n2", "failed", failed_task="validate_marts",
                 reason="1 of 30 mart expectations failed\nmore")
    finish_night(s, "n2", "failed", failed_task="report", reason="a consequence")  # keeps the first cause
    with history_path(s).open("a") as f:
        f.write('{"run_id": "torn", "sta')  # a crash mid-line
    nights = read_nights(s)
    assert [n["run_id"] for n in nights] == ["n2", "n1"]
    n2, n1 = nights
    assert n1["state"] == "success" and n1["published"] and n1["warehouse_run_id"] == "n1"
    assert n1["counts"] == {"new": 3, "duplicate": 0}  # numbers only
    assert n1["dq"]["raw"] == {"evaluated": 20, "failed": 0, "success": True}
    assert n2["state"] == "failed" and n2["failed_task"] == "validate_marts"
    assert n2["reason"] == "1 of 30 mart expectations failed"
    assert n2["dq"]["marts"]["failures"] == ["two inspections on one day"]
    assert n2["published"] is False and n2["warehouse_run_id"] == "n1"
    assert n2["finished_at"] >= n2["started_at"]
    assert last_good_night(s)["run_id"] == "n1"


def test_a_night_left_running_is_closed_as_failed_when_the_next_one_starts(tmp_path):
    s = settings_of(tmp_path)
    start_night(s, "killed", "scheduled")
    start_night(s, "next", "manual")
    start_night(s, "next", "manual")  # a retried first task: still one night
    killed, = (n for n in read_nights(s) if n["run_id"] == "killed")
    assert killed["state"] == "failed" and "never finished" in killed["reason"]
    assert [n["run_id"] for n in read_nights(s)] == ["next", "killed"]


# --- status ---------------------------------------------------------------------------------

def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path):
    """`ofsted status | head -1`: the reader goes away, the command stops as `cat` does (exit 141,
    as a process ended by SIGPIPE), with no error line and no trace in the log."""
    read, write = os.pipe()
    argv = [sys.executable, "-m", "ingest.cli", "status", "--data-dir", str(tmp_path / "data")]
    proc = subprocess.Popen(argv, env=env_for(tmp_path), cwd=PROJECT_ROOT, stdout=write,
                            stderr=subprocess.PIPE, text=True)
    os.close(write)
    os.close(read)  # before the command writes its first line
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err
    assert "error" not in err and "Exception ignored" not in err, err
    assert not (tmp_path / "data" / "logs" / "ofsted.log").exists() or "BrokenPipe" not in (
        tmp_path / "data" / "logs" / "ofsted.log").read_text()


def test_status_exits_0_only_when_the_last_night_succeeded(tmp_path):
    s = settings_of(tmp_path)
    first = ofsted(tmp_path, "status")
    assert first.returncode == 1 and "no night recorded yet" in first.stdout
    start_night(s, "good", "scheduled")
    note_night(s, "good", counts={"new": 3, "rejected": 0},
               dq={"raw": {"success": True, "evaluated": 20, "failed": 0}})
    finish_night(s, "good", "success", published=True)
    ok = ofsted(tmp_path, "status")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "last night good: succeeded" in ok.stdout
    assert "letters: new 3, rejected 0; data quality: raw ok (20), dbt -, marts -; published" in ok.stdout
    assert "running now: nothing" in ok.stdout
    start_night(s, "bad", "scheduled")
    note_night(s, "bad", dq={"marts": {"success": False, "evaluated": 31, "failed": 1,
                                       "failures": [{"detail": "Dorset inspected twice on 2010-05-18"}]}})
    finish_night(s, "bad", "failed", failed_task="validate_marts", reason="1 of 31 mart expectations failed")
    start_night(s, "now", "manual")  # running: the newest finished night decides
    bad = ofsted(tmp_path, "status")
    assert bad.returncode == 1
    out = bad.stdout
    assert "failed at validate_marts: 1 of 31 mart expectations failed" in out
    assert "marts: Dorset inspected twice on 2010-05-18" in out
    assert "data quality: raw -, dbt -, marts FAILED 1 of 31" in out
    assert "last night bad: FAILED at validate_marts" in out
    assert "night now is marked running" in out  # nobody holds the lock: killed, or elsewhere
    assert f"published warehouse: {s.published_warehouse}, from good" in out
    assert "reads data dir" not in bad.stderr and str(s.data_dir) in bad.stderr  # paths on stderr


# --- quarantine and release -----------------------------------------------------------------

def test_quarantine_and_release_are_logged_with_who_when_why_and_say_when_they_take_effect(loaded):
    root = loaded
    shas = letter_shas(root)
    dorset_uri = (root / "inbox" / DORSET).absolute().as_uri()
    sha = shas[dorset_uri]

    q = ofsted(root, "quarantine", sha[:12], "--reason", "re-published under a new name; conflicts")
    assert q.returncode == 0, q.stderr
    assert f"quarantined {sha} ({dorset_uri}) by {getpass.getuser()}" in q.stdout
    assert "at the next build: run `ofsted rerun` now, or it happens at the next night" in q.stdout
    [row] = quarantine_log(root)
    reason = "re-published under a new name; conflicts"
    assert row[:5] == (sha, dorset_uri, reason, "quarantine", getpass.getuser())

    again = ofsted(root, "quarantine", str(root / "inbox" / DORSET), "--reason", "twice")  # by its path
    assert again.returncode == 0 and "is already quarantined" in again.stdout
    assert len(quarantine_log(root)) == 1

    status = ofsted(root, "status")
    assert "quarantined documents (1):" in status.stdout
    assert sha in status.stdout and "re-published under a new name; conflicts" in status.stdout

    r = ofsted(root, "release", dorset_uri, "--reason", "the other copy was withdrawn")
    assert r.returncode == 0, r.stderr
    assert f"released {sha}" in r.stdout and "comes back into the warehouse at the next build" in r.stdout
    log = quarantine_log(root)
    assert [x[3] for x in log] == ["quarantine", "release"] and log[1][5] > log[0][5]
    assert "quarantined documents: none" in ofsted(root, "status").stdout

    not_there = ofsted(root, "release", sha, "--reason", "again")
    assert not_there.returncode == 0 and "is not quarantined; nothing written" in not_there.stdout


def test_quarantine_of_an_unknown_or_ambiguous_document_is_one_line(loaded):
    unknown = ofsted(loaded, "quarantine", "file:///nowhere/letter.pdf", "--reason", "x")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines()[-1].startswith(
        "ofsted quarantine: error: no document 'file:///nowhere/letter.pdf' in the warehouse")
    no_reason = ofsted(loaded, "quarantine", "deadbeef", "--reason", "  ")
    assert no_reason.returncode == 1 and "--reason must say why" in no_reason.stderr
    no_traceback(unknown.stdout, unknown.stderr, no_reason.stderr)
    assert quarantine_log(loaded) == []


def test_a_quarantined_document_is_not_loaded_again_under_another_name(loaded):
    root = loaded
    sha = letter_shas(root)[(root / "inbox" / DORSET).absolute().as_uri()]
    assert ofsted(root, "quarantine", sha, "--reason", "wrong letter").returncode == 0
    shutil.copy(root / "inbox" / DORSET, root / "inbox" / "dorset_again.txt")
    again = ofsted(root, "load")
    assert again.returncode == 0, again.stderr
    assert "0 new" in again.stdout
    con = duckdb.connect(str(settings_of(root).work_warehouse), read_only=True)
    try:
        status = con.execute(
            "select status from raw.manifest where source_uri like '%dorset_again.txt'").fetchone()
        letters = con.execute("select count(*) from raw.letters").fetchone()[0]
    finally:
        con.close()
    assert status == ("quarantined",) and letters == 3


@pytest.mark.slow  # runs dbt: not in test-fast
def test_a_quarantine_and_a_release_in_the_same_second_are_one_answer_everywhere(loaded):
    """The quarantine state is one view (raw.quarantined_documents) with one tie-break: of two
    actions in the same instant the quarantine wins, whichever was written first. The loader,
    `ofsted status`, dbt and the raw GX suite all read that view, so they agree."""
    from expectations.validate import load_suite
    from ingest.controls import current_quarantine
    from ingest.letters.parse import PARSER_VERSION
    from ingest.raw.load import read_state
    from ingest.warehouse.build import run_dbt

    root = loaded
    shas = letter_shas(root)
    quarantine_first, release_first = sorted(shas.values())[:2]
    untouched = set(shas.values()) - {quarantine_first, release_first}
    same = "timestamptz '2026-12-01 09:00:00+00'"
    con = duckdb.connect(str(settings_of(root).work_warehouse))
    con.execute(f"""insert into raw.quarantine values
        ('{quarantine_first}', null, 'wrong letter', 'quarantine', 'ann', {same}),
        ('{quarantine_first}', null, 'checked', 'release', 'bob', {same}),
        ('{release_first}', null, 'checked', 'release', 'bob', {same}),
        ('{release_first}', null, 'wrong letter', 'quarantine', 'ann', {same})""")
    con.close()
    build = ["build", "--select", "+int_letters_versioned", "--indirect-selection", "empty"]
    assert run_dbt(settings_of(root), build) == 0

    expected = {quarantine_first, release_first}
    con = duckdb.connect(str(settings_of(root).work_warehouse), read_only=True)
    try:
        answers = {
            "view": {r[0] for r in con.execute("select sha256 from raw.quarantined_documents").fetchall()},
            "loader": read_state(con, PARSER_VERSION).quarantined,
            "status": {q["sha256"] for q in current_quarantine(con)},
            "dbt": {r[0] for r in con.execute("select _sha256 from staging.stg_raw__quarantined_documents")
                    .fetchall()},
            "dbt versions": set(shas.values()) - {r[0] for r in con.execute(
                "select _sha256 from intermediate.int_letters_versioned").fetchall()},
            "GX raw": set(shas.values())
            - set(con.sql(load_suite("raw_letters").module.QUERY).df()["_sha256"]),
        }
    finally:
        con.close()
    assert answers == dict.fromkeys(answers, expected)
    status = ofsted(root, "status")
    assert "quarantined documents (2):" in status.stdout
    assert all(sha in status.stdout for sha in expected)
    assert not any(sha in status.stdout for sha in untouched)


# --- the lock -------------------------------------------------------------------------------

HOLDER = """
import sys, time
from ingest.lock import acquire
from ingest.settings import get_settings
acquire(get_settings(sys.argv[1]), "load")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def start_holder(root: Path, seconds: float = 120) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(root / "data"), str(seconds)], cwd=PROJECT_ROOT,
                         env=env_for(root), stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_writer_is_refused_in_one_line_naming_the_holder_and_readers_are_not(loaded):
    holder = start_holder(loaded)
    try:
        for args in (("load",), ("build",), ("rerun",), ("quarantine", "deadbeef", "--reason", "x")):
            t0 = time.monotonic()
            busy = ofsted(loaded, *args)
            assert busy.returncode == 3, (args, busy.stderr)
            [line] = [ln for ln in busy.stderr.splitlines() if "error" in ln]
            assert f"is in use by `ofsted load` (pid {holder.pid}, since 20" in line, line
            assert time.monotonic() - t0 < 60  # refused at once, not after waiting
            no_traceback(busy.stdout, busy.stderr)
        status = ofsted(loaded, "status")  # a reader: not refused, and says who is writing
        assert f"running now: `ofsted load` (pid {holder.pid}" in status.stdout
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_killed_process_is_taken_over(loaded):
    holder = start_holder(loaded)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    lock = json.loads((settings_of(loaded).data_dir / ".ofsted.lock").read_text())
    assert lock["pid"] == holder.pid  # the dead holder's note is still there
    after = ofsted(loaded, "quarantine", "deadbeef", "--reason", "x")
    assert f"took over a stale lock of `ofsted load` (pid {holder.pid}" in after.stderr
    assert "no document 'deadbeef'" in after.stderr  # and the command itself ran
    assert (settings_of(loaded).data_dir / ".ofsted.lock").read_text() == ""  # released when done


def test_the_lock_is_reentrant_for_the_holder_and_its_children(tmp_path):
    script = """
import subprocess, sys
from ingest.lock import acquire, release, holder
from ingest.settings import get_settings
s = get_settings(sys.argv[1])
acquire(s, "run")
acquire(s, "task fetch")  # the DAG's task in the command's own process
release(s)
child = subprocess.run([sys.executable, "-c",
    "import sys; from ingest.lock import acquire; from ingest.settings import get_settings; "
    "acquire(get_settings(sys.argv[1]), 'task load_raw'); print('child ok')", sys.argv[1]],
    capture_output=True, text=True)
print(child.stdout.strip(), child.returncode)
print(holder(s)["command"])
"""
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data")], cwd=PROJECT_ROOT,
                          env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[:2] == ["child ok 0", "run"], done.stdout + done.stderr


# --- errors: one line, the trace in the log -------------------------------------------------

def test_forced_failures_print_one_line_and_log_the_full_trace(tmp_path):
    data = tmp_path / "data"
    (data / "warehouse").mkdir(parents=True)
    (data / "warehouse" / "ofsted_work.duckdb").write_bytes(b"not a duckdb file" * 100)
    (data / "warehouse" / "ofsted.duckdb").write_bytes(b"garbage" * 100)
    log = tmp_path / "trace.log"
    env = env_for(tmp_path, OFSTED_LOG_FILE=str(log))
    commands = (("build",), ("quarantine", "abcdef12", "--reason", "x"), ("sql", "select 1"), ("status",),
                ("report",))
    runs = [ofsted(tmp_path, *args, env=env) for args in commands]
    for done in runs:
        assert done.returncode != 0 or done.args[3] == "status", done
        no_traceback(done.stdout, done.stderr)
        errors = [ln for ln in done.stderr.splitlines() if ": error:" in ln]
        assert len(errors) <= 1, done.stderr
    # the unexpected ones (not a clear refusal) left their trace in the log
    assert "Traceback (most recent call last)" in log.read_text()
    assert f"(full trace in {log})" in (runs[1].stderr + runs[4].stderr)


def test_bad_settings_and_unknown_flags_are_one_line(tmp_path):
    bad = ofsted(tmp_path, "status", env=env_for(tmp_path, OFSTED_BATCH_SIZE="many"))
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "ofsted status: error: OFSTED_BATCH_SIZE='many': invalid literal for int() with base 10: 'many'")
    # `run` no longer takes --warehouse: no flag can publish somewhere the user did not name
    flag = ofsted(tmp_path, "run", "--warehouse", str(tmp_path / "elsewhere.duckdb"))
    assert flag.returncode == 2 and "unrecognized arguments: --warehouse" in flag.stderr
    no_traceback(bad.stderr, flag.stderr)
    assert not (tmp_path / "elsewhere.duckdb").exists()


def test_orphaned_publishing_files_are_removed_by_the_next_writer(tmp_path):
    s = settings_of(tmp_path)
    s.published_warehouse.parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    orphan = s.published_warehouse.with_name(f".{s.published_warehouse.name}.publishing-{dead}")
    orphan.write_bytes(b"half a copy")
    link = s.report_dir.with_name(f".{s.report_dir.name}.link-{dead}")
    os.symlink("nowhere", link)
    keep = s.published_warehouse.with_name(f".{s.published_warehouse.name}.publishing-{os.getpid()}")
    keep.write_bytes(b"a live publish (this process)")
    done = ofsted(tmp_path, "build")
    assert done.returncode == 2  # nothing loaded to build; the cleaning still happened first
    assert f"removed {orphan} (left by an interrupted publish)" in done.stderr
    assert not orphan.exists() and not os.path.lexists(link) and keep.exists()


# --- end to end: a genuine duplicate inspection fails the night until it is quarantined -----

def conflicting_letter(src: Path) -> str:
    """Another letter for Dorset's inspection of 18-19 May 2010, from another inspector, with
    no finding in common with the real one: a conflicting duplicate, not a correction."""
    text = src.read_text()
    assert "Martin Davis" in text and "18 and 19 May 2010" in text
    lines, n = [], 0
    for line in text.replace("Martin Davis", "Helen Crowther").splitlines():
        if line.startswith("- "):
            n += 1
            line = f"- Finding {n} of a different inspection: case audits number {n * 7} were reviewed."
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@pytest.mark.timeout(3600)  # two nights and a re-run
def test_a_conflicting_duplicate_fails_the_night_until_quarantined_and_rerun(tmp_path):
    root = tmp_path
    shutil.copytree(SAMPLE_LETTERS, root / "inbox")
    env = env_for(root)
    s = settings_of(root)
    first = ofsted(root, "run", env=env, timeout=1800)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    published_sha = subprocess.run(["sha256sum", str(s.published_warehouse)], capture_output=True,
                                   text=True).stdout.split()[0]

    (root / "inbox" / "dorset_other.txt").write_text(conflicting_letter(root / "inbox" / DORSET))
    second = ofsted(root, "run", env=env, timeout=1800)
    assert second.returncode == 1, second.stdout + second.stderr[-3000:]
    no_traceback(first.stdout, first.stderr, second.stdout, second.stderr)
    assert subprocess.run(["sha256sum", str(s.published_warehouse)], capture_output=True,
                          text=True).stdout.split()[0] == published_sha
    failed = read_nights(s)[0]
    assert failed["state"] == "failed" and failed["failed_task"].startswith("dbt"), failed
    status = ofsted(root, "status", env=env)
    assert status.returncode == 1 and f"FAILED at {failed['failed_task']}" in status.stdout

    uri = (root / "inbox" / "dorset_other.txt").absolute().as_uri()
    q = ofsted(root, "quarantine", uri, "--reason", "a second Dorset letter for one inspection", env=env)
    assert q.returncode == 0 and "run `ofsted rerun` now" in q.stdout, q.stderr
    rerun = ofsted(root, "rerun", env=env, timeout=1800)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr[-3000:]
    no_traceback(rerun.stdout, rerun.stderr)
    assert re.search(r"^run rerun__\S+: SUCCESS$", rerun.stdout, re.M)
    night = read_nights(s)[0]
    assert (night["trigger"], night["state"], night["published"]) == ("rerun", "success", True)
    assert night["dq"]["raw"]["success"] and night["dq"]["marts"]["success"]

    con = duckdb.connect(str(s.published_warehouse), read_only=True)
    try:
        inspections = con.execute("select count(*) from marts.fct_inspections").fetchone()[0]
        inspectors = {r[0] for r in con.execute("select inspector_name from marts.dim_inspectors").fetchall()}
    finally:
        con.close()
    assert inspections == 3 and "Helen Crowther" not in inspectors
    after = ofsted(root, "status", env=env)
    assert after.returncode == 0 and "quarantined documents (1):" in after.stdout


@pytest.mark.slow  # runs dbt: not in test-fast
def test_build_brings_an_older_warehouse_up_to_the_raw_tables_dbt_reads(loaded):
    con = duckdb.connect(str(settings_of(loaded).work_warehouse))
    con.execute("drop table raw.quarantine")  # a warehouse made before the quarantine log existed
    con.close()
    built = ofsted(loaded, "build", "--select", "stg_raw__quarantine")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    assert quarantine_log(loaded) == []  # the table is back, empty
