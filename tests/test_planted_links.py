"""Nothing planted in a folder can be turned against the machine: links, FIFOs and folders at
every file name the product creates in the data, export and report folders.

Each planted link points at a "victim" file and folder outside; after a night, an export, a
report and each control command, the victims are byte-for-byte as they were, every planted
FIFO and folder is still there, and each refusal is one line. Also here: the lock's own file,
the smaller items of issue 18 (a relative --data-dir, `ofsted status` on a read-only or damaged
data directory, a night killed after publishing, a killed night's run folders, free text from
users) each with the test that failed before its fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from _airflow_support import SAMPLE_LETTERS, run_env
from _analysts_support import make_marts_warehouse

from ingest.lock import LOCK_NAME
from ingest.nights import last_good_night, read_nights, start_night
from ingest.settings import PROJECT_ROOT, Settings

KINDS = ("symlink", "fifo", "folder")


# --- planting and checking ------------------------------------------------------------------------

class Victims:
    """A file and a folder outside every product folder: what a planted link points at."""

    def __init__(self, root: Path):
        self.file = root / "victim" / "precious.txt"
        self.folder = root / "victim" / "folder"
        self.folder.mkdir(parents=True)
        self.file.write_text("precious: never to be written, truncated or removed\n")
        (self.folder / "inside.txt").write_text("kept\n")
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.file.parent)): p.read_bytes()
                for p in sorted(self.file.parent.rglob("*")) if p.is_file()}

    def untouched(self) -> None:
        assert self.snapshot() == self.before


def plant(path: Path, kind: str, victims: Victims) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        path.symlink_to(victims.file)
    elif kind == "dirlink":
        path.symlink_to(victims.folder, target_is_directory=True)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
        (path / "planted.txt").write_text("planted\n")


def still_planted(path: Path, kind: str) -> bool:
    st = os.lstat(path)
    return {"symlink": stat.S_ISLNK, "dirlink": stat.S_ISLNK, "fifo": stat.S_ISFIFO,
            "folder": stat.S_ISDIR}[kind](st.st_mode)


def ofsted(env: dict[str, str], *args: str, timeout: float = 1500, cwd: Path = PROJECT_ROOT):
    return subprocess.run([sys.executable, "-m", "ingest.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in done.stderr.splitlines() if ": error: " in ln]


def one_refusal(done: subprocess.CompletedProcess, *words: str) -> str:
    """The command failed with exactly one error line, no traceback, naming `words`."""
    assert done.returncode != 0, done.stdout + done.stderr
    [line] = error_lines(done)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    for w in words:
        assert w in line, (w, line)
    return line


def archived_names(settings: Settings) -> list[Path]:
    """Where the archive will put each sample letter (content-addressed: known in advance)."""
    out = []
    for p in sorted(SAMPLE_LETTERS.iterdir()):
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        out.append(settings.archive_dir / sha[:2] / f"{sha}{p.suffix}")
    return out


# --- the lock ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_the_lock_refuses_a_link_fifo_or_folder_at_its_name_in_one_line(tmp_path, kind):
    victims = Victims(tmp_path)
    env = run_env(tmp_path, tmp_path / "inbox")
    data = tmp_path / "data"
    plant(data / LOCK_NAME, kind, victims)
    what = {"symlink": "a symbolic link", "fifo": "a FIFO (named pipe)", "folder": "a directory"}[kind]
    for args in (("quarantine", "deadbeefdeadbeef", "--reason", "x"), ("status",), ("load",)):
        done = ofsted(env, *args, timeout=120)
        one_refusal(done, f"refusing to use {data / LOCK_NAME} as a lock: it is {what}, not a regular file")
    assert still_planted(data / LOCK_NAME, kind)
    victims.untouched()


def test_a_writer_refuses_links_at_the_data_directorys_fixed_names(tmp_path):
    victims = Victims(tmp_path)
    env = run_env(tmp_path, tmp_path / "inbox")
    settings = Settings.from_env(env)
    from ingest.lock import data_files

    names = data_files(settings)
    for i, path in enumerate(names):
        plant(path, KINDS[i % 3], victims)
    done = ofsted(env, "quarantine", "deadbeefdeadbeef", "--reason", "x", timeout=120)
    one_refusal(done, f"refusing to use {names[0]}: it is a symbolic link, not a regular file",
                f"(and {len(names) - 1} more)")
    for i, path in enumerate(names):
        assert still_planted(path, KINDS[i % 3]), path
    victims.untouched()


# --- a night, an export, a report and every control, with things planted everywhere -------------

@pytest.mark.slow
def test_a_night_export_report_and_every_control_leave_every_planted_target_untouched(tmp_path):
    victims = Victims(tmp_path)
    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLE_LETTERS, inbox)
    env = run_env(tmp_path, inbox, AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="300")
    settings = Settings.from_env(env)

    # 1. the lock's name and every fixed name of the data directory: the night refuses at once
    from ingest.lock import data_files

    plant(settings.data_dir / LOCK_NAME, "symlink", victims)
    fixed = data_files(settings)
    for i, path in enumerate(fixed):
        plant(path, KINDS[i % 3], victims)
    one_refusal(ofsted(env, "run"), "as a lock: it is a symbolic link")
    (settings.data_dir / LOCK_NAME).unlink()
    one_refusal(ofsted(env, "run"), f"refusing to use {fixed[0]}", f"(and {len(fixed) - 1} more)")
    for i, path in enumerate(fixed):
        assert still_planted(path, KINDS[i % 3]), path
        os.unlink(path) if not path.is_dir() or path.is_symlink() else shutil.rmtree(path)
    victims.untouched()

    # 2. the archive's names of two letters (known from their content) and the run folders: the
    #    night runs, archives the third letter and names the other two in one line each
    archive = archived_names(settings)
    plant(archive[0], "symlink", victims)
    plant(archive[1], "folder", victims)
    plant(settings.runs_dir / "stale-run", "dirlink", victims)
    night = ofsted(env, "run")
    assert "Traceback" not in night.stdout + night.stderr
    victims.untouched()
    assert still_planted(archive[0], "symlink") and still_planted(archive[1], "folder")
    con = duckdb.connect(str(settings.work_warehouse), read_only=True)
    try:
        reasons = dict(con.execute("select source_uri, detail from raw.manifest "
                                   "where detail is not null").fetchall())
    finally:
        con.close()
    refused = [r for r in reasons.values() if "refusing to archive at" in r]
    assert len(refused) == 2 and all("\n" not in r for r in refused), reasons

    # 3. the controls with the lock planted: each one line, nothing followed
    (settings.data_dir / LOCK_NAME).unlink(missing_ok=True)  # the night's own (a regular file)
    for kind in KINDS:
        plant(settings.data_dir / LOCK_NAME, kind, victims)
        for args in (("load",), ("reparse",), ("build",), ("rerun",), ("status",),
                     ("quarantine", "deadbeefdeadbeef", "--reason", "x"),
                     ("release", "deadbeefdeadbeef", "--reason", "x")):
            one_refusal(ofsted(env, *args, timeout=300), f"{LOCK_NAME} as a lock")
        assert still_planted(settings.data_dir / LOCK_NAME, kind)
        p = settings.data_dir / LOCK_NAME
        shutil.rmtree(p) if kind == "folder" else p.unlink()
    victims.untouched()

    # 4. an export into a folder with something planted at each name it would write (of a
    #    warehouse of marts made here: the night above may have failed on the refused letters)
    marts = make_marts_warehouse(tmp_path / "marts" / "ofsted.duckdb")
    wh = ("--warehouse", str(marts))
    if True:
        out = tmp_path / "export"
        first = ofsted(env, "export", str(out), "--csv", *wh)
        assert first.returncode == 0, first.stderr
        names = sorted(p.name for p in out.iterdir())
        shutil.rmtree(out)
        out.mkdir()
        for i, name in enumerate(names):
            plant(out / name, KINDS[i % 3], victims)
        one_refusal(ofsted(env, "export", str(out), "--csv", *wh), f"refusing to export into {out}")
        for i, name in enumerate(names):
            assert still_planted(out / name, KINDS[i % 3]), name

        # 5. a report into a folder with links, FIFOs and folders at its names
        rep = tmp_path / "report-out"
        assert ofsted(env, "report", "--out", str(rep), *wh).returncode == 0
        names = sorted(str(p.relative_to(rep)) for p in rep.rglob("*") if p.is_file())
        shutil.rmtree(rep)
        for i, name in enumerate(names):
            plant(rep / name, KINDS[i % 3], victims)
        one_refusal(ofsted(env, "report", "--out", str(rep), *wh), "refusing to replace",
                    "not a regular file")
        for i, name in enumerate(names):
            assert still_planted(rep / name, KINDS[i % 3]), name
    victims.untouched()


# --- the report's staging folder: a name a scheduled night makes predictable ---------------------

SCHEDULED = "scheduled__2026-12-06T02:00:00+00:00"


def write_like_gx(report_dir: Path) -> None:
    """Write into the staging folder by path, following links, as GX's data docs, dbt docs and
    the report's own writers would."""
    (report_dir / "data_docs").mkdir(exist_ok=True)
    (report_dir / "data_docs" / "index.html").write_text("<html>data docs</html>")
    (report_dir / "index.html").write_text("<html>report</html>")


