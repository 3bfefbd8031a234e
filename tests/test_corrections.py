"""Corrections end to end, through `ofsted load` and `ofsted build` as the data team runs them.

An inspection is an identity (authority + first day), a letter a version of it. The nights,
run once for the module (each a `load` then a `build` on one data directory):

1. the three real letters;
2. a re-dated Dorset letter under a new file name, one area for development reworded;
3. nothing new;
4. a corrected Dudley letter under the same file name (same date, one finding reworded, signed
   by another inspector: with findings in common that is a correction, not a conflict).

Then, each on a copy of the data directory after night 4: a conflicting duplicate (another
inspector, no finding in common) fails the build until a quarantine row takes it out; an
older warehouse (no recorded schema version, old keys) is rebuilt once, saying so; an older
raw layer gets its content hashes recomputed with the letter date, so a copy of a letter in
other bytes is still recognised as a duplicate.

Last, a whole night (`ofsted run`, module fixture `republished`): letters
re-published under the SAME file names (the loader supersedes the old bytes at that URI), one
re-dated months after its inspection and one whose date the parser cannot find. The night
succeeds; its only finding is a warning, visible in the audit table, `ofsted status`, the
report's front page and the alert.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from _airflow_support import ofsted_run, run_env, run_id_of, settings_for
from _dbt_support import SAMPLE_LETTERS

from ingest.cli import main as ofsted
from ingest.nights import read_nights
from ingest.settings import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # a whole night below

DORSET, DERBYSHIRE, DUDLEY = (
    "000_0d07fcbfe49cee7c.txt", "003_9c1c04a8ac30f548.txt", "004_d31db654b42efda9.txt")
EXPECTED = json.loads((Path(__file__).parent / "fixtures" / "letters" / "real_expected.json").read_text())
DORSET_OLD = "The ethnicity of service users is not always recorded or taken into account in assessments"
DORSET_NEW = "The ethnicity of children and families is not consistently recorded or used in assessments"
DUDLEY_OLD = "this is not embedded across partner agencies"
DUDLEY_NEW = "this is not yet embedded across all partner agencies"
MARTS = ("fct_inspections", "fct_findings", "bridge_findings_themes", "fct_letter_versions",
         "fct_finding_versions", "dim_inspectors", "dim_dates", "dim_authorities", "dim_themes")


@dataclass
class Nights:
    data_dir: Path
    inbox: Path
    results: list[tuple[int, int]] = field(default_factory=list)  # (load, build) exit codes per night
    marts: list[dict[str, list[tuple]]] = field(default_factory=list)  # every mart's rows after each night

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "warehouse" / "ofsted_work.duckdb"


def _env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, inbox: Path) -> None:
    monkeypatch.setenv("OFSTED_DATA_DIR", str(data_dir))
    monkeypatch.setenv("OFSTED_INBOX_DIR", str(inbox))
    monkeypatch.setenv("OFSTED_DBT_TARGET_DIR", str(data_dir / "dbt_target"))
    # dbt's unit tests check the models' SQL on fixtures (tests/test_dbt.py runs them); here
    # every build would repeat them on the same code
    monkeypatch.setenv("DBT_EXCLUDE_RESOURCE_TYPES", "unit_test")
    for name in ("OFSTED_WORK_WAREHOUSE", "OFSTED_ARCHIVE_DIR", "OFSTED_RUNS_DIR"):
        monkeypatch.delenv(name, raising=False)


def _query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _all_marts(warehouse: Path) -> dict[str, list[tuple]]:
    return {t: sorted(_query(warehouse, f"select * from marts.{t}"), key=repr) for t in MARTS}


def _edit(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, old
    return text.replace(old, new)


def _night(n: Nights) -> None:
    n.results.append((ofsted(["load"]), ofsted(["build"])))
    n.marts.append(_all_marts(n.warehouse))


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> Nights:
    root = tmp_path_factory.mktemp("corrections")
    n = Nights(root / "data", root / "inbox")
    n.inbox.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, n.data_dir, n.inbox)
        for name in (DORSET, DERBYSHIRE, DUDLEY):
            shutil.copy(SAMPLE_LETTERS / name, n.inbox / name)
        _night(n)
        dorset = (SAMPLE_LETTERS / DORSET).read_text(encoding="utf-8")
        dorset = _edit(_edit(dorset, "\n17 June 2010\n", "\n2 July 2010\n"), DORSET_OLD, DORSET_NEW)
        (n.inbox / "000_dorset_corrected.txt").write_text(dorset, encoding="utf-8")
        _night(n)
        _night(n)
        dudley = _edit((SAMPLE_LETTERS / DUDLEY).read_text(encoding="utf-8"), DUDLEY_OLD, DUDLEY_NEW)
        # signed by another inspector: with findings in common, still a correction, no conflict
        dudley = _edit(dudley, "Marie McGuinness Her Majesty", "David Asher Her Majesty")
        (n.inbox / DUDLEY).write_text(dudley, encoding="utf-8")
        _night(n)
    return n


def _inspection(n: Nights, night: int, authority: str) -> dict:
    cols = [c for c, *_ in _query(n.warehouse, "describe marts.fct_inspections")]
    rows = [dict(zip(cols, r, strict=True)) for r in n.marts[night]["fct_inspections"]]
    (row,) = [r for r in rows if r["authority_name_as_written"] == authority]
    return row


def _findings(n: Nights, night: int, inspection_key: str) -> dict[str, str]:
    """finding_key -> text of an inspection's current findings after a night."""
    cols = [c for c, *_ in _query(n.warehouse, "describe marts.fct_findings")]
    rows = [dict(zip(cols, r, strict=True)) for r in n.marts[night]["fct_findings"]]
    return {r["finding_key"]: r["finding_text"] for r in rows if r["inspection_key"] == inspection_key}