@pytest.mark.parametrize("where", ["staging folder", "run folder", "inside"])
def test_links_planted_in_the_staging_folder_are_removed_before_a_step_writes_there(tmp_path, where):
    from ingest.warehouse.publish import staging_report_dir, staging_settings

    victims = Victims(tmp_path)
    settings = Settings.from_env(run_env(tmp_path, tmp_path / "inbox"))
    staging = staging_report_dir(settings, SCHEDULED)
    planted = {"staging folder": [(staging.parent, "dirlink")], "run folder": [(staging, "dirlink")],
               "inside": [(staging / "data_docs", "dirlink"), (staging / "index.html", "symlink"),
                          (staging / "dbt_docs" / "index.html", "symlink"),
                          (staging / "pipe", "fifo")]}[where]
    for path, kind in planted:
        plant(path, kind, victims)
    out = staging_settings(settings, SCHEDULED).report_dir  # what validate_* and report call first
    write_like_gx(out)
    victims.untouched()
    assert out == staging and not out.is_symlink() and not staging.parent.is_symlink()
    assert os.lstat(staging).st_mode & 0o022 == 0
    for path, _ in planted:
        assert not path.is_symlink() and not (path.exists() and stat.S_ISFIFO(os.lstat(path).st_mode))
    assert (staging / "data_docs" / "index.html").read_text() == "<html>data docs</html>"


def test_a_file_at_the_staging_folders_name_is_refused_in_one_line(tmp_path):
    from ingest.files import UnsafeFile
    from ingest.warehouse.publish import prepare_staging, staging_report_dir

    settings = Settings.from_env(run_env(tmp_path, tmp_path / "inbox"))
    staging = staging_report_dir(settings, SCHEDULED)
    staging.parent.mkdir(parents=True)
    staging.write_text("someone's file\n")
    with pytest.raises(UnsafeFile) as refused:
        prepare_staging(settings, SCHEDULED)
    assert str(refused.value) == f"refusing to use {staging} as a folder: it is a regular file"
    assert staging.read_text() == "someone's file\n"


def test_a_failed_night_never_copies_a_linked_staging_folder_into_the_report(tmp_path):
    from ingest.warehouse.publish import publish_failed_night, staging_report_dir

    victims = Victims(tmp_path)
    settings = Settings.from_env(run_env(tmp_path, tmp_path / "inbox"))
    plant(staging_report_dir(settings, SCHEDULED), "dirlink", victims)
    publish_failed_night(settings, SCHEDULED, render=lambda s: None)
    victims.untouched()
    shown = [p.name for p in settings.report_dir.resolve().rglob("*")]
    assert "night.json" in shown and "inside.txt" not in shown, shown


# --- the smaller items ------------------------------------------------------------------------