def test_every_night_succeeds(nights):
    assert nights.results == [(0, 0)] * 4


def test_a_redated_letter_under_a_new_name_is_version_2_of_the_same_inspection(nights):
    assert len(nights.marts[0]["fct_inspections"]) == len(nights.marts[1]["fct_inspections"]) == 3
    before = _inspection(nights, 0, "Dorset County Council")
    after = _inspection(nights, 1, "Dorset County Council")
    assert after["inspection_key"] == before["inspection_key"]
    assert (before["letter_version"], before["is_corrected"]) == (1, False)
    assert (after["letter_version"], after["is_corrected"]) == (2, True)
    assert str(after["letter_date"]) == "2010-07-02"
    assert str(after["first_published_date"]) == str(before["letter_date"]) == "2010-06-17"
    assert after["_source_uri"].endswith("/000_dorset_corrected.txt")
    corrected = hashlib.sha256((nights.inbox / "000_dorset_corrected.txt").read_bytes()).hexdigest()
    assert after["_sha256"] == corrected
    # the 120-day rule is about the first letter; the current one is 44 days after the inspection
    assert after["days_from_inspection_to_first_letter"] == before["days_from_inspection_to_letter"] == 29
    assert after["days_from_inspection_to_letter"] == 44
    # the other two inspections are untouched
    for authority in ("Derbyshire County Council", "Dudley Metropolitan Borough Council"):
        assert _inspection(nights, 1, authority) == _inspection(nights, 0, authority)


def test_the_reworded_finding_is_replaced_and_the_others_keep_their_key(nights):
    key = _inspection(nights, 0, "Dorset County Council")["inspection_key"]
    old, new = _findings(nights, 0, key), _findings(nights, 1, key)
    assert len(old) == len(new) == 18
    gone = {k: t for k, t in old.items() if k not in new}
    came = {k: t for k, t in new.items() if k not in old}
    assert len(gone) == len(came) == 1
    assert next(iter(gone.values())).startswith(DORSET_OLD)
    assert next(iter(came.values())).startswith(DORSET_NEW)
    assert {k: old[k] for k in old.keys() & new.keys()} == {k: new[k] for k in old.keys() & new.keys()}
    assert all(DORSET_OLD not in t for t in new.values())
    # the old wording stays in history, under version 1
    w = nights.warehouse
    assert _query(w, "select letter_version, is_current_version from marts.fct_finding_versions "
                  "where finding_key = ?", [next(iter(gone))]) == [(1, False)]
    assert _query(w, "select letter_version, first_letter_version from marts.fct_findings "
                  "where finding_key = ?", [next(iter(came))]) == [(2, 2)]


def test_letter_versions_say_what_changed(nights):
    key = _inspection(nights, 0, "Dorset County Council")["inspection_key"]
    rows = _query(nights.warehouse, """
        select letter_version, is_current_version, letter_date::varchar, finding_count,
               findings_added_count, findings_removed_count, findings_reworded_count
        from marts.fct_letter_versions where inspection_key = ? order by letter_version""", [key])
    assert rows == [(1, False, "2010-06-17", 18, 18, 0, 0), (2, True, "2010-07-02", 18, 0, 0, 1)]
    dudley = _inspection(nights, 3, "Dudley Metropolitan Borough Council")["inspection_key"]
    assert _query(nights.warehouse, "select count(*) from marts.fct_letter_versions where inspection_key = ?",
                  [dudley]) == [(2,)]


def test_a_night_with_nothing_new_changes_nothing(nights):
    for table in MARTS:
        assert nights.marts[2][table] == nights.marts[1][table], table


def test_a_correction_under_the_same_file_name_is_a_new_version(nights):
    before = _inspection(nights, 2, "Dudley Metropolitan Borough Council")
    after = _inspection(nights, 3, "Dudley Metropolitan Borough Council")
    assert after["inspection_key"] == before["inspection_key"]
    assert (after["letter_version"], after["is_corrected"]) == (2, True)
    # the same date: the latest fetched wins
    assert after["letter_date"] == after["first_published_date"] == before["letter_date"]
    assert after["_source_uri"] == before["_source_uri"]
    now = hashlib.sha256((nights.inbox / DUDLEY).read_bytes()).hexdigest()
    assert after["_sha256"] == now != before["_sha256"]
    old, new = _findings(nights, 2, before["inspection_key"]), _findings(nights, 3, before["inspection_key"])
    assert len(old.keys() & new.keys()) == len(old) - 1 == len(new) - 1 == 12
    assert any(DUDLEY_NEW in t for t in new.values()) and not any(DUDLEY_OLD in t for t in new.values())
    assert _query(nights.warehouse, """
        select letter_version, inspector_name, findings_added_count, findings_removed_count,
               findings_reworded_count
        from marts.fct_letter_versions where inspection_key = ? order by letter_version""",
        [after["inspection_key"]]) == [(1, "Marie McGuinness", 13, 0, 0), (2, "David Asher", 0, 0, 1)]
    assert len(nights.marts[3]["fct_inspections"]) == 3
    assert len(nights.marts[3]["fct_findings"]) == 18 + 19 + 13