def test_a_relative_data_dir_is_taken_from_the_current_directory(tmp_path):
    env = run_env(tmp_path, tmp_path / "inbox")
    env.pop("OFSTED_DATA_DIR")
    done = ofsted(env, "status", "--data-dir", "mine", cwd=tmp_path, timeout=120)
    assert f"ofsted status: data dir {tmp_path / 'mine'};" in done.stderr, done.stderr
    assert not (PROJECT_ROOT / "mine").exists()


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` read-only for this process: a read-only bind mount as root (whom permissions do
    not stop), the write bits taken away otherwise."""
    if os.geteuid() == 0:
        ro = folder.with_name(folder.name + "-ro")
        ro.mkdir()
        subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(ro)], check=True)
        try:
            yield ro
        finally:
            subprocess.run(["umount", str(ro)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if not p.is_symlink()}
        for p, m in modes.items():
            p.chmod(m & ~0o222)
        try:
            yield folder
        finally:
            for p, m in modes.items():
                p.chmod(m)


def _recorded_night(settings: Settings, run_id: str = "good") -> None:
    from ingest.nights import finish_night

    start_night(settings, run_id, "scheduled")
    finish_night(settings, run_id, "success", published=True)


def test_status_reads_a_read_only_data_directory(tmp_path):
    env = run_env(tmp_path, tmp_path / "inbox")
    settings = Settings.from_env(env)
    _recorded_night(settings)
    (settings.data_dir / LOCK_NAME).write_text("")
    with read_only(settings.data_dir) as ro:
        env["OFSTED_DATA_DIR"] = str(ro)
        done = ofsted(env, "status", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "last night good: succeeded" in done.stdout and error_lines(done) == []


def test_status_says_a_truncated_work_warehouse_is_damaged_and_exits_1(tmp_path):
    env = run_env(tmp_path, tmp_path / "inbox")
    settings = Settings.from_env(env)
    _recorded_night(settings)
    settings.work_warehouse.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.work_warehouse))
    con.execute("create table t as select range as i from range(100000)")
    con.close()
    with open(settings.work_warehouse, "r+b") as f:
        f.truncate(4096)
    done = ofsted(env, "status", timeout=120)
    assert done.returncode == 1, done.stdout
    assert f"DAMAGED: {settings.work_warehouse} cannot be read: " in done.stdout


def test_a_night_killed_after_publishing_is_recorded_as_published(tmp_path):
    settings = Settings.from_env(run_env(tmp_path, tmp_path / "inbox"))
    _recorded_night(settings, "earlier")
    start_night(settings, "killed", "scheduled")
    settings.published_warehouse.parent.mkdir(parents=True, exist_ok=True)
    settings.published_warehouse.write_bytes(b"published by the killed night")  # then killed
    start_night(settings, "next", "scheduled")
    killed = next(n for n in read_nights(settings) if n["run_id"] == "killed")
    assert killed["state"] == "success" and killed["published"], killed
    assert "interrupted after publishing" in killed["note"]
    assert last_good_night(settings)["warehouse_run_id"] == "killed"
    # one killed before publishing is still a failure
    start_night(settings, "killed-early", "scheduled")
    os.utime(settings.published_warehouse, (0, 0))
    start_night(settings, "after", "scheduled")
    early = next(n for n in read_nights(settings) if n["run_id"] == "killed-early")
    assert early["state"] == "failed" and not early["published"]


def test_a_killed_nights_run_folders_are_removed_by_the_next_writer(tmp_path):
    victims = Victims(tmp_path)
    settings = Settings.from_env(run_env(tmp_path, tmp_path / "inbox"))
    stale = settings.runs_dir / "manual__killed"
    stale.mkdir(parents=True)
    (stale / "batch_00000.parquet").write_bytes(b"PAR1")
    (settings.runs_dir / "incoming").mkdir()
    (settings.runs_dir / "incoming" / "fetch-1.part").write_bytes(b"half")
    plant(settings.runs_dir / "link", "dirlink", victims)
    from ingest.warehouse.publish import clean_orphans

    removed = clean_orphans(settings)
    assert sorted(p.name for p in removed) == ["incoming", "link", "manual__killed"]
    assert list(settings.runs_dir.iterdir()) == []
    victims.untouched()


def test_a_reason_is_capped_and_refuses_control_characters_and_status_escapes_them(tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLE_LETTERS, inbox)
    env = run_env(tmp_path, inbox)
    assert ofsted(env, "load", timeout=600).returncode == 0
    settings = Settings.from_env(env)
    con = duckdb.connect(str(settings.work_warehouse), read_only=True)
    sha = con.execute("select min(_sha256) from raw.letters").fetchone()[0]
    con.close()
    osc = "bad letter \x1b]0;owned\x07 \x1b[2J"
    one_refusal(ofsted(env, "quarantine", sha, "--reason", osc), "--reason holds a control character (\\x1b)")
    one_refusal(ofsted(env, "quarantine", sha, "--reason", "x" * 130_000),
                "--reason is 130,000 characters; at most 2,000")
    assert ofsted(env, "quarantine", sha, "--reason", "y" * 2000).returncode == 0
    # a row stored before the cap (or by hand): status shows its controls escaped, never raw
    con = duckdb.connect(str(settings.work_warehouse))
    con.execute("insert into raw.quarantine (sha256, source_uri, reason, action, by_user, acted_at) "
                "values ('f' || repeat('0', 63), ?, ?, 'quarantine', ?, now())",
                ["file:///x\x1b[31m", osc, "eve\x1b]8;;http://evil\x07"])
    con.close()
    status = ofsted(env, "status", timeout=120)
    assert "\x1b" not in status.stdout + status.stderr and "\x07" not in status.stdout
    assert "bad letter \\x1b]0;owned\\x07 \\x1b[2J" in status.stdout