def test_incremental_builds_equal_a_full_refresh(nights, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(nights.data_dir, data)
    _env(monkeypatch, data, nights.inbox)
    copy = Nights(data, nights.inbox)
    assert ofsted(["build", "--full-refresh"]) == 0
    assert _all_marts(copy.warehouse) == nights.marts[3]


def _conflicting_letter(inbox: Path) -> Path:
    """Dudley's letter rewritten as about Derbyshire's inspection: another inspector, no finding
    in common with Derbyshire's letter."""
    text = (SAMPLE_LETTERS / DUDLEY).read_text(encoding="utf-8")
    text = _edit(text, "Dudley Metropolitan Borough Council", "Derbyshire County Council")
    text = _edit(text, "15 and 16 June 2010", "5 and 6 October 2010")
    text = _edit(text, "\n14 July 2010\n", "\n1 November 2010\n")
    path = inbox / "003_derbyshire_other.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_conflicting_duplicate_fails_the_build_until_quarantined(nights, tmp_path, monkeypatch, capfd):
    data, inbox = tmp_path / "data", tmp_path / "inbox"
    shutil.copytree(nights.data_dir, data)
    shutil.copytree(nights.inbox, inbox)
    _env(monkeypatch, data, inbox)
    warehouse = Nights(data, inbox).warehouse
    other = _conflicting_letter(inbox)
    sha = hashlib.sha256(other.read_bytes()).hexdigest()
    original = hashlib.sha256((SAMPLE_LETTERS / DERBYSHIRE).read_bytes()).hexdigest()
    assert ofsted(["load"]) == 0
    capfd.readouterr()
    assert ofsted(["build"]) == 1
    out = capfd.readouterr().out
    assert "Failure in test assert_no_conflicting_letters" in out
    conflict = [ln for ln in out.splitlines() if "Conflicting letters for Derbyshire County Council" in ln]
    assert len(conflict) == 1 and sha in conflict[0] and original in conflict[0], out
    assert "ofsted quarantine" in conflict[0]
    assert _query(warehouse, "select sha256_a, sha256_b, inspector_name_a, inspector_name_b "
                  "from dbt_test__audit.assert_no_conflicting_letters") == [
        (*sorted([sha, original]), *(("David Asher", "Marie McGuinness") if original < sha
                                     else ("Marie McGuinness", "David Asher")))]

    # the data team quarantines it (the row `ofsted quarantine` writes): the next build passes
    with duckdb.connect(str(warehouse)) as con:
        con.execute("insert into raw.quarantine values (?, ?, ?, 'quarantine', ?, now())",
                    [sha, other.as_uri(), "not Derbyshire's letter", getpass.getuser()])
    assert ofsted(["build"]) == 0
    derbyshire = _query(warehouse, "select _sha256, letter_version from marts.fct_inspections "
                        "where authority_name_as_written = 'Derbyshire County Council'")
    assert derbyshire == [(original, 1)]
    assert _all_marts(warehouse) == nights.marts[3]


def test_an_older_warehouse_is_rebuilt_once_and_says_so(nights, tmp_path, monkeypatch, capfd):
    data = tmp_path / "data"
    shutil.copytree(nights.data_dir, data)
    _env(monkeypatch, data, nights.inbox)
    warehouse = Nights(data, nights.inbox).warehouse
    # as the previous release left it: no recorded version, keys from the letter's bytes, one
    # column fewer (an incremental build would refuse the changed schema), no quarantine log
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table audit.schema_version")
        con.execute("drop table raw.quarantine")  # `ofsted build` adds the raw tables dbt reads
        con.execute("update marts.fct_findings set inspection_key = md5(_sha256)")
        con.execute("alter table marts.fct_findings drop column first_letter_version")
    capfd.readouterr()
    assert ofsted(["build"]) == 0
    out = capfd.readouterr().out
    assert ("Warehouse schema version from unrecorded to 2: rebuilt from scratch "
            "marts.bridge_findings_themes, marts.fct_findings") in out.replace('"', ""), out
    assert _all_marts(warehouse) == nights.marts[3]
    assert ofsted(["build", "--select", "dim_themes"]) == 0  # any later build: nothing to migrate
    assert "Warehouse schema version" not in capfd.readouterr().out
    assert [v for v, *_ in _query(warehouse, "select version from audit.schema_version")] == [2]


def test_an_older_raw_layer_gets_content_hashes_with_the_letter_date(nights, tmp_path, monkeypatch):
    data, inbox = tmp_path / "data", tmp_path / "inbox"
    shutil.copytree(nights.data_dir, data)
    shutil.copytree(nights.inbox, inbox)
    _env(monkeypatch, data, inbox)
    warehouse = Nights(data, inbox).warehouse
    hashes = _query(warehouse, "select _sha256, _content_hash from raw.letters order by 1")
    # as the previous release left it: hashes without the letter date, no recorded version
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update raw.letters set _content_hash = md5(_sha256)")
        con.execute("drop table raw.schema_version")
    # the same Derbyshire letter in other bytes (CRLF line endings) under another name
    crlf = (SAMPLE_LETTERS / DERBYSHIRE).read_bytes().replace(b"\n", b"\r\n")
    (inbox / "derbyshire_crlf.txt").write_bytes(crlf)
    assert ofsted(["load"]) == 0
    assert _query(warehouse, "select _sha256, _content_hash from raw.letters order by 1") == hashes
    assert _query(warehouse, "select status from raw.manifest "
                  "where source_uri like '%derbyshire_crlf.txt'") == [("duplicate",)]
    assert _query(warehouse, "select version from raw.schema_version") == [(2,)]


# --- re-published under the same file name, through a real night ------------------------------

UNDATED_CHECK = "raw_letters.expect_column_values_to_not_be_null(letter_date)"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest.cli", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def republished(tmp_path_factory) -> SimpleNamespace:
    """The three real letters loaded; then, under the same file names, Derbyshire's letter
    re-dated 14 June 2011 (251 days after its inspection ended, the first letter 28 days after)
    and Dudley's letter without its date line; then one whole night (`ofsted run`)."""
    root = tmp_path_factory.mktemp("republished")
    inbox = root / "inbox"
    inbox.mkdir()
    for name in (DORSET, DERBYSHIRE, DUDLEY):
        shutil.copy(SAMPLE_LETTERS / name, inbox / name)
    env = run_env(root, inbox)
    loaded = _cli(env, "load")
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    text = (inbox / DERBYSHIRE).read_text(encoding="utf-8")
    (inbox / DERBYSHIRE).write_text(_edit(text, "\n3 November 2010\n", "\n14 June 2011\n"), encoding="utf-8")
    text = (inbox / DUDLEY).read_text(encoding="utf-8")
    (inbox / DUDLEY).write_text(_edit(text, "\n14 July 2010\n", "\n"), encoding="utf-8")
    night = ofsted_run(env)
    settings = settings_for(env)
    return SimpleNamespace(root=root, inbox=inbox, env=env, settings=settings, night=night,
                           run_id=run_id_of(night.stdout), status=_cli(env, "status"))


def _rows(warehouse: Path, sql: str, params: list | None = None) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cur = con.execute(sql, params or [])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def test_a_night_after_letters_republished_under_the_same_name_succeeds(republished):
    night = republished.night
    assert night.returncode == 0, night.stdout + night.stderr[-3000:]
    assert f"run {republished.run_id}: SUCCESS" in night.stdout
    (latest,) = read_nights(republished.settings, limit=1)
    assert (latest["run_id"], latest["state"], latest["published"]) == (republished.run_id, "success", True)


def test_a_letter_redated_months_later_under_the_same_name_is_version_2(republished):
    (row,) = _rows(republished.settings.published_warehouse, """
        select inspection_key, letter_version, is_corrected, letter_date::varchar as letter_date,
               first_published_date::varchar as first_published_date, days_from_inspection_to_first_letter,
               days_from_inspection_to_letter, _source_uri
        from marts.fct_inspections where authority_name_as_written = 'Derbyshire County Council'""")
    assert (row["letter_version"], row["is_corrected"], row["letter_date"]) == (2, True, "2011-06-14")
    # the 120-day rule judges the first published letter, whatever date the later version has
    assert (row["first_published_date"], row["days_from_inspection_to_first_letter"]) == ("2010-11-03", 28)
    assert row["days_from_inspection_to_letter"] == 251
    assert row["_source_uri"] == (republished.inbox / DERBYSHIRE).absolute().as_uri()
    versions = _rows(republished.settings.published_warehouse,
                     "select letter_version, letter_date::varchar as d from marts.fct_letter_versions "
                     "where inspection_key = ? order by letter_version", [row["inspection_key"]])
    assert [(v["letter_version"], v["d"]) for v in versions] == [(1, "2010-11-03"), (2, "2011-06-14")]
    (rule,) = _rows(republished.settings.published_warehouse,
                    "select stage, severity, status, failing_count from audit.dq_checks "
                    "where run_id = ? and check_name = 'assert_letter_follows_inspection'",
                    [republished.run_id])
    assert rule == {"stage": "dbt", "severity": "error", "status": "pass", "failing_count": 0}


def test_an_undated_letter_comes_first_among_its_inspections_versions(republished):
    (row,) = _rows(republished.settings.published_warehouse, """
        select inspection_key, letter_version, letter_date::varchar as letter_date,
               first_published_date::varchar as first_published_date, days_from_inspection_to_first_letter
        from marts.fct_inspections where authority_name_as_written = 'Dudley Metropolitan Borough Council'""")
    # the undated re-publication is version 1; the dated letter stays current, and the first
    # published date is still the dated letter's
    assert (row["letter_version"], row["letter_date"], row["first_published_date"]) == (
        2, "2010-07-14", "2010-07-14")
    assert row["days_from_inspection_to_first_letter"] == 28
    versions = _rows(republished.settings.published_warehouse,
                     "select letter_version, letter_date::varchar as d, is_current_version "
                     "from marts.fct_letter_versions where inspection_key = ? order by letter_version",
                     [row["inspection_key"]])
    assert [(v["letter_version"], v["d"], v["is_current_version"]) for v in versions] == [
        (1, None, False), (2, "2010-07-14", True)]


def test_the_nights_only_finding_is_a_warning_named_everywhere(republished):
    run_id, settings = republished.run_id, republished.settings
    # the audit table: one row per check of the night (GX and dbt), one warning, no failure
    checks = _rows(settings.published_warehouse,
                   "select stage, check_name, severity, status, failing_count, failing_sample "
                   "from audit.dq_checks where run_id = ?", [run_id])
    assert {c["stage"] for c in checks} == {"raw", "dbt", "marts"}
    assert sum(c["stage"] == "dbt" for c in checks) > 100
    assert [c for c in checks if c["status"] == "fail"] == []
    (warning,) = [c for c in checks if c["status"] != "pass"]
    assert (warning["stage"], warning["check_name"], warning["severity"], warning["status"],
            warning["failing_count"]) == ("raw", UNDATED_CHECK, "warn", "warn", 1)
    undated = hashlib.sha256((republished.inbox / DUDLEY).read_bytes()).hexdigest()
    assert json.loads(warning["failing_sample"])[0]["_sha256"] == undated
    passed = len(checks) - 1

    # the night history and `ofsted status`
    (latest,) = read_nights(settings, limit=1)
    assert latest["dq"]["raw"]["warnings"] == [f"{UNDATED_CHECK}: 1 rows"]
    assert latest["dq"]["dbt"]["success"] and latest["dq"]["dbt"]["evaluated"] > 100
    out = republished.status.stdout
    assert republished.status.returncode == 0, out + republished.status.stderr
    assert f"last night {run_id}: succeeded" in out
    assert f"warning (raw): {UNDATED_CHECK}: 1 rows" in out
    assert "raw ok (" in out and ", 1 warning)" in out

    # the report's front page
    page = (settings.report_dir / "index.html").read_text(encoding="utf-8")
    assert f"Data quality: {passed:,} checks passed, 1 warning ({UNDATED_CHECK}: 1)" in page
    assert f'id="dq-{UNDATED_CHECK}"' in page and undated in page

    # the alert: a WARNING, never a failure
    alerts = [json.loads(line) for line in settings.alert_log.read_text().splitlines()]
    assert [(a["type"], a["severity"], a["run_id"]) for a in alerts] == [("alert", "warning", run_id)]
    assert "1 data-quality warning (the night succeeded" in alerts[0]["title"]
    assert alerts[0]["failures"] == []
    assert [(w["check"], w["count"]) for w in alerts[0]["warnings"]] == [(UNDATED_CHECK, 1)]
